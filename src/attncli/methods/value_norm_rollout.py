"""Norm-based rollout, in the spirit of GlobEnc (Modarressi et al., NAACL 2022): value-norm combined over layers.

Per layer ``l``, the fused value-norm matrix ``N_l[i, j] = ‖Σ_h α^h_ij f_h(x_j)‖`` (attncli.methods.value_norm) is
row-normalised, ``A_l = N_l / Σ_j N_l[i, j]`` (each token's share of what its attention moves), the residual path is
added as rollout does, ``Ã_l = (A_l + I) / 2`` with rows renormalised, and the layers are multiplied from the first:
``Ã_l · … · Ã_0``. Rows sum to 1. GlobEnc also folds the residual and layer norm into the norms; this variant
keeps rollout's fixed half-and-half residual, so it differs from rollout only in using norms instead of weights.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from attncli.methods.rollout import residual_step
from attncli.methods.spec import UPTO, Inputs, MethodInfo, Words
from attncli.methods.value_norm import GRAM, norm_rows

if TYPE_CHECKING:
    import numpy as np


def norm_rollout_layers(inputs: Inputs) -> "np.ndarray":
    """(stored layers, queries, key): the norm-based rollout from the input up to each stored layer."""
    import numpy as np

    every = dataclasses.replace(inputs, head=None, queries=None)
    n = inputs.attentions.shape[-1]
    result = np.eye(n)
    steps = []
    for layer in range(inputs.attentions.shape[0]):
        norms = norm_rows(every, layer).astype(np.float64)  # (Q, K) ‖Σ_h α·f(x)‖
        totals = norms.sum(axis=-1, keepdims=True)  # keepdims: each row by its own total
        shares = np.divide(norms, totals, out=np.zeros_like(norms), where=totals > 0)
        result = residual_step(shares) @ result  # later layers multiply on the left
        steps.append(result)
    out = np.stack(steps).astype(np.float32)
    return out if inputs.queries is None else out[:, inputs.queries]


def _rows(inputs: Inputs) -> "np.ndarray":
    upto = dataclasses.replace(inputs, attentions=inputs.attentions[: inputs.layer + 1],
                               extras={GRAM: inputs.extras[GRAM][: inputs.layer + 1]} if GRAM in inputs.extras else {})
    return norm_rollout_layers(upto)[-1]


def _words(w: Words) -> str:
    return f"value-norm rollout of {w.span}"


METHOD = MethodInfo(name="value-norm-rollout", summary="value-norm of every layer up to --layer, row-normalised, "
                                                       "with the residual path, multiplied (GlobEnc-like)",
                    span=UPTO, rows=_rows, words=_words, each_head=True, minmax=True, extras=(GRAM,),
                    every_layer=norm_rollout_layers, missing="each layer's value vectors through the output projection")
