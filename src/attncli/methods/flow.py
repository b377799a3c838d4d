"""Attention flow (Abnar & Zuidema 2020): max-flow through the layer graph.

The graph has one node per (level, token): level 0 is the input embeddings, level ``l + 1`` the output of
layer ``l``. Node (l + 1, i) has an edge to node (l, j) with capacity ``Ã_l[i, j]``, where ``Ã_l`` is the
same residual-adjusted, row-normalised, head-fused matrix rollout uses (``(A + I) / 2``, rows summing to 1).
The flow from output token ``q`` at layer ``layer`` to input token ``j`` is the maximum flow from node
(layer + 1, q) to node (0, j). Each returned row is those ``n`` max-flow values divided by their sum (as in
the paper's code), so every row sums to 1.

Exactness: max-flow solvers need integer capacities, so capacities are scaled by ``SCALE`` = 2**28 and
rounded. Each capacity is then off by at most 1 / (2·SCALE) ≈ 1.9e-9, so a flow value is off by at most
``E / (2·SCALE)`` with ``E`` the number of edges in its minimum cut (below 1e-3 even for ViT-B/16 with
every edge cut; typically ~1e-8). Weights below 1 / (2·SCALE) round to a zero capacity. The total flow is at
most SCALE + n/2, far below the int32 limit the solver uses.

Cost: one max-flow per (query, key) pair on a graph of ``layers · n²`` edges, solved with scipy's Dinic
implementation. Work is estimated as ``queries · n · layers · n²``; above ``MAX_WORK`` the computation is
refused with a hint (ask for fewer queries — the heatmap needs one row — or use rollout).

``drop`` (``--drop-sinks``) removes token columns per layer before the graph is built, exactly as in rollout
(``methods.rollout.dropped``): those edges get no capacity, and each row's other edges are renormalised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from attncli.choices import Fuse
from attncli.errors import NotSupportedError, UsageError
from attncli.methods.heads import resolve_index
from attncli.methods.rollout import dropped, fused_layers, residual_step
from attncli.methods.spec import UPTO, Inputs, MethodInfo, Words

if TYPE_CHECKING:
    import numpy as np

SCALE = 2**28
# Measured at ~4e-8 s per unit of work (scipy Dinic, one core; benchmarks/bench_methods.py), so the limit is
# about 40 s. One CLS row of a 12-layer ViT-B/16 (197 tokens) is 197 · 12 · 197² ≈ 9.2e7 (~4 s).
MAX_WORK = 1e9


def flow_work(n_tokens: int, n_layers: int, n_queries: int) -> float:
    """Estimated cost of attention flow: queries × keys × edges of the layer graph."""
    return float(n_queries) * n_tokens * n_layers * n_tokens * n_tokens


def layer_graph(steps: "np.ndarray", scale: int = SCALE):
    """CSR graph of integer capacities for (layers, n, n) residual-adjusted matrices; node = level·n + token."""
    import numpy as np
    from scipy.sparse import csr_array

    n_layers, n, _ = steps.shape
    rows, cols, caps = [], [], []
    tokens = np.arange(n)
    for layer in range(n_layers):
        cap = np.rint(steps[layer] * scale).astype(np.int64)  # (Q, K)
        q, k = np.nonzero(cap)
        rows.append((layer + 1) * n + tokens[q])  # from the layer's output node
        cols.append(layer * n + tokens[k])  # to its input node
        caps.append(cap[q, k])
    size = (n_layers + 1) * n
    graph = csr_array((np.concatenate(caps).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(size, size))
    graph.sort_indices()
    return graph


def attention_flow(
    attentions: "np.ndarray",
    layer: int = -1,
    fuse: Fuse | str = Fuse.mean,
    queries: Sequence[int] | None = None,
    max_work: float = MAX_WORK,
    progress: Callable[[int, int], None] | None = None,
    drop: "Sequence[Sequence[int]] | None" = None,
) -> "np.ndarray":
    """(len(queries), key) flow from the input to each query token at ``layer``; rows sum to 1.

    ``queries`` default to every token. ``progress(done, total)`` is called after each query row. ``drop[l]``:
    token columns removed from layer ``l`` (see the module docstring).
    """
    import numpy as np
    from scipy.sparse.csgraph import maximum_flow

    n_layers, _, n, _ = attentions.shape
    layer_i = resolve_index(layer, n_layers, "layer")
    rows = list(range(n)) if queries is None else [resolve_index(q, n, "token", "the input") for q in queries]
    if not rows:
        raise UsageError("attention flow needs at least one query token")
    work = flow_work(n, layer_i + 1, len(rows))
    if work > max_work:
        raise NotSupportedError(
            f"attention flow for {len(rows)} quer{'y' if len(rows) == 1 else 'ies'} over {n} tokens and "
            f"{layer_i + 1} layers is too large to solve exactly here (work {work:.2g} > limit {max_work:.2g})",
            "use --method rollout, an earlier --layer, or a shorter input",
        )
    kept = None if drop is None else drop[: layer_i + 1]
    fused = dropped(fused_layers(attentions[: layer_i + 1], fuse), kept)  # (L, Q, K)
    steps = np.stack([residual_step(m) for m in fused])  # (L, Q, K), rows sum to 1
    graph = layer_graph(steps)
    top = (layer_i + 1) * n
    out = np.zeros((len(rows), n))
    for r, q in enumerate(rows):
        for key in range(n):
            out[r, key] = maximum_flow(graph, top + q, key, method="dinic").flow_value
        if progress is not None:
            progress(r + 1, len(rows))
    out /= SCALE
    totals = out.sum(axis=-1, keepdims=True)  # > 0: the path q→q→…→q always carries flow
    return (out / totals).astype(np.float32)


def _rows(inputs: Inputs) -> "np.ndarray":
    return attention_flow(inputs.attentions, inputs.layer, inputs.fuse, inputs.queries, progress=inputs.progress,
                          drop=inputs.drop)


def _words(w: Words) -> str:
    return f"attention flow through {w.span} ({w.fuse}{', sinks dropped' if w.drop_sinks else ''})"


METHOD = MethodInfo(name="flow", summary="max-flow through the same layer graph (slow: ask for few rows)", span=UPTO,
                    rows=_rows, words=_words, fuses=True, minmax=True, few_rows=True,
                    options=frozenset({"drop_sinks"}), work=flow_work, max_work=MAX_WORK)
