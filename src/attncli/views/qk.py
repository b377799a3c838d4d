"""The page's query/key panel (bertviz's neuron view): each kept layer's q and k vectors, exact, and a check.

For a selected token and head the page shows its query vector, each key vector, the elementwise products
q∘k, their sums (the scores), the scores times the model's ``scaling`` (as passed to its eager function), the
mask and the softmax that gives the weights. Before that is offered, the softmax of the bare products is
compared here with the captured weights layer by layer: where a model's scores have extra terms (position
bias, soft-capping, sinks, ALiBi), it differs, and the page says so and names them instead of showing a wrong
softmax. Vectors travel as float32 (deflate, base64), so every number shown is the one the model used.
"""

from __future__ import annotations

import base64
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

# Agreement (largest absolute difference of a weight) under which the bare products are said to give the weights.
TOLERANCE = 1e-5
# Score terms beyond q·k·scaling + mask, by model type (what the page names when the check fails).
EXTRA_TERMS = {
    "t5": "a relative position bias", "mt5": "a relative position bias", "umt5": "a relative position bias",
    "longt5": "a relative position bias", "switch_transformers": "a relative position bias",
    "gemma2": "logit soft-capping", "gemma3": "logit soft-capping", "gpt_oss": "attention sinks",
    "bloom": "ALiBi position biases", "mpt": "ALiBi position biases", "falcon": "ALiBi position biases",
    "deberta": "disentangled position terms", "deberta-v2": "disentangled position terms",
}


def _b64(array: "np.ndarray") -> str:
    import numpy as np

    return base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 6)).decode("ascii")


def bare_softmax(query: "np.ndarray", key: "np.ndarray", scaling: float, allowed: "np.ndarray") -> "np.ndarray":
    """softmax(q·kᵀ·scaling + mask) in float64: (heads, N, d) × (heads, K, d) → (heads, N, K)."""
    import numpy as np

    scores = np.einsum("hqd,hkd->hqk", query.astype(np.float64), key.astype(np.float64)) * float(scaling)
    scores = np.where(allowed[None] > 0, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def layer_bytes(capture: "Capture") -> int:
    """About how many bytes one layer's q and k take on the page (float32, base64; 0 when none kept)."""
    query = (capture.extras or {}).get("query")
    return 0 if query is None else 2 * int(query[0].size) * 4 * 4 // 3 + 64


def qk_data(capture: "Capture", layers: list[int], order: list[int], budget: int) -> tuple[dict | None, list[str]]:
    """The panel's data for the shown ``layers`` (model numbers; kept in ``order`` of preference while they fit
    ``budget`` bytes), and warnings; (None, why) when the capture holds no q/k."""
    import numpy as np

    extras = capture.extras or {}
    if "query" not in extras or "key" not in extras or capture.cross_attentions is not None:
        return None, [("the query/key view needs a text capture made with --qk (this one holds no query and key "
                       "vectors; models loaded with eager attention record none): capture again with --qk")]
    ids = capture.layer_ids or list(range(capture.n_layers))
    query, key = np.asarray(extras["query"], np.float32), np.asarray(extras["key"], np.float32)  # (L, H, N, d)
    scaling = np.asarray(extras["scaling"], np.float32)
    allowed = np.asarray(extras.get("allowed", np.ones(query.shape[2:3] * 2, np.uint8)), np.uint8)
    per_layer = layer_bytes(capture)
    keep: list[int] = []
    for layer in order:
        if layer in layers and layer in ids and layer not in keep and (len(keep) + 1) * per_layer <= budget:
            keep.append(layer)
    keep.sort()
    mb = 1e6
    warnings = []
    left = [l for l in layers if l in ids and l not in keep]
    if left:
        from attncli.views.common import number_spans

        warnings.append(f"query/key vectors of layer{'s' if len(left) > 1 else ''} {number_spans(left)} left out of the "
                        f"page ({per_layer / mb:.1f} MB a layer; {budget / mb:.1f} MB was left under the size "
                        f"limit): the layer the page opens on comes first, pick it with --layer N")
    if not keep:
        return None, warnings
    terms = EXTRA_TERMS.get(str(capture.arch.get("model_type", "")), "terms besides q·k·scaling and the mask")
    out: dict[str, Any] = {"layers": keep, "heads": int(query.shape[1]), "n": int(query.shape[2]),
                           "d": int(query.shape[3]), "query": [], "key": [], "scaling": [], "check": [],
                           "allowed": _b64(allowed), "terms": terms, "tolerance": TOLERANCE}
    for layer in keep:
        i = ids.index(layer)
        out["query"].append(_b64(query[i]))
        out["key"].append(_b64(key[i]))
        out["scaling"].append(float(scaling[i]))
        weights = np.asarray(capture.attentions[i], np.float64)
        out["check"].append(float(np.abs(bare_softmax(query[i], key[i], scaling[i], allowed) - weights).max()))
    return out, warnings


def decode(data: dict, layer_slot: int) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """(query, key, allowed) of one kept layer as the page reads them (tests)."""
    import numpy as np

    shape = (data["heads"], data["n"], data["d"])
    q = np.frombuffer(zlib.decompress(base64.b64decode(data["query"][layer_slot])), np.float32).reshape(shape)
    k = np.frombuffer(zlib.decompress(base64.b64decode(data["key"][layer_slot])), np.float32).reshape(shape)
    allowed = np.frombuffer(zlib.decompress(base64.b64decode(data["allowed"])), np.uint8).reshape(data["n"], -1)
    return q, k, allowed
