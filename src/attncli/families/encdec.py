"""Encoder-decoder capture: what each output token attended to in the input (cross-attention).

The target is generated (greedy, or beam search returning its best beam) or given, then scored in ONE
teacher-forced forward pass over exactly those tokens: the weights shown are the ones the decoder computes for
that token sequence, whichever way it was found. For greedy decoding this equals the step-by-step generation
path (a test checks it); beam search's per-step attentions belong to beams that are reordered and pruned, so only
the returned beam is re-scored. What differs between families (start and end tokens, where the decoder's
config lives, how the forward pass returns its attentions) is a method of :class:`EncoderDecoder`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.capture import ALL, Capture, Selection, architecture
from attncli.choices import Kind, Purpose
from attncli.errors import CaptureError, UsageError
from attncli.families.base import Family, Modality, end_token, generated, stack_attentions

if TYPE_CHECKING:
    import numpy as np

    from attncli.families.loaded import LoadedModel


class EncoderDecoder(Family):
    """A model whose decoder attends to an encoder's output: the base of every cross-attention family."""

    cross = True
    processor_class = "AutoProcessor"

    def decoder_config(self, config: Any) -> Any:
        """The config that describes the decoder's positions."""
        return config

    def encoder_config(self, config: Any) -> Any:
        """The config that describes the encoder (an image encoder's patch grid)."""
        return config

    def start_id(self, model: Any) -> int:
        """The token the decoder starts from."""
        for cfg in (model.generation_config, model.config):
            start = getattr(cfg, "decoder_start_token_id", None)
            if start is not None:
                return int(start)
        raise CaptureError(f"{model.config.model_type}: the config names no decoder start token")

    def eos_id(self, model: Any) -> int | None:
        """The token that ends the target."""
        return end_token(model)

    def target_ids(self, tokenizer: Any, text: str, eos: int | None) -> list[int]:
        """A given target tokenized the way training labels are (without the start token)."""
        return list(tokenizer(text, verbose=False)["input_ids"])

    def forward(self, model: Any, inputs: dict[str, Any], decoder_in: Any) -> tuple:
        """One teacher-forced pass: (encoder, decoder, cross attentions, logits)."""
        out = model(**inputs, decoder_input_ids=decoder_in, output_attentions=True)
        return out.encoder_attentions, out.decoder_attentions, out.cross_attentions, out.logits

    def split_processor(self, loaded: "LoadedModel") -> tuple[Any, Any]:
        """(tokenizer, image processor or None) of a loaded model."""
        proc = loaded.processor
        return getattr(proc, "tokenizer", proc), getattr(proc, "image_processor", None)


@dataclass
class Decoded:
    """Teacher-forced pass over one target: arrays for batch item 0, per-layer (layers, heads, q, k)."""

    encoder: "np.ndarray"  # (enc layers, heads, source, source)
    decoder: "np.ndarray"  # (dec layers, heads, target, target)
    cross: "np.ndarray"  # (dec layers, heads, target, source)
    logits: "np.ndarray"  # (target, vocab)


def decoder_positions(config: Any, family: EncoderDecoder) -> int | None:
    """How many tokens the decoder can take (None for relative positions, as in T5)."""
    dec = family.decoder_config(config)
    for name in ("max_position_embeddings", "n_positions", "max_target_positions"):
        value = getattr(dec, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generate_ids(loaded: "LoadedModel", family: EncoderDecoder, inputs: dict[str, Any], max_new_tokens: int,
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
    start = family.start_id(loaded.model)
    if not ids or ids[0] != start:
        ids = [start] + ids  # some decoders return only the new tokens
    return ids


def given_ids(tokenizer: Any, text: str, loaded: "LoadedModel", family: EncoderDecoder) -> list[int]:
    """The start token, then the given target tokenized the way training labels are (ending with the end token)."""
    if not text.strip():
        raise UsageError("the target text is empty", "give at least one word, or leave it out to generate")
    text = text.strip()
    eos = family.eos_id(loaded.model)
    ids = family.target_ids(tokenizer, text, eos)  # verbose=False there: a long target gets our error below
    special = set(tokenizer.all_special_ids)
    if not [i for i in ids if i not in special]:
        raise UsageError(f"the target {text!r} has no tokens this model's tokenizer knows")
    if eos is not None and ids[-1] != eos:
        ids = ids + [eos]
    limit = decoder_positions(loaded.config, family)
    if limit is not None and len(ids) > limit:  # the decoder is fed the start token and all but the last
        raise UsageError(f"the target has {len(ids)} tokens but the decoder takes at most {limit}",
                         "give a shorter target")
    return [family.start_id(loaded.model)] + ids


def teacher_force(loaded: "LoadedModel", family: EncoderDecoder, inputs: dict[str, Any], ids: list[int]) -> Decoded:
    """One forward pass with the decoder fed ids[:-1]: the attentions behind every token of ids[1:]."""
    import torch

    decoder_in = torch.tensor([ids[:-1]], device=loaded.device)  # (1, target)
    with torch.inference_mode():
        enc, dec, cross, logits = family.forward(loaded.model, inputs, decoder_in)
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


def decoding(ids: list[int], given: bool, max_new_tokens: int, num_beams: int, eos: int | None) -> dict[str, Any]:
    """How the target was obtained, for the capture, the JSON output and the warnings."""
    if given:
        return {"mode": "given", "scored": "teacher-forced"}
    return generated(ids, max_new_tokens, num_beams, eos)


def unfinished(decoded: dict[str, Any]) -> list[str]:
    """A warning when generation stopped at the token limit instead of the end token."""
    if decoded.get("mode") == "generated" and not decoded.get("finished"):
        return [f"generation stopped at --max-new-tokens {decoded['max_new_tokens']} before the end token"]
    return []


def arch(config: Any, decoded: Decoded) -> dict[str, Any]:
    """Architecture facts of both halves."""
    facts = architecture(config)
    facts.update(encoder_layers=int(decoded.encoder.shape[0]), encoder_heads=int(decoded.encoder.shape[1]),
                 decoder_layers=int(decoded.cross.shape[0]), decoder_heads=int(decoded.cross.shape[1]))
    return facts


def keep_encoder(encoder: "np.ndarray", selection: Selection = ALL) -> tuple["np.ndarray", dict[str, Any]]:
    """The encoder self-attention a selection keeps (its layers and heads, every row) and the Capture fields.

    The fields (``layer_ids``, ``head_ids``, ``total_layers``, ``total_heads``) say what was kept; cross- and
    decoder attention are always kept whole, and so is an encoder under the capture budget.
    """
    n_layers, n_heads = int(encoder.shape[0]), int(encoder.shape[1])
    layers, heads = selection.layer_numbers(n_layers), selection.head_numbers(n_heads)  # checked either way
    if encoder.nbytes <= selection.whole_budget():  # small enough: every layer and head, whatever the view reads
        layers, heads = list(range(n_layers)), None
    every = len(layers) == n_layers
    kept = encoder if every else encoder[layers]  # (L', H, S, S)
    kept = kept if heads is None else kept[:, heads]  # (L', H', S, S)
    return kept, {"layer_ids": None if every else layers, "head_ids": heads, "total_layers": n_layers,
                  "total_heads": n_heads}


def _cross_family(loaded: "LoadedModel", purpose: "Purpose") -> EncoderDecoder:
    """The loaded model's family, refused when it cannot serve the purpose."""
    from attncli.families import require

    family = require(loaded.config, purpose, loaded.ref.model_id)
    assert isinstance(family, EncoderDecoder)
    return family


def capture_align(source: str, loaded: "LoadedModel", *, target: str | None = None, max_new_tokens: int = 64,
                  num_beams: int = 1, selection: Selection = ALL) -> Capture:
    """Translate (or take `target`) with a text encoder-decoder and capture its cross-attention.

    ``selection`` picks the encoder self-attention layers and heads kept (keep_encoder); cross-attention is whole.
    """
    from attncli.inputs import prepare_text

    if not source or not source.strip():
        raise UsageError("the source text is empty", "give at least one word")
    family = _cross_family(loaded, Purpose.align)
    if family.modality is Modality.speech:
        raise UsageError(f"{loaded.ref.model_id} is a {family.name}: it reads audio, not text",
                         "give it a recording: attn align AUDIO.wav")
    tokenizer, _ = family.split_processor(loaded)
    prepared = prepare_text(source, tokenizer, loaded.config)
    import inspect

    accepted = inspect.signature(loaded.model.forward).parameters  # a BERT-style tokenizer adds token_type_ids
    inputs = {k: v.to(loaded.device) for k, v in prepared.model_inputs.items() if k in accepted}
    if target is None:
        ids = generate_ids(loaded, family, inputs, max_new_tokens, num_beams)
    else:
        ids = given_ids(tokenizer, target, loaded, family)
    decoded = teacher_force(loaded, family, inputs, ids)
    labels, special, scores, text = target_side(tokenizer, ids, decoded.logits)
    how = decoding(ids, target is not None, max_new_tokens, num_beams, family.eos_id(loaded.model))
    encoder, kept = keep_encoder(decoded.encoder, selection)
    return Capture(
        attentions=encoder, tokens=prepared.labels, special=prepared.special,
        model_id=loaded.ref.model_id, model_path=loaded.ref.location, kind=Kind.text,
        arch=arch(loaded.config, decoded), text=prepared.text,
        warnings=list(prepared.warnings) + unfinished(how),
        cross_attentions=decoded.cross, decoder_attentions=decoded.decoder, target_tokens=labels,
        target_special=special, target_scores=scores, target_text=text, decoding=how, **kept,
    )
