"""Run a capture's input through its classifier again, with gradients, for gradient rollout.

A Capture stores attention but not gradients (they depend on the class explained), so gradient rollout
reloads the classifier named by the capture (or the one given), rebuilds the same input — the image file it
came from, or its text — and differentiates the target class's logit with respect to every attention map.
The new forward pass must reproduce the capture's attention; if it does not, the capture and the model
disagree and the result is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.choices import Device, Kind, Purpose
from attncli.errors import CaptureError, UsageError

if TYPE_CHECKING:
    from attncli.capture import Capture
    from attncli.methods.gradients import GradientCapture
    from attncli.families.loaded import LoadedModel

# The recomputed attention may differ from the stored one by float noise only.
MATCH_ATOL = 1e-4


def load_classifier(kind: str, model: "str | LoadedModel", *, device: str | Device = Device.cpu,
                    trust_remote_code: bool = False, allow_pickle: bool = False) -> "LoadedModel":
    """A classifier for kind "image" or "text": a model saved without a trained classifier is refused."""
    from attncli.sources import load

    purpose = Purpose.image_classification if kind == "image" else Purpose.text_classification
    return load(model, purpose, device=device, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def model_inputs(capture: "Capture", loaded: "LoadedModel") -> dict:
    """The capture's input rebuilt for the model: the image file it came from, or its text."""
    if capture.kind is Kind.image:
        from attncli.families.vit import preprocess
        from attncli.images import load_image

        if not capture.source or not Path(capture.source).is_file():
            raise UsageError(f"grad-rollout needs the image this capture came from ({capture.source or 'unknown'})",
                             "give the image file instead of the saved capture")
        prepared = preprocess([load_image(capture.source)], loaded.processor, loaded.config)
        return {"pixel_values": prepared.pixel_values.to(loaded.device, dtype=next(loaded.model.parameters()).dtype)}
    if capture.text is None:
        raise UsageError("this capture has no text to run again for grad-rollout", "capture the text again")
    from attncli.inputs import prepare_text

    text = prepare_text(capture.text, loaded.processor, loaded.config)
    if text.labels != capture.tokens:
        raise CaptureError("the classifier's tokenizer splits the text differently from the capture",
                           "run the command on the text with the classifier as --model")
    return {k: v.to(loaded.device) for k, v in text.model_inputs.items()}


def gradients_for(capture: "Capture", target: str | int | None = None, model: "str | LoadedModel | None" = None,
                  *, device: str | Device = Device.cpu, trust_remote_code: bool = False,
                  allow_pickle: bool = False, position: int | None = None) -> "GradientCapture":
    """Attention and d(target logit)/d(attention) for the capture's input (target: label, index or prediction).

    For a token classifier, ``position`` is the token whose tag is explained (default target: its predicted tag).
    """
    import numpy as np

    from attncli.methods.gradients import attention_gradients

    loaded = load_classifier(capture.kind, model or capture.model_path or capture.model_id, device=device,
                             trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    forget_inference_tensors(loaded.model)
    result = attention_gradients(loaded.model, model_inputs(capture, loaded), target, position)[0]
    if result.attentions.shape != capture.attentions.shape or not np.allclose(
            result.attentions, capture.attentions, atol=MATCH_ATOL):
        raise CaptureError(f"{loaded.ref.model_id} does not reproduce this capture's attention",
                           "the capture was made with another model or input; capture again, then use grad-rollout")
    return result


def forget_inference_tensors(model: Any) -> None:
    """Empty the LRU caches transformers keeps on a model's classes, before a pass that needs gradients.

    BEiT caches its relative position index per window size (``compile_compatible_method_lru_cache``, one cache
    per class for the whole process): made during an inference-mode capture, that index is an inference tensor,
    and the gradient pass that indexes with it fails ("Inference tensors cannot be saved for backward").
    """
    seen: set[type] = set()
    for module in model.modules():
        for klass in type(module).__mro__:
            if klass in seen or not klass.__module__.startswith("transformers."):
                continue
            seen.add(klass)
            for value in vars(klass).values():
                function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                for cell in getattr(function, "__closure__", None) or ():
                    try:
                        clear = getattr(cell.cell_contents, "cache_clear", None)
                    except ValueError:  # an empty cell
                        continue
                    if callable(clear):
                        clear()
