"""Pick layers and heads, fuse heads, renormalise rows: the small steps every view needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from attncli.choices import Fuse
from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np


def resolve_index(value: int, count: int, what: str, owner: str = "the model") -> int:
    """0-based index with -1 meaning the last; out of range names the valid range."""
    if -count <= value < count:
        return value % count
    raise UsageError(f"{what} {value} is out of range: {owner} has {count} {what}s (0..{count - 1}, or -1 for the last)")


def heads_phrase(head: int | None, fuse: Fuse | str, n_heads: int | None = None) -> str:
    """'head 3', 'mean of 12 heads', 'its only head'."""
    if head is not None:
        return f"head {head}"
    fuse = Fuse(fuse).value
    if not n_heads:
        return f"heads fused by {fuse}"
    return f"{fuse} of {n_heads} heads" if n_heads > 1 else "its only head"


def fuse_heads(layer: "np.ndarray", fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
    """Combine (heads, query, key) into (query, key) by mean, max or min over heads."""
    how = Fuse(fuse)
    if layer.shape[0] == 1:  # one head (or heads fused while capturing): itself, not a copy
        return layer[0]
    if how is Fuse.mean:
        return layer.mean(axis=0)
    if how is Fuse.max:
        return layer.max(axis=0)
    return layer.min(axis=0)


def layer_map(
    attentions: "np.ndarray", layer: int, head: int | None = None, fuse: Fuse | str = Fuse.mean
) -> "np.ndarray":
    """(query, key) map of one layer: a single head, or all heads fused."""
    n_layers, n_heads = attentions.shape[:2]
    layer_i = resolve_index(layer, n_layers, "layer")
    if head is not None:
        return attentions[layer_i, resolve_index(head, n_heads, "head")]
    return fuse_heads(attentions[layer_i], fuse)


def keep_tokens(matrix: "np.ndarray", keep: Sequence[bool]) -> "np.ndarray":
    """Drop the rows and columns not kept and renormalise each row to sum to 1 over the rest."""
    import numpy as np

    idx = np.flatnonzero(np.asarray(keep, dtype=bool))
    sub = matrix[np.ix_(idx, idx)]
    totals = sub.sum(axis=-1, keepdims=True)  # keepdims: divide each row by its own total
    return np.divide(sub, totals, out=np.zeros_like(sub), where=totals > 0)


def top_k(row: "np.ndarray", k: int) -> list[tuple[int, float]]:
    """The k largest entries of a row as (index, weight), largest first; ties keep the earlier index."""
    import numpy as np

    order = np.argsort(-row, kind="stable")[: max(k, 0)]
    return [(int(i), float(row[i])) for i in order]


def top_k_rows(matrix: "np.ndarray", k: int) -> list[list[tuple[int, float]]]:
    """top_k of every row of a (rows, keys) matrix, the same answer, without sorting whole rows.

    A partition finds each row's k-th largest weight; only the entries at or above it are sorted (by weight,
    then index). A row where more than 4k entries tie at that weight is sorted whole, as top_k does.
    """
    import numpy as np

    rows, n = matrix.shape
    k = min(max(k, 0), n)
    if k == 0 or rows == 0:
        return [[] for _ in range(rows)]
    block = max(1, (16 << 20) // (8 * n))  # rows per partition: its two temporaries stay within 32 MB
    kth = np.concatenate([-np.partition(-matrix[i:i + block], k - 1, axis=1)[:, k - 1]
                          for i in range(0, rows, block)])  # (rows,): the k-th largest weight of each row
    out = []
    for row, floor in zip(matrix, kth):
        idx = np.flatnonzero(row >= floor)
        if len(idx) > 4 * k:
            out.append(top_k(row, k))
            continue
        order = idx[np.lexsort((idx, -row[idx]))][:k]
        out.append([(int(i), float(row[i])) for i in order])
    return out
