"""Causal language models (GPT-2, Llama, Mistral, …): each token attends to itself and the tokens before it.

``attn generate`` decodes deterministically (greedy, or beam search returning its best beam), then runs ONE
teacher-forced forward pass over the prompt and the generated tokens with selective capture: query row
``P + t - 1`` of that pass is exactly what the model computed when it produced generated token ``t`` step by
step (a test checks it against step-by-step generation), and its logits give that token's probability.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from attncli.capture import ALL, Capture, Report, Selection, architecture
from attncli.choices import Kind, Purpose
from attncli.errors import UsageError
from attncli.families.base import Family, Modality, end_token, generated, is_causal_lm, last_logits

if TYPE_CHECKING:
    from attncli.families.loaded import LoadedModel


class CausalLM(Family):
    """A decoder-only text model; loaded with its language-model head when the checkpoint has one."""

    name = "causal language model"
    examples = "GPT-2, Llama, Mistral"
    modality = Modality.text
    purposes = frozenset({Purpose.text, Purpose.text_classification, Purpose.generate})
    default_class = "AutoModelForCausalLM"

    def matches(self, config: Any) -> bool:
        """A text config that is not an encoder-decoder and whose model type or architectures are causal LMs."""
        if getattr(config, "is_encoder_decoder", False) or hasattr(config, "vision_config"):
            return False
        return is_causal_lm(config)

    def model_class(self, config: Any, purpose: Purpose) -> Any:
        """Generation needs the language-model head even when the checkpoint was saved without one."""
        import transformers

        cls = super().model_class(config, purpose)
        if purpose is Purpose.generate and not cls.__name__.endswith(("ForCausalLM", "LMHeadModel")):
            return transformers.AutoModelForCausalLM
        return cls


def positions(config: Any) -> int | None:
    """How many positions the model has (None when the config does not say)."""
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_length(n_prompt: int, max_new_tokens: int, num_beams: int, config: Any, model_id: str) -> None:
    """Refuse settings the model cannot run: no room left after the prompt, or not a positive count."""
    if max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens {max_new_tokens}: give at least 1")
    if num_beams < 1:
        raise UsageError(f"--num-beams {num_beams}: give at least 1")
    limit = positions(config)
    if limit is not None and n_prompt + max_new_tokens > limit:
        room = limit - n_prompt
        raise UsageError(f"the prompt has {n_prompt} tokens and --max-new-tokens {max_new_tokens} would reach "
                         f"{n_prompt + max_new_tokens}, past the {limit} positions of {model_id}",
                         f"give --max-new-tokens {room} or less" if room > 0 else "give a shorter prompt")


def generate_ids(loaded: "LoadedModel", inputs: dict[str, Any], max_new_tokens: int, num_beams: int) -> list[int]:
    """The new token ids, decoded deterministically with only these settings (not the checkpoint's sampling)."""
    import torch
    from transformers import GenerationConfig

    eos = end_token(loaded.model)
    pad = getattr(loaded.model.generation_config, "pad_token_id", None)
    settings = GenerationConfig(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                                num_return_sequences=1, eos_token_id=eos, pad_token_id=eos if pad is None else pad)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generation-config advice is not for users
        out = loaded.model.generate(**inputs, generation_config=settings)  # (1, prompt + new)
    return out[0, inputs["input_ids"].shape[-1]:].tolist()


def decoded_offsets(tokenizer: Any, ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text of generated ids and each id's (start, end) in it, so labels show text, not byte markers."""
    def decode(part: list[int]) -> str:
        return tokenizer.decode(part, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    text = decode(ids)
    offsets, start = [], 0
    for t in range(len(ids)):
        end = max(start, min(len(decode(ids[: t + 1])), len(text)))  # a cut multi-byte character: one span
        offsets.append((start, end))
        start = end
    return text, offsets


def capture_generate(prompt: str, loaded: "LoadedModel", selection: Selection = ALL, *, max_new_tokens: int = 20,
                     num_beams: int = 1, progress: Report | None = None) -> Capture:
    """Continue a prompt with a causal LM and capture, per generated token, what it attended to."""
    import dataclasses

    import numpy as np

    from attncli.families import require
    from attncli.families.selective import capture_selected, item_fields
    from attncli.inputs import prepare_text, token_labels

    if not prompt or not prompt.strip():
        raise UsageError("the prompt is empty", "give at least one word")
    require(loaded.config, Purpose.generate, loaded.ref.model_id)
    tokenizer = loaded.processor
    prepared = prepare_text(prompt, tokenizer, loaded.config)
    n_prompt = len(prepared.labels)
    check_length(n_prompt, max_new_tokens, num_beams, loaded.config, loaded.ref.model_id)
    inputs = {k: v.to(loaded.device) for k, v in prepared.model_inputs.items() if k in ("input_ids", "attention_mask")}
    if progress is not None:
        progress(f"generating up to {max_new_tokens} tokens", None, None)
    new = generate_ids(loaded, inputs, max_new_tokens, num_beams)
    if not new:
        raise UsageError("the model generated no tokens", "try a longer --max-new-tokens")
    import torch

    ids = inputs["input_ids"][0].tolist() + new
    full = {"input_ids": torch.tensor([ids], device=loaded.device)}  # (1, N)
    call = last_logits(loaded.model, len(new) + 1)  # never the (N, vocab) logits of a long prompt
    labels = list(prepared.labels)
    if selection.layers is not None and selection.rows is None and selection.query is None:
        # The view reads the rows of the steps that produced the new tokens: the rest of a long prompt's N × N
        # is never computed (--layers all keeps every row, to re-render anything later).
        selection = dataclasses.replace(selection, rows=tuple(range(n_prompt - 1, len(ids) - 1)))
    weights, kept, output = capture_selected(loaded.model, full, selection, labels, list(prepared.special),
                                             list(prepared.words), progress=progress, **call)
    logits = output.logits[0, -(len(new) + 1):-1].float().cpu().numpy()  # (new, vocab): row t predicts new[t]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    special_ids = set(tokenizer.all_special_ids)
    special = [i in special_ids for i in new]
    text, offsets = decoded_offsets(tokenizer, new)
    new_labels = token_labels(tokenizer, new, offsets, text, special)
    how = generated(new, max_new_tokens, num_beams, end_token(loaded.model))
    return Capture(
        attentions=weights[0], tokens=labels + new_labels, special=list(prepared.special) + special,
        model_id=loaded.ref.model_id, model_path=loaded.ref.location, kind=Kind.text,
        arch=architecture(loaded.config), text=prepared.text,
        warnings=list(prepared.warnings) + list(loaded.warnings) + ([] if how["finished"] else [
            f"generation stopped at --max-new-tokens {max_new_tokens} before the end token"]),
        words=list(prepared.words) + [None] * len(new) if prepared.words else [],
        target_tokens=new_labels, target_special=special,
        target_scores=[float(probs[t, tok]) for t, tok in enumerate(new)],
        target_text=tokenizer.decode(new, skip_special_tokens=True), decoding=how, prompt_tokens=n_prompt,
        **item_fields(kept, 0),
    )


FAMILY = CausalLM()
