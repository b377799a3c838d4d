"""Raw attention: the weights of one layer, one head or the heads fused (mean, max or min); rows sum to 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.methods.heads import layer_map
from attncli.methods.spec import ONE, Inputs, MethodInfo, Words

if TYPE_CHECKING:
    import numpy as np


def rows(inputs: Inputs) -> "np.ndarray":
    """(queries, key): the layer's weights, one head or the heads fused."""
    matrix = layer_map(inputs.attentions, inputs.layer, inputs.head, inputs.fuse)  # (Q, K)
    return matrix if inputs.queries is None else matrix[inputs.queries]


def words(w: Words) -> str:
    """'head 3' or 'mean of 12 heads' (the layer is in the title already)."""
    return w.heads


METHOD = MethodInfo(name="attention", summary="one layer's weights (--head, or heads fused by --fuse)", span=ONE,
                    rows=rows, words=words, one_head=True, fuses=True, raw=True)
