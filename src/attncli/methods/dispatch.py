"""One entry point for every registered map method (attncli.methods.registry): option checks, rows, titles.

Every method returns rows of a (query, key) matrix over the capture's tokens; what it reads and whether its rows
sum to 1 is in its declaration (``attncli.methods.registry.info(method)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from attncli.choices import Fuse
from attncli.errors import UsageError
from attncli.methods.heads import heads_phrase, resolve_index
from attncli.methods.registry import Method, info, names_with
from attncli.methods.spec import ONE, Inputs, Words

if TYPE_CHECKING:
    import numpy as np


def check_method_options(method: Method | str, head: int | None = None, discard_ratio: float = 0.0,
                         target: str | None = None, drop_sinks: bool = False, fuse: Fuse | str = Fuse.mean) -> Method:
    """Refuse option combinations that mean nothing for the method, before any work."""
    method = Method(method)
    m = info(method)
    if drop_sinks and "drop_sinks" not in m.options:
        raise UsageError(f"--drop-sinks removes patch sinks before {names_with('drop_sinks')} combines the layers; "
                         f"--method {m.name} does not combine them (its map marks the sinks either way)",
                         f"use --method {names_with('drop_sinks')}, or drop --drop-sinks")
    if head is not None and not m.one_head:
        raise UsageError(f"--head picks one head of one layer; {m.name} combines the heads of every layer "
                         "up to --layer", "drop --head (use --fuse to choose how heads combine)")
    if Fuse(fuse) is not Fuse.mean and not m.fuses:
        raise UsageError(f"--fuse {Fuse(fuse).value}: {m.name} combines the heads its own way", "drop --fuse")
    if discard_ratio and "discard_ratio" not in m.options:
        raise UsageError(f"--discard-ratio applies to --method {names_with('discard_ratio')} only")
    if not 0.0 <= discard_ratio < 1.0:
        raise UsageError(f"--discard-ratio {discard_ratio}: must be at least 0 and below 1", "e.g. 0.9")
    if target is not None and "target" not in m.options:
        raise UsageError(f"--target picks the class to explain: it applies to --method {names_with('target')} only")
    return method


def method_rows(
    attentions: "np.ndarray",
    method: Method | str = "attention",
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
    extras: "Mapping[str, np.ndarray] | None" = None,
) -> "np.ndarray":
    """(len(queries), key) rows of the method's matrix at ``layer`` (all rows when queries is None).

    ``protect`` names the columns rollout's discarding never touches (the prefix tokens: CLS and the like);
    ``drop[l]`` the token columns rollout and flow remove from layer ``l`` (--drop-sinks); ``extras`` the
    capture's named arrays (Capture.extras) for methods that read them.
    """
    method = check_method_options(method, head, discard_ratio, drop_sinks=drop is not None)
    return info(method).rows(inputs(attentions, layer, head=head, fuse=fuse, queries=queries,
                                    discard_ratio=discard_ratio, gradients=gradients, protect=protect,
                                    progress=progress, drop=drop, extras=extras))


def inputs(attentions: "np.ndarray", layer: int = -1, *, head: int | None = None, fuse: Fuse | str = Fuse.mean,
           queries: Sequence[int] | None = None, discard_ratio: float = 0.0, gradients: "np.ndarray | None" = None,
           protect: Sequence[int] = (0,), progress: Callable[[int, int], None] | None = None,
           drop: Sequence[Sequence[int]] | None = None,
           extras: "Mapping[str, np.ndarray] | None" = None) -> Inputs:
    """A method's Inputs with the layer, head and rows resolved against the stored arrays (-1: the last)."""
    n_layers, n_heads, n_rows = attentions.shape[:3]
    return Inputs(attentions, resolve_index(layer, n_layers, "layer"),
                  None if head is None else resolve_index(head, n_heads, "head"), Fuse(fuse),
                  None if queries is None else [resolve_index(q, n_rows, "token", "the input") for q in queries],
                  discard_ratio, protect, drop, gradients, dict(extras or {}), progress)


def describe(method: Method | str, layer: int | None, head: int | None, fuse: str, n_heads: int,
             discard_ratio: float = 0.0, target: str | None = None, drop_sinks: bool = False) -> str:
    """How a map was made, for titles: 'mean of 12 heads', 'rollout of layers 0–5 (mean)', … (layer None: each)."""
    m = info(method)
    if m.span == ONE:
        span = "each layer" if layer is None else f"layer {layer}"
    else:
        span = "layers 0 to each layer" if layer is None else ("layer 0" if layer == 0 else f"layers 0–{layer}")
    return m.words(Words(span, heads_phrase(head, fuse, n_heads), Fuse(fuse).value, discard_ratio, target, drop_sinks,
                         head, n_heads))
