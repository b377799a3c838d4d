"""VisionEncoderDecoder captioners (e.g. ViT + GPT-2): a ViT encoder, a text decoder with cross-attention."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.errors import NotSupportedError
from attncli.families.base import Modality
from attncli.families.encdec import EncoderDecoder


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
                images = transformers.AutoImageProcessor.from_pretrained(loaded.ref.location)
            except (OSError, ValueError) as exc:
                raise NotSupportedError(f"{loaded.ref.model_id} has no image processor (preprocessor_config.json)",
                                        "its folder needs one to turn images into pixels") from exc
        return tokenizer, images


FAMILY = VisionEncoderDecoder()
