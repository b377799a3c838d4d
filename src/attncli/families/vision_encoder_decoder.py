"""VisionEncoderDecoder captioners (e.g. ViT + GPT-2): a ViT encoder, a text decoder with cross-attention."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.capture import ALL, Capture, Selection
from attncli.choices import Kind, Purpose
from attncli.errors import NotSupportedError
from attncli.families.base import Modality
from attncli.families.encdec import (EncoderDecoder, _cross_family, arch, decoding, generate_ids, given_ids,
                                     keep_encoder, target_side, teacher_force, unfinished)

if TYPE_CHECKING:
    from PIL import Image

    from attncli.families.loaded import LoadedModel


class VisionEncoderDecoder(EncoderDecoder):
    """Image in, text out; the encoder's patch grid is described by ``config.encoder``."""

    name = "vision encoder-decoder"
    examples = "VisionEncoderDecoder, e.g. ViT+GPT-2 captioners"
    modality = Modality.image
    purposes = frozenset({Purpose.caption})
    default_class = "VisionEncoderDecoderModel"

    def matches(self, config: Any) -> bool:
        """transformers' VisionEncoderDecoderConfig."""
        return getattr(config, "model_type", "") == "vision-encoder-decoder"

    def decoder_config(self, config: Any) -> Any:
        """The text decoder's config."""
        return config.decoder

    def encoder_config(self, config: Any) -> Any:
        """The image encoder's config."""
        return config.encoder

    def split_processor(self, loaded: Any) -> tuple[Any, Any]:
        """Such checkpoints rarely name a processor class: the image processor is loaded from the same place."""
        tokenizer, images = super().split_processor(loaded)
        if images is None:
            import transformers

            try:
                images = transformers.AutoImageProcessor.from_pretrained(loaded.ref.location,
                                                                         local_files_only=loaded.local_files_only)
            except (OSError, ValueError) as exc:
                raise NotSupportedError(f"{loaded.ref.model_id} has no image processor (preprocessor_config.json)",
                                        "its folder needs one to turn images into pixels") from exc
        return tokenizer, images


def check_source_length(n_source: int, grid_tokens: int, model_id: str) -> None:
    """The decoder must attend to exactly the encoder's patch tokens, or the grid labels would be wrong."""
    if n_source != grid_tokens:
        raise NotSupportedError(
            f"{model_id}: the decoder attends to {n_source} encoder tokens, but the encoder's patch grid has "
            f"{grid_tokens}", "use a ViT-style image encoder (one global patch grid)")


def capture_caption(image: "Path | str | Image.Image", loaded: "LoadedModel", *, text: str | None = None,
                    max_new_tokens: int = 20, num_beams: int = 1, selection: Selection = ALL) -> Capture:
    """Caption an image (or score `text` as its caption) and capture which patches each word attended to.

    ``selection`` picks the encoder self-attention layers and heads kept (encdec.keep_encoder).
    """
    from attncli.families.vit import patch_tokens, preprocess
    from attncli.images import load_image

    source = None
    if isinstance(image, (str, Path)):
        source = str(Path(image).resolve())
        image = load_image(image)
    family = _cross_family(loaded, Purpose.caption)
    tokenizer, image_processor = family.split_processor(loaded)
    pre = preprocess([image], image_processor, family.encoder_config(loaded.config))
    inputs = {"pixel_values": pre.pixel_values.to(loaded.device)}
    if text is None:
        ids = generate_ids(loaded, family, inputs, max_new_tokens, num_beams)
    else:
        ids = given_ids(tokenizer, text, loaded, family)
    decoded = teacher_force(loaded, family, inputs, ids)
    grid = pre.grid
    check_source_length(decoded.cross.shape[-1], grid.n_tokens, loaded.ref.model_id)
    labels, special, scores, caption = target_side(tokenizer, ids, decoded.logits)
    how = decoding(ids, text is not None, max_new_tokens, num_beams, family.eos_id(loaded.model))
    source_labels, source_special = patch_tokens(grid)
    encoder, kept = keep_encoder(decoded.encoder, selection)
    return Capture(
        attentions=encoder, tokens=source_labels, special=source_special,
        model_id=loaded.ref.model_id, model_path=loaded.ref.location, kind=Kind.image,
        arch=arch(loaded.config, decoded), grid=grid, image=pre.images[0], source=source,
        warnings=unfinished(how), cross_attentions=decoded.cross, decoder_attentions=decoded.decoder,
        target_tokens=labels, target_special=special, target_scores=scores, target_text=caption,
        decoding=how, input_size=image.size, **kept,
    )


FAMILY = VisionEncoderDecoder()
