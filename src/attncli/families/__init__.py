"""The registry of model families: which family a config belongs to, and whether it serves a command.

Order matters: the first family whose ``matches(config)`` is true wins, so specific families come first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from attncli.choices import Purpose
from attncli.errors import NotSupportedError, UsageError
from attncli.families.base import Modality

if TYPE_CHECKING:
    from attncli.families.base import Family

MODULES = (
    "attncli.families.speech_seq2seq",
    "attncli.families.speech_encoder",
    "attncli.families.convolutional",
    "attncli.families.windowed_vision",
    "attncli.families.blip",
    "attncli.families.vision_encoder_decoder",
    "attncli.families.dual_encoder",
    "attncli.families.seq2seq_text",
    "attncli.families.vit",
    "attncli.families.causal_lm",
    "attncli.families.text_encoder",
)

# Which command serves each purpose, for "use attn caption instead"-style hints.
COMMANDS = {Purpose.text: 'attn explain "TEXT"', Purpose.image: "attn heatmap IMAGE",
            Purpose.image_classification: "attn classify IMAGE", Purpose.text_classification: "attn explain",
            Purpose.align: 'attn align "TEXT"', Purpose.caption: "attn caption IMAGE",
            Purpose.generate: 'attn generate "PROMPT"'}


# How a purpose is named in messages.
NAMES = {Purpose.text: "attn explain", Purpose.image: "this command", Purpose.image_classification: "attn classify",
         Purpose.text_classification: "grad-rollout on text", Purpose.align: "attn align",
         Purpose.caption: "attn caption", Purpose.generate: "attn generate"}


def families() -> "list[Family]":
    """Every registered family, most specific first."""
    return [importlib.import_module(name).FAMILY for name in MODULES]


def family_of(config: Any) -> "Family | None":
    """The family a transformers config belongs to, or None."""
    return next((f for f in families() if f.matches(config)), None)


def serving(purpose: Purpose) -> "list[Family]":
    """The families a command can use."""
    return [f for f in families() if purpose in f.purposes]


def supported(purpose: Purpose) -> str:
    """'text encoders (BERT, …) or causal language models (GPT-2, …)' for a purpose."""
    return " or ".join(f"a {f.describe()}" for f in serving(purpose))


def require(config: Any, purpose: Purpose, model_id: str) -> "Family":
    """The model's family, or a one-line error that says what the model is and what the command takes."""
    family = family_of(config)
    model_type = getattr(config, "model_type", None) or "unknown type"
    if family is not None and purpose in family.purposes:
        return family
    wanted = supported(purpose)
    if family is None:
        raise NotSupportedError(f"{model_id} ({model_type}) is not a kind of model attncli knows",
                                f"{NAMES[purpose]} takes {wanted}")
    if family.unsupported:
        raise NotSupportedError(f"{model_id} ({model_type}) is not supported yet: {family.unsupported}",
                                family.instead or f"{NAMES[purpose]} takes {wanted}")
    # The command to suggest: one reading the same kind of input first (a dual encoder asked to classify an
    # image is sent to attn heatmap IMAGE, not to its text tower).
    near = {Purpose.image_classification: Purpose.image, Purpose.image: Purpose.image_classification}.get(purpose)
    order = ([near] if near is not None else []) + list(Purpose)
    other = next((p for p in order if p in family.purposes and p is not Purpose.text_classification), None)
    message = f"{model_id} is a {family.name} ({model_type}), but {NAMES[purpose]} takes {wanted}"
    if purpose in (Purpose.align, Purpose.caption) and not family.cross:
        message = f"{model_id} is a {family.name} ({model_type}) and has no cross-attention: " \
                  f"{NAMES[purpose]} takes {wanted}"
        raise UsageError(message, f"for this model use {COMMANDS[other]}" if other else None)
    if other is None:
        raise NotSupportedError(message, f"no attncli command reads {family.modality.value} input yet")
    use = "attn align AUDIO.wav" if family.modality is Modality.speech else COMMANDS[other]
    raise UsageError(message, f"for this model use {use}")
