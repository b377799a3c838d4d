"""Text in, self-attention out: the capture shared by text encoders and causal language models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.capture import ALL, Capture, Report, Selection, architecture
from attncli.choices import Kind, Purpose

if TYPE_CHECKING:
    from attncli.families.loaded import LoadedModel


def capture_text(text: str, loaded: "LoadedModel", selection: Selection = ALL,
                 progress: Report | None = None) -> Capture:
    """Tokenize text, run the loaded model once keeping the selection's attention weights, return a Capture."""
    from attncli.families import require
    from attncli.families.base import last_logits
    from attncli.families.selective import capture_selected, item_fields
    from attncli.inputs import prepare_text

    config = loaded.config
    require(config, Purpose.text, loaded.ref.model_id)
    prepared = prepare_text(text, loaded.processor, config)
    inputs = {k: v.to(loaded.device) for k, v in prepared.model_inputs.items()}
    weights, kept, _ = capture_selected(loaded.model, inputs, selection, prepared.labels, prepared.special,
                                        prepared.words, progress=progress, **last_logits(loaded.model, 1))
    return Capture(
        attentions=weights[0],  # (layers, heads, rows, key)
        tokens=prepared.labels,
        special=prepared.special,
        model_id=loaded.ref.model_id,
        model_path=loaded.ref.location,
        kind=Kind.text,
        arch=architecture(config),
        text=prepared.text,
        warnings=list(prepared.warnings) + list(loaded.warnings),
        words=list(prepared.words),
        **item_fields(kept, 0),
    )
