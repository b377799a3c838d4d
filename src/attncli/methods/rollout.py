"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Each layer's heads are fused into one (query, key) matrix ``A``; the residual connection is modelled by
``Ã = (A + I) / 2`` followed by a row renormalisation (``keepdims``: every row is divided by its own sum,
so rows of ``Ã`` sum to 1 even when fusion by max/min or discarding left ``A``'s rows off 1). Rollout up
to layer ``l`` is the product ``Ã_l · Ã_{l-1} · … · Ã_0`` — later layers on the left — so row ``i`` of the
result says how much of output token ``i`` at layer ``l`` comes from each input token. Every row sums to 1.

``discard_ratio`` follows vit-explain: before adding the identity, the lowest-weighted entries of the fused
matrix are set to zero. Unlike vit-explain (which only spares the single entry [CLS, CLS]), the whole
columns listed in ``protect`` (by default the first token, CLS) are never discarded.

``drop`` (``--drop-sinks``) names, per layer, token columns to remove before the product: in that layer's fused
matrix those columns are set to 0 and every row is renormalised to sum to 1 again (``methods.sinks.drop_columns``),
then discarding and the residual step follow as usual. With the columns of each layer's patch sinks
(``methods.sinks.sink_columns``) the rollout no longer routes attention through them; their own tokens still pass
their value up through the residual identity, so a sink patch keeps a small weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from attncli.choices import Fuse
from attncli.errors import UsageError
from attncli.methods.heads import fuse_heads, resolve_index
from attncli.methods.spec import UPTO, Inputs, MethodInfo, Words

if TYPE_CHECKING:
    import numpy as np


def residual_step(matrix: "np.ndarray") -> "np.ndarray":
    """(A + I) / 2 with every row renormalised to sum to 1 (keepdims)."""
    import numpy as np

    mixed = (matrix + np.eye(matrix.shape[-1], dtype=matrix.dtype)) / 2  # (Q, K)
    return mixed / mixed.sum(axis=-1, keepdims=True)  # diagonal ≥ 1/2 so no row sums to 0


def discard_lowest(matrix: "np.ndarray", ratio: float, protect: Sequence[int] = (0,)) -> "np.ndarray":
    """Zero the ``ratio`` fraction of lowest entries, counting and touching only unprotected columns."""
    import numpy as np

    if not 0.0 <= ratio < 1.0:
        raise UsageError(f"--discard-ratio {ratio}: must be at least 0 and below 1", "e.g. --discard-ratio 0.9")
    out = np.array(matrix, copy=True)
    if ratio == 0.0:
        return out
    candidates = np.ones(out.shape, dtype=bool)  # (Q, K)
    candidates[:, list(protect)] = False
    flat_idx = np.flatnonzero(candidates)
    count = int(ratio * flat_idx.size)
    if count == 0:
        return out
    values = out.reshape(-1)[flat_idx]
    lowest = flat_idx[np.argsort(values, kind="stable")[:count]]  # ties: the earlier position goes first
    out.reshape(-1)[lowest] = 0.0
    return out


def fused_layers(attentions: "np.ndarray", fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
    """(layers, heads, query, key) → (layers, query, key) with the heads of each layer fused."""
    import numpy as np

    return np.stack([fuse_heads(layer, fuse) for layer in attentions]).astype(np.float64)


def dropped(fused: "np.ndarray", drop: "Sequence[Sequence[int]] | None") -> "np.ndarray":
    """(layers, Q, K) fused matrices with each layer's ``drop`` columns removed and rows renormalised."""
    import numpy as np

    if drop is None:
        return fused
    if len(drop) < fused.shape[0]:
        raise UsageError(f"drop names columns for {len(drop)} layers, the attention has {fused.shape[0]}")
    from attncli.methods.sinks import drop_columns

    return np.stack([drop_columns(m, cols) for m, cols in zip(fused, drop)])


def rollout_layers(
    attentions: "np.ndarray",
    fuse: Fuse | str = Fuse.mean,
    discard_ratio: float = 0.0,
    protect: Sequence[int] = (0,),
    drop: "Sequence[Sequence[int]] | None" = None,
) -> "np.ndarray":
    """Rollout after every layer: ``out[l]`` is the rollout from the input up to layer ``l``, (layers, Q, K).

    ``drop[l]``: token columns removed from layer ``l`` before the product (the module docstring says how).
    """
    import numpy as np

    fused = dropped(fused_layers(attentions, fuse), drop)  # (L, Q, K), float64 so long products do not drift
    n = fused.shape[-1]
    result = np.eye(n)
    steps = []
    for layer in fused:
        step = residual_step(discard_lowest(layer, discard_ratio, protect))  # (Q, K)
        result = step @ result  # later layers multiply on the left
        steps.append(result)
    return np.stack(steps).astype(np.float32)


def rollout(
    attentions: "np.ndarray",
    layer: int = -1,
    fuse: Fuse | str = Fuse.mean,
    discard_ratio: float = 0.0,
    protect: Sequence[int] = (0,),
    drop: "Sequence[Sequence[int]] | None" = None,
) -> "np.ndarray":
    """(query, key) rollout from the input up to ``layer`` (0-based, -1 the last); rows sum to 1."""
    layer_i = resolve_index(layer, attentions.shape[0], "layer")
    kept = None if drop is None else drop[: layer_i + 1]
    return rollout_layers(attentions[: layer_i + 1], fuse, discard_ratio, protect, kept)[-1]


def _rows(inputs: Inputs) -> "np.ndarray":
    matrix = rollout(inputs.attentions, inputs.layer, inputs.fuse, inputs.discard_ratio, inputs.protect, inputs.drop)
    return matrix if inputs.queries is None else matrix[inputs.queries]


def _every_layer(inputs: Inputs) -> "np.ndarray":
    rolled = rollout_layers(inputs.attentions, inputs.fuse, inputs.discard_ratio, inputs.protect, inputs.drop)
    return rolled if inputs.queries is None else rolled[:, inputs.queries]  # (L, Q, K)


def _words(w: Words) -> str:
    extra = (f", discard {w.discard_ratio:g}" if w.discard_ratio else "") + (", sinks dropped" if w.drop_sinks else "")
    return f"rollout of {w.span} ({w.fuse}{extra})"


METHOD = MethodInfo(name="rollout", summary="every layer up to --layer with the residual path (Abnar & Zuidema)",
                    span=UPTO, rows=_rows, words=_words, fuses=True, minmax=True, every_layer=_every_layer,
                    options=frozenset({"discard_ratio", "drop_sinks"}))
