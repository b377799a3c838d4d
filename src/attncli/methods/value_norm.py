"""Norm-based attention (Kobayashi et al., EMNLP 2020, "Attention is Not Only a Weight").

Head ``h`` moves ``α^h_ij · f_h(x_j)`` from token ``j`` to token ``i``, where ``f_h(x) = (x W_V^h + b_V^h) W_O^h`` is
the value vector carried through that head's slice of the output projection (W_O's bias left out, as the paper
does). The map shows the size of what moves:

- one head (``--head h``): ``‖α^h_ij f_h(x_j)‖ = α^h_ij ‖f_h(x_j)‖``;
- the heads fused: ``‖Σ_h α^h_ij f_h(x_j)‖``, the norm of the summed vectors (the paper's definition; not a mean
  of the per-head norms, and no --fuse max/min).

Rows do not sum to 1: a weight on a token whose transformed value vector is small moves little. The capture keeps
``extras["value_gram"]`` (layers, key, heads, heads), the Gram matrix ``G_j[h, g] = ⟨f_h(x_j), f_g(x_j)⟩`` recorded
where the attention function gets the value states (attncli.families.selective), so for any rows asked
``‖Σ_h α^h_ij f_h(x_j)‖² = α_ij^T G_j α_ij`` (α_ij the heads' weights) without an (N, N, hidden) tensor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.errors import CaptureError
from attncli.methods.spec import ONE, Inputs, MethodInfo, Words

if TYPE_CHECKING:
    import numpy as np

GRAM = "value_gram"
ROW_BYTES = 64 << 20  # float64 (heads, rows, key) products held at once


def gram(inputs: Inputs) -> "np.ndarray":
    """(stored layers, key, heads, heads) value-vector Gram matrices of the capture, checked against the weights."""
    import numpy as np

    g = inputs.extras.get(GRAM)
    if g is None:
        raise CaptureError("value-norm reads each layer's value vectors (Capture.extras['value_gram']); "
                           "this capture has none", "capture it again with --method value-norm")
    g = np.asarray(g)
    n_layers, n_heads, _, n_keys = inputs.attentions.shape
    if g.shape != (n_layers, n_keys, n_heads, n_heads):
        raise CaptureError(f"value vectors {g.shape} do not match the attention {inputs.attentions.shape}",
                           "capture it again with --method value-norm (and every head)")
    return g


def fused_norms(alpha: "np.ndarray", gram_layer: "np.ndarray") -> "np.ndarray":
    """(rows, key) ‖Σ_h α^h_ij f_h(x_j)‖ from the heads' weights (heads, rows, key) and G (key, heads, heads)."""
    import numpy as np

    heads, rows, keys = alpha.shape
    g = gram_layer.astype(np.float64)
    out = np.empty((rows, keys))
    step = max(1, ROW_BYTES // (8 * heads * keys))
    for start in range(0, rows, step):
        a = alpha[:, start:start + step].astype(np.float64)  # (H, r, K)
        ga = np.einsum("khg,grk->hrk", g, a)  # (H, r, K): G_j α_ij
        out[start:start + step] = np.sqrt(np.clip((a * ga).sum(axis=0), 0.0, None))  # α_ij^T G_j α_ij ≥ 0
    return out.astype(np.float32)


def norm_rows(inputs: Inputs, layer: int) -> "np.ndarray":
    """(queries, key) value-norm rows of one stored layer: one head, or the norm of the heads' summed vectors."""
    import numpy as np

    g = gram(inputs)[layer]  # (K, H, H)
    alpha = inputs.attentions[layer]  # (H, R, K)
    if inputs.queries is not None:
        alpha = alpha[:, inputs.queries]
    if inputs.head is not None:
        size = np.sqrt(np.clip(g[:, inputs.head, inputs.head].astype(np.float64), 0.0, None))  # (K,): ‖f_h(x_j)‖
        return (alpha[inputs.head] * size).astype(np.float32)
    return fused_norms(alpha, g)


def _rows(inputs: Inputs) -> "np.ndarray":
    return norm_rows(inputs, inputs.layer)


def _words(w: Words) -> str:
    if w.head is not None:
        return f"value-norm ‖α·f(x)‖ of {w.heads}"
    return f"value-norm ‖Σ_h α·f(x)‖ over {w.n_heads or 'the'} heads"


METHOD = MethodInfo(name="value-norm", summary="one layer's ‖α·f(x)‖, each weight times its transformed value "
                                               "vector (Kobayashi et al.; --head, or the heads' vectors summed)",
                    span=ONE, rows=_rows, words=_words, one_head=True, each_head=True, sums_to_one=False,
                    quantity="norm", extras=(GRAM,),
                    missing="each layer's value vectors through the output projection")
