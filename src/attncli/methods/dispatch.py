"""One entry point for every map method: raw attention, rollout, flow, gradient rollout (numpy only).

Every method returns rows of a (query, key) matrix over the capture's tokens:

- ``attention``: one layer, one head or the heads fused (rows sum to 1);
- ``rollout``: all layers from the first up to ``layer``, heads fused, residual added (rows sum to 1);
- ``flow``: max-flow through the same layer graph (rows sum to 1; cost grows fast, so ask only for the
  rows you need);
- ``grad-rollout``: gradient-weighted relevance up to ``layer`` for a target class (rows do not sum to 1;
  needs the gradients from :func:`attncli.gradcapture.gradients_for`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from attncli.choices import Fuse, Method
from attncli.errors import UsageError
from attncli.methods.heads import layer_map, resolve_index

if TYPE_CHECKING:
    import numpy as np

# Which methods promise rows that sum to 1 (a probability over keys).
STOCHASTIC = {Method.attention, Method.rollout, Method.flow}


def check_method_options(method: Method | str, head: int | None = None, discard_ratio: float = 0.0,
                         target: str | None = None, drop_sinks: bool = False) -> Method:
    """Refuse option combinations that mean nothing for the method, before any work."""
    method = Method(method)
    if drop_sinks and method not in (Method.rollout, Method.flow):
        raise UsageError(f"--drop-sinks removes patch sinks before rollout or flow combines the layers; "
                         f"--method {method.value} does not combine them (its map marks the sinks either way)",
                         "use --method rollout or flow, or drop --drop-sinks")
    if head is not None and method is not Method.attention:
        raise UsageError(f"--head picks one head of one layer; {method.value} combines the heads of every layer "
                         "up to --layer", "drop --head (use --fuse to choose how heads combine)")
    if discard_ratio and method is not Method.rollout:
        raise UsageError("--discard-ratio applies to --method rollout only")
    if not 0.0 <= discard_ratio < 1.0:
        raise UsageError(f"--discard-ratio {discard_ratio}: must be at least 0 and below 1", "e.g. 0.9")
    if target is not None and method is not Method.grad_rollout:
        raise UsageError("--target picks the class to explain: it applies to --method grad-rollout only")
    return method


def method_rows(
    attentions: "np.ndarray",
    method: Method | str = Method.attention,
    layer: int = -1,
    *,
    head: int | None = None,
    fuse: Fuse | str = Fuse.mean,
    queries: Sequence[int] | None = None,
    discard_ratio: float = 0.0,
    gradients: "np.ndarray | None" = None,
    protect: Sequence[int] = (0,),
    progress: Callable[[int, int], None] | None = None,
    drop: Sequence[Sequence[int]] | None = None,
) -> "np.ndarray":
    """(len(queries), key) rows of the method's matrix at ``layer`` (all rows when queries is None).

    ``protect`` names the columns rollout's discarding never touches (the prefix tokens: CLS and the like);
    ``drop[l]`` the token columns rollout and flow remove from layer ``l`` (--drop-sinks).
    """
    method = check_method_options(method, head, discard_ratio, drop_sinks=drop is not None)
    n = attentions.shape[-1]
    rows = None if queries is None else [resolve_index(q, n, "token", "the input") for q in queries]
    if method is Method.flow:
        from attncli.methods.flow import attention_flow

        return attention_flow(attentions, layer, fuse, rows, progress=progress, drop=drop)
    if method is Method.attention:
        matrix = layer_map(attentions, layer, head, fuse)  # (Q, K)
    elif method is Method.rollout:
        from attncli.methods.rollout import rollout

        matrix = rollout(attentions, layer, fuse, discard_ratio, protect, drop)
    else:
        if gradients is None:
            raise UsageError("grad-rollout needs the attention gradients of a classifier",
                             "compute them with attncli.gradcapture.gradients_for(capture)")
        from attncli.methods.gradients import gradient_rollout

        matrix = gradient_rollout(attentions, gradients, layer)
    return matrix if rows is None else matrix[rows]


def describe(method: Method | str, layer: int | None, head: int | None, fuse: str, n_heads: int,
             discard_ratio: float = 0.0, target: str | None = None, drop_sinks: bool = False) -> str:
    """How a map was made, for titles: 'rollout of layers 0–5 (mean)', … (layer None: up to each layer)."""
    method = Method(method)
    if method is Method.attention:
        how = f"head {head}" if head is not None else f"{fuse} of {n_heads} heads"
        return how if layer is None else f"layer {layer} · {how}"
    span = "layers 0 to each layer" if layer is None else ("layer 0" if layer == 0 else f"layers 0–{layer}")
    if method is Method.rollout:
        extra = (f", discard {discard_ratio:g}" if discard_ratio else "") + (", sinks dropped" if drop_sinks else "")
        return f"rollout of {span} ({fuse}{extra})"
    if method is Method.flow:
        return f"attention flow through {span} ({fuse}{', sinks dropped' if drop_sinks else ''})"
    return f"gradient rollout of {span}" + (f" for {target}" if target else "")
