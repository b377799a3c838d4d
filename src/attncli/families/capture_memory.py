"""Refuse, before the forward, a capture whose attention weights would not fit in the memory free now."""

from __future__ import annotations

from typing import Any

from attncli.errors import CaptureError


def check_memory(inputs: dict[str, Any], layers: int, heads: int, rows: list[int] | None,
                 eager: tuple[int, int] | None = None) -> None:
    """Refuse, before the forward, a capture whose attention weights would not fit in the memory free now.

    Selective capture holds ``layers × heads × rows × tokens`` float32 weights; an eager model (``eager`` = its
    layers and heads) returns every layer's full matrices, copied once more when they are stacked.
    """
    ids = inputs.get("input_ids")
    if ids is None:
        return  # images: the patch count is small and fixed by the model
    batch, n = (int(ids.shape[0]), int(ids.shape[-1])) if ids.dim() > 1 else (1, int(ids.shape[-1]))
    if eager is not None:
        needed = 2 * batch * eager[0] * eager[1] * n * n * 4
    else:
        needed = batch * layers * heads * (n if rows is None else len(rows)) * n * 4
    import psutil

    free = psutil.virtual_memory().available
    if needed > 0.9 * free:
        what = f"{layers} layer{'s' if layers != 1 else ''} × {heads} head{'s' if heads != 1 else ''}"
        raise CaptureError(f"keeping the attention weights of {what} over {n} tokens needs "
                           f"{_gib(needed)}, more than the {_gib(free)} of memory free",
                           "keep less: one layer (--layer N, no --layers), some heads (--heads 0-3), or one "
                           "token's rows at every layer (--token WORD)")


def _gib(n: int) -> str:
    """Bytes as '38.7 GB' (or '512 MB' under a gigabyte)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
