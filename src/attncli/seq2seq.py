"""Capture for encoder-decoder models: what each output token attended to in the input (cross-attention).

Text to text (Marian/opus-mt, T5, BART) feeds `attn align`; image to text (VisionEncoderDecoder such as
ViT+GPT-2 captioners, BLIP) feeds `attn caption`. The target is generated (greedy, or beam search returning its
best beam) or given, then scored in ONE teacher-forced forward pass over exactly those tokens: the weights
shown are the ones the decoder computes for that token sequence, whichever way it was found. For greedy
decoding this equals the step-by-step generation path (a test checks it); beam search's per-step attentions
belong to beams that are reordered and pruned, so only the returned beam is re-scored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.capture import Capture, architecture, stack_attentions
from attncli.choices import Device, Task
from attncli.errors import CaptureError, NotSupportedError, UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from attncli.models import LoadedModel

DEFAULT_ALIGN_MODEL = "Helsinki-NLP/opus-mt-en-de"
DEFAULT_CAPTION_MODEL = "nlpconnect/vit-gpt2-image-captioning"
CROSS_KINDS = ("encoder-decoder models: Marian/opus-mt, T5, BART for text; "
               "VisionEncoderDecoder (e.g. ViT+GPT-2 captioners) or BLIP for images")
TEXT_FAMILY, VED_FAMILY, BLIP_FAMILY = "text", "vision-encoder-decoder", "blip"


def cross_family(config: Any) -> str | None:
    """Which kind of cross-attention model a config describes: "text", "vision-encoder-decoder", "blip" or None."""
    model_type = getattr(config, "model_type", "")
    if model_type == "vision-encoder-decoder":
        return VED_FAMILY
    if model_type == "blip":
        return BLIP_FAMILY
    if getattr(config, "is_encoder_decoder", False):
        return TEXT_FAMILY
    return None


def require_cross(config: Any, model_id: str, source: str) -> str:
    """The model's family, or a one-line error when it has no cross-attention or reads the other kind of input."""
    family = cross_family(config)
    model_type = getattr(config, "model_type", "unknown")
    if family is None:
        raise NotSupportedError(f"{model_id} ({model_type}) has no cross-attention",
                                f"this command needs {CROSS_KINDS}")
    if source == "text" and family != TEXT_FAMILY:
        raise UsageError(f"{model_id} reads images, but attn align takes text",
                         f"caption an image with: attn caption IMAGE --model {model_id}")
    if source == "image" and family == TEXT_FAMILY:
        raise UsageError(f"{model_id} is a text-to-text model, but attn caption takes an image model",
                         f'align text with: attn align "TEXT" --model {model_id}')
    return family


def load_cross_model(ref: str, source: str, *, device: str | Device = Device.cpu,
                     trust_remote_code: bool = False) -> "LoadedModel":
    """Load an encoder-decoder for text ("text") or image ("image") sources, refusing models without cross-attention."""
    from attncli.models import _hub_cached, load_model, resolve_model

    task = Task.seq2seq if source == "text" else Task.image_to_text
    mref = resolve_model(ref, task)
    if mref.kind != "hub" or _hub_cached(mref.location):
        # Check the config before the Auto class turns "no cross-attention" into a generic load error.
        import transformers

        try:
            config = transformers.AutoConfig.from_pretrained(mref.location, trust_remote_code=trust_remote_code,
                                                             local_files_only=True)
        except (OSError, ValueError):
            config = None  # load_model below reports it properly
        if config is not None:
            require_cross(config, mref.model_id, source)
    with warnings.catch_warnings():
        # MarianTokenizer recommends sacremoses on every load; it is optional for the tokenization used here.
        warnings.filterwarnings("ignore", message=".*sacremoses.*")
        loaded = load_model(mref, task, device=device, trust_remote_code=trust_remote_code)
    require_cross(loaded.config, mref.model_id, source)
    return loaded


def split_processor(loaded: "LoadedModel") -> tuple[Any, Any]:
    """(tokenizer, image processor or None) of a loaded model.

    A VisionEncoderDecoder checkpoint usually has no processor class, so AutoProcessor gives only its tokenizer;
    its image processor is then loaded from the same folder or cached repository.
    """
    proc = loaded.processor
    tokenizer = getattr(proc, "tokenizer", proc)
    images = getattr(proc, "image_processor", None)
    if images is None and cross_family(loaded.config) in (VED_FAMILY, BLIP_FAMILY):
        import transformers

        try:
            images = transformers.AutoImageProcessor.from_pretrained(loaded.ref.location)
        except (OSError, ValueError) as exc:
            raise NotSupportedError(f"{loaded.ref.model_id} has no image processor (preprocessor_config.json)",
                                    "its folder needs one to turn images into pixels") from exc
    return tokenizer, images


@dataclass
class Decoded:
    """Teacher-forced pass over one target: arrays for batch item 0, per-layer (layers, heads, q, k)."""

    encoder: "np.ndarray"  # (enc layers, heads, source, source)
    decoder: "np.ndarray"  # (dec layers, heads, target, target)
    cross: "np.ndarray"  # (dec layers, heads, target, source)
    logits: "np.ndarray"  # (target, vocab)


def _eos_id(model: Any, family: str) -> int | None:
    """The token that ends the target: BLIP ends captions with [SEP]; others use the generation config."""
    if family == BLIP_FAMILY:
        return model.config.text_config.sep_token_id
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    return eos


def _start_id(model: Any, family: str) -> int:
    """The token the decoder starts from."""
    if family == BLIP_FAMILY:
        return model.config.text_config.bos_token_id
    for cfg in (model.generation_config, model.config):
        start = getattr(cfg, "decoder_start_token_id", None)
        if start is not None:
            return int(start)
    raise CaptureError(f"{model.config.model_type}: the config names no decoder start token")


def decoder_positions(config: Any, family: str) -> int | None:
    """How many tokens the decoder can take (None for relative positions, as in T5)."""
    dec = config.text_config if family == BLIP_FAMILY else config.decoder if family == VED_FAMILY else config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(dec, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generate_ids(loaded: "LoadedModel", family: str, inputs: dict[str, Any], max_new_tokens: int,
                 num_beams: int) -> list[int]:
    """Decode deterministically (greedy, or beam search's best beam); the ids start with the decoder start token."""
    import torch

    if max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens {max_new_tokens}: give at least 1")
    if num_beams < 1:
        raise UsageError(f"--num-beams {num_beams}: give at least 1")
    limit = decoder_positions(loaded.config, family)
    if limit is not None and max_new_tokens > limit:  # the last new token is never fed back: limit, not limit - 1
        raise UsageError(f"--max-new-tokens {max_new_tokens} is more than the decoder's {limit} positions",
                         f"give at most {limit}")
    kwargs = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": False,
              "num_return_sequences": 1}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generation-config advice (e.g. unused sampling settings) is not for users
        out = loaded.model.generate(**inputs, **kwargs)
    ids = out[0].tolist()
    start = _start_id(loaded.model, family)
    if not ids or ids[0] != start:
        ids = [start] + ids  # some decoders return only the new tokens
    return ids


def given_ids(tokenizer: Any, text: str, loaded: "LoadedModel", family: str) -> list[int]:
    """The start token, then the given target tokenized the way training labels are (ending with the end token)."""
    if not text.strip():
        raise UsageError("the target text is empty", "give at least one word, or leave it out to generate")
    text = text.strip()
    # Labels as each family trains on them: text_target for seq2seq (BART keeps its leading <s>), the plain
    # tokenizer for VisionEncoderDecoder, and for BLIP the tokenizer's [CLS] replaced by the start token.
    encoded = tokenizer(text_target=text, verbose=False) if family == TEXT_FAMILY else tokenizer(text, verbose=False)
    ids = list(encoded["input_ids"])  # verbose=False: a too-long target gets our one-line error below instead
    special = set(tokenizer.all_special_ids)
    eos = _eos_id(loaded.model, family)
    if family == BLIP_FAMILY and ids and ids[0] in special and ids[0] != eos:
        ids = ids[1:]
    if not [i for i in ids if i not in special]:
        raise UsageError(f"the target {text!r} has no tokens this model's tokenizer knows")
    if eos is not None and ids[-1] != eos:
        ids = ids + [eos]
    limit = decoder_positions(loaded.config, family)
    if limit is not None and len(ids) > limit:  # the decoder is fed the start token and all but the last
        raise UsageError(f"the target has {len(ids)} tokens but the decoder takes at most {limit}",
                         "give a shorter target")
    return [_start_id(loaded.model, family)] + ids


def teacher_force(loaded: "LoadedModel", family: str, inputs: dict[str, Any], ids: list[int]) -> Decoded:
    """One forward pass with the decoder fed ids[:-1]: the attentions behind every token of ids[1:]."""
    import torch

    model = loaded.model
    decoder_in = torch.tensor([ids[:-1]], device=loaded.device)  # (1, target)
    with torch.inference_mode():
        if family == BLIP_FAMILY:
            # BlipForConditionalGeneration.forward drops the text decoder's attentions: call its parts.
            vision = model.vision_model(pixel_values=inputs["pixel_values"], output_attentions=True)
            text = model.text_decoder(input_ids=decoder_in, encoder_hidden_states=vision.last_hidden_state,
                                      output_attentions=True)
            enc, dec, cross, logits = vision.attentions, text.attentions, text.cross_attentions, text.logits
        else:
            out = model(**inputs, decoder_input_ids=decoder_in, output_attentions=True)
            enc, dec = out.encoder_attentions, out.decoder_attentions
            cross, logits = out.cross_attentions, out.logits
    return Decoded(
        encoder=stack_attentions(enc, "encoder attention"),
        decoder=stack_attentions(dec, "decoder self-attention"),
        cross=stack_attentions(cross, "cross-attention"),
        logits=logits[0].detach().float().cpu().numpy(),  # (target, vocab)
    )


def target_side(tokenizer: Any, ids: list[int], logits: "np.ndarray") -> tuple[list[str], list[bool], list[float], str]:
    """Labels, special flags, model probabilities and decoded text of the target tokens ids[1:]."""
    import numpy as np

    from attncli.inputs import token_labels

    target = ids[1:]
    special_ids = set(tokenizer.all_special_ids)
    special = [i in special_ids for i in target]
    labels = token_labels(tokenizer, target, None, "", special)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (target, vocab), stable softmax
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    scores = [float(probs[t, tok]) for t, tok in enumerate(target)]
    text = tokenizer.decode(target, skip_special_tokens=True).strip()
    return labels, special, scores, text


def _decoding(ids: list[int], given: bool, max_new_tokens: int, num_beams: int, eos: int | None) -> dict[str, Any]:
    """How the target was obtained, for the capture, the JSON output and the warnings."""
    if given:
        return {"mode": "given", "scored": "teacher-forced"}
    return {"mode": "generated", "strategy": "greedy" if num_beams == 1 else "beam search (best beam)",
            "num_beams": num_beams, "max_new_tokens": max_new_tokens, "scored": "teacher-forced",
            "finished": eos is not None and ids[-1] == eos}


def _warn_unfinished(decoding: dict[str, Any]) -> list[str]:
    """A warning when generation stopped at the token limit instead of the end token."""
    if decoding.get("mode") == "generated" and not decoding.get("finished"):
        return [f"generation stopped at --max-new-tokens {decoding['max_new_tokens']} before the end token"]
    return []


def _arch(config: Any, decoded: Decoded) -> dict[str, Any]:
    """Architecture facts of both halves."""
    facts = architecture(config)
    facts.update(encoder_layers=int(decoded.encoder.shape[0]), encoder_heads=int(decoded.encoder.shape[1]),
                 decoder_layers=int(decoded.cross.shape[0]), decoder_heads=int(decoded.cross.shape[1]))
    return facts


def capture_align(source: str, model: "str | LoadedModel" = DEFAULT_ALIGN_MODEL, *, target: str | None = None,
                  max_new_tokens: int = 64, num_beams: int = 1, device: str | Device = Device.cpu,
                  trust_remote_code: bool = False) -> Capture:
    """Translate (or take `target`) with a text encoder-decoder and capture its cross-attention."""
    from attncli.inputs import prepare_text

    if not source or not source.strip():
        raise UsageError("the source text is empty", "give at least one word")
    loaded = model if not isinstance(model, str) else load_cross_model(
        model, "text", device=device, trust_remote_code=trust_remote_code)
    family = require_cross(loaded.config, loaded.ref.model_id, "text")
    tokenizer, _ = split_processor(loaded)
    prepared = prepare_text(source, tokenizer, loaded.config)
    inputs = {k: v.to(loaded.device) for k, v in prepared.model_inputs.items()}
    if target is None:
        ids = generate_ids(loaded, family, inputs, max_new_tokens, num_beams)
    else:
        ids = given_ids(tokenizer, target, loaded, family)
    decoded = teacher_force(loaded, family, inputs, ids)
    labels, special, scores, text = target_side(tokenizer, ids, decoded.logits)
    decoding = _decoding(ids, target is not None, max_new_tokens, num_beams, _eos_id(loaded.model, family))
    return Capture(
        attentions=decoded.encoder, tokens=prepared.labels, special=prepared.special,
        model_id=loaded.ref.model_id, kind="text", arch=_arch(loaded.config, decoded), text=prepared.text,
        warnings=list(prepared.warnings) + _warn_unfinished(decoding),
        cross_attentions=decoded.cross, decoder_attentions=decoded.decoder, target_tokens=labels,
        target_special=special, target_scores=scores, target_text=text, decoding=decoding,
    )


def encoder_config(config: Any, family: str) -> Any:
    """The config of the image encoder, where the patch grid is described."""
    return config.vision_config if family == BLIP_FAMILY else config.encoder


def capture_caption(image: "Path | str | Image.Image", model: "str | LoadedModel" = DEFAULT_CAPTION_MODEL, *,
                    text: str | None = None, max_new_tokens: int = 20, num_beams: int = 1,
                    device: str | Device = Device.cpu, trust_remote_code: bool = False) -> Capture:
    """Caption an image (or score `text` as its caption) and capture which patches each word attended to."""
    from attncli.images import load_image, preprocess
    from attncli.vision import patch_tokens

    source = None
    if isinstance(image, (str, Path)):
        source = str(image)
        image = load_image(image)
    loaded = model if not isinstance(model, str) else load_cross_model(
        model, "image", device=device, trust_remote_code=trust_remote_code)
    family = require_cross(loaded.config, loaded.ref.model_id, "image")
    tokenizer, image_processor = split_processor(loaded)
    pre = preprocess([image], image_processor, encoder_config(loaded.config, family))
    inputs = {"pixel_values": pre.pixel_values.to(loaded.device)}
    if text is None:
        ids = generate_ids(loaded, family, inputs, max_new_tokens, num_beams)
    else:
        ids = given_ids(tokenizer, text, loaded, family)
    decoded = teacher_force(loaded, family, inputs, ids)
    grid = pre.grid
    if decoded.cross.shape[-1] != grid.n_tokens:
        raise NotSupportedError(
            f"{loaded.ref.model_id}: the decoder attends to {decoded.cross.shape[-1]} encoder tokens, but the "
            f"encoder's patch grid has {grid.n_tokens}", "use a ViT-style image encoder (one global patch grid)")
    labels, special, scores, caption = target_side(tokenizer, ids, decoded.logits)
    decoding = _decoding(ids, text is not None, max_new_tokens, num_beams, _eos_id(loaded.model, family))
    source_labels, source_special = patch_tokens(grid)
    return Capture(
        attentions=decoded.encoder, tokens=source_labels, special=source_special,
        model_id=loaded.ref.model_id, kind="image",
        arch=_arch(loaded.config, decoded), grid=grid, image=pre.images[0], source=source,
        warnings=_warn_unfinished(decoding), cross_attentions=decoded.cross, decoder_attentions=decoded.decoder,
        target_tokens=labels, target_special=special, target_scores=scores, target_text=caption,
        decoding=decoding,
    )
