"""Patch sinks: the few image patches that soak up a large share of a layer's attention.

Vision transformers without register tokens (DINOv2, DeiT, OpenCLIP) are known to repurpose a few
low-information background patches as global scratch space: they get high norms and attract attention from
most queries (Darcet et al., "Vision Transformers Need Registers", 2023). A heatmap then shows a bright dot
that says nothing about the image. This module finds such patches from the attention weights alone.

The rule, per layer (heads fused by their mean, so every query row still sums to 1):

1. a patch's **share** is the attention it receives, averaged over the queries (every token by default,
   or one query such as [CLS]); the shares of all keys, prefix tokens included, sum to 1;
2. a patch is a candidate when its share is at least ``ratio`` times the uniform share ``1 / keys``
   (default 10×: on a 16×16 grid with [CLS], uniform is 0.39% and a candidate holds ≥ 3.9%);
3. the ``max_sinks`` candidates with the largest shares (default 5) are the layer's sinks **if together
   they hold at least ``min_total`` of the attention** (default 10%); otherwise the layer has none.

The ratio is relative to the grid, so the rule is meant for real grids (hundreds of patches): with fewer
than ``ratio`` keys no patch can qualify.

What the rule finds is measured, not interpreted. The largest sinks measured so far are one head's choice: on
ten DINOv2-S/14 photos, head 5 of layer 0 puts 44.6–99.7% of its attention, whatever the query, on one patch
(docs/real-photos.md); on the 8×8 shapes model, head 1 of layer 5 puts 54% on an arm of a cross. Smaller ones
(camera.png, layer 9) are spread over heads, none giving more than 10.6%. A sink can be background or part of
the object; the weights alone do not say which.

Fields of each sink: ``row`` and ``col`` (0-based, row-major patch grid), ``token`` (index in the sequence,
prefix tokens first) and ``share`` (fraction of the attention, 0–1); given every head
(``(layers, heads, query, key)``), also ``head`` (the head that gives the patch the most attention) and
``head_share`` (that head's attention on it, averaged over the same queries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

RATIO = 10.0
MAX_SINKS = 5
MIN_TOTAL = 0.10


def received_share(attention: "np.ndarray", query: int | None = None) -> "np.ndarray":
    """(layers, keys) attention each key receives, averaged over queries (or from one query), heads fused."""
    import numpy as np

    att = np.asarray(attention, dtype=np.float64)
    if att.ndim == 2:  # one (query, key) map
        att = att[None]
    elif att.ndim == 4:  # (layers, heads, query, key): mean keeps rows summing to 1
        att = att.mean(axis=1)
    if att.ndim != 3 or att.shape[-1] != att.shape[-2]:
        raise UsageError(f"patch sinks need (layers, heads, query, key) or (layers, query, key) attention, "
                         f"got shape {tuple(np.shape(attention))}")
    if query is None:
        return att.mean(axis=1)  # (layers, keys)
    if not -att.shape[1] <= query < att.shape[1]:
        raise UsageError(f"query {query} is out of range", f"valid queries are 0..{att.shape[1] - 1}")
    return att[:, query, :]  # (layers, keys)


def patch_sinks(
    attention: "np.ndarray",
    prefix: int,
    rows: int,
    cols: int,
    *,
    query: int | None = None,
    ratio: float = RATIO,
    max_sinks: int = MAX_SINKS,
    min_total: float = MIN_TOTAL,
) -> list[list[dict]]:
    """Per layer, the patches that soak up attention (the module docstring gives the rule); [] where none."""
    import numpy as np

    if ratio <= 0 or max_sinks < 1 or not 0 < min_total <= 1:
        raise UsageError(f"patch sinks: ratio {ratio}, max_sinks {max_sinks}, min_total {min_total}",
                         "ratio > 0, max_sinks ≥ 1 and 0 < min_total ≤ 1")
    shares = received_share(attention, query)  # (layers, keys)
    keys = shares.shape[-1]
    if keys != prefix + rows * cols:
        raise UsageError(f"the attention has {keys} keys but the grid has {prefix} prefix tokens + "
                         f"{rows}×{cols} patches = {prefix + rows * cols}", "pass the grid of this capture")
    threshold = ratio / keys
    heads = per_head_share(attention, query)  # (layers, heads, keys) or None
    result: list[list[dict]] = []
    for n, layer in enumerate(shares):
        patches = layer[prefix:]  # (rows * cols,)
        order = np.argsort(-patches, kind="stable")[:max_sinks]  # ties: the earlier patch first
        picked = [int(i) for i in order if patches[i] >= threshold]
        if not picked or patches[picked].sum() < min_total:
            result.append([])
            continue
        found = []
        for i in picked:
            sink = {"row": i // cols, "col": i % cols, "token": prefix + i, "share": float(patches[i])}
            if heads is not None:
                column = heads[n, :, prefix + i]  # (heads,)
                top = int(np.argmax(column))
                sink.update(head=top, head_share=float(column[top]))
            found.append(sink)
        result.append(found)
    return result


def per_head_share(attention: "np.ndarray", query: int | None = None) -> "np.ndarray | None":
    """(layers, heads, keys) attention each head gives each key, averaged over queries; None without a head axis."""
    import numpy as np

    att = np.asarray(attention)
    if att.ndim != 4:
        return None
    if query is None:
        return att.mean(axis=2, dtype=np.float64)  # (layers, heads, keys)
    return att[:, :, query, :].astype(np.float64)


def sink_columns(found: list[list[dict]]) -> list[list[int]]:
    """Per layer, the token indices of that layer's sinks (patch_sinks' result): what --drop-sinks removes."""
    return [[s["token"] for s in layer] for layer in found]


def drop_columns(matrix: "np.ndarray", columns: "list[int]") -> "np.ndarray":
    """(Q, K) with ``columns`` set to 0 and every row renormalised to its old sum (keepdims); an emptied row stays 0.

    Renormalising to the old sum (1 for attention) keeps what the row gave the other keys in proportion.
    """
    import numpy as np

    out = np.array(matrix, dtype=np.float64, copy=True)  # (Q, K)
    if not len(columns):
        return out
    before = out.sum(axis=-1, keepdims=True)  # (Q, 1)
    out[:, list(columns)] = 0.0
    after = out.sum(axis=-1, keepdims=True)  # (Q, 1)
    scale = np.divide(before, after, out=np.zeros_like(after), where=after > 0)
    return out * scale
