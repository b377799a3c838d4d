"""Text in, self-attention out: the capture shared by text encoders and causal language models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.capture import Capture, architecture, stack_attentions
from attncli.choices import Kind, Purpose

if TYPE_CHECKING:
    from attncli.models import LoadedModel


def capture_text(text: str, loaded: "LoadedModel") -> Capture:
    """Tokenize text, run the loaded model once with attentions returned, and return a Capture."""
    import torch

    from attncli.families import require
    from attncli.inputs import prepare_text

    config = loaded.config
    require(config, Purpose.text, loaded.ref.model_id)
    prepared = prepare_text(text, loaded.processor, config)
    inputs = {k: v.to(loaded.device) for k, v in prepared.model_inputs.items()}
    with torch.inference_mode():
        out = loaded.model(**inputs, output_attentions=True)
    return Capture(
        attentions=stack_attentions(getattr(out, "attentions", None)),
        tokens=prepared.labels,
        special=prepared.special,
        model_id=loaded.ref.model_id,
        model_path=loaded.ref.location,
        kind=Kind.text,
        arch=architecture(config),
        text=prepared.text,
        warnings=list(prepared.warnings),
        words=list(prepared.words),
    )
