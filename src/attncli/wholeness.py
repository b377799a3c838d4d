"""Is a capture read from disk whole: every array present, shapes that agree, finite weights, rows summing to 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

ROW_ATOL = 1e-2  # loose enough for float16 storage, tight enough to catch weights that are not distributions


def problem(capture: "Capture") -> str | None:
    """What is wrong with a capture (the first thing found), or None when it is whole."""
    n = len(capture.tokens)
    if len(capture.special) != n:
        return f"{n} tokens but {len(capture.special)} special-token flags"
    rows = len(capture.query_ids) if capture.query_ids is not None else n  # a capture may keep some query rows
    found = _weights("attentions", capture.attentions, rows, n, bool(capture.arch.get("sinks")))
    if found:
        return found
    if capture.grid is not None and capture.grid.n_tokens != n:
        grid = capture.grid
        return (f"its patch grid ({grid.prefix} prefix + {grid.rows}×{grid.cols} patches = {grid.n_tokens} tokens) "
                f"does not match its {n} tokens")
    if capture.prompt_tokens is not None and not (0 < capture.prompt_tokens < n
                                                  and len(capture.target_tokens) == n - capture.prompt_tokens):
        return (f"it says {capture.prompt_tokens} of its {n} tokens are the prompt but lists "
                f"{len(capture.target_tokens)} generated tokens")
    if capture.cross_attentions is not None:
        t = len(capture.target_tokens)
        found = _weights("cross_attentions", capture.cross_attentions, t, n) or (
            _weights("decoder_attentions", capture.decoder_attentions, t, t)
            if capture.decoder_attentions is not None else None)
        if found:
            return found
    return _audio(capture)


def _audio(capture: "Capture") -> str | None:
    """What is wrong with the time axis of an audio capture, or None."""
    from attncli.choices import Kind

    if capture.kind is not Kind.audio:
        return None
    if capture.cross_attentions is None or not capture.frame_seconds or capture.frame_seconds <= 0:
        return "it is an audio capture without cross-attention or a time step per encoder frame"
    if capture.target_times and len(capture.target_times) != len(capture.target_tokens):
        return f"{len(capture.target_times)} token times for {len(capture.target_tokens)} target tokens"
    if capture.spectrogram is not None and capture.spectrogram.ndim != 2:
        return f"its spectrogram is {capture.spectrogram.ndim}-D, not 2-D (bins, frames)"
    return None


def _weights(name: str, array: "np.ndarray", queries: int, keys: int, sinks: bool = False) -> str | None:
    """What is wrong with one (layers, heads, query, key) array of attention weights, or None.

    With ``sinks`` (a model whose softmax includes learned sink logits, as gpt-oss) rows sum to at most 1.
    """
    import numpy as np

    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        return f"{name} is not an array of floating-point weights"
    if array.ndim != 4:
        return f"{name} is {array.ndim}-D, not 4-D (layers, heads, query, key)"
    if 0 in array.shape:
        return f"{name} is empty (shape {tuple(array.shape)})"
    if array.shape[2:] != (queries, keys):
        return f"{name} is {array.shape[2]}×{array.shape[3]} positions but there are {queries}×{keys} tokens"
    if not np.isfinite(array).all():
        return f"{name} holds weights that are not finite (NaN or infinity)"
    sums = array.sum(axis=-1, dtype=np.float64)  # (layers, heads, query)
    if sinks and not (array < 0).any() and (sums <= 1.0 + ROW_ATOL).all():
        return None
    if (array < 0).any() or not np.allclose(sums, 1.0, atol=ROW_ATOL):
        worst = float(np.abs(sums - 1.0).max())
        return f"rows of {name} do not sum to 1 (off by up to {worst:.3g}), so they are not attention weights"
    return None
