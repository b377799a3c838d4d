"""Per-head statistics of a capture: entropy, attention distance, sink/self/previous/next scores, a role.

Definitions (``A`` is one head's (query, key) matrix; "sinks" are the capture's special tokens — CLS, SEP,
BOS-like text tokens, the prefix tokens of an image — and, for causal text with no special token, the first
token, which every query can see):

- ``entropy``: mean over all queries of ``-Σ_k A[q,k] log A[q,k]`` in nats. ``entropy_norm`` divides each
  query's entropy by ``log`` of the number of keys it can see (all keys, or ``q + 1`` for causal models), over
  queries that see more than one key: 0 = one key, 1 = uniform.
- ``distance``: mean attention distance (ViT paper, Fig. 7): over non-sink queries, ``Σ_k A[q,k] · d(q,k)``
  with the weights renormalised over non-sink keys (keepdims); ``d`` is the pixel distance between patch
  centres for images and ``|q - k|`` in tokens for text. ``distance_rel`` divides by the same number for
  uniform attention over the visible keys (1 ≈ as far as random, small = local).
- ``sink``, ``self``, ``prev``, ``next``: mean over non-sink queries of the weight on sink tokens, on itself,
  on the token before (queries with one), on the token after (queries with one).
- ``role``: the highest of sink / previous-token / next-token / self when it is ≥ ``SCORE_THRESHOLD``;
  otherwise ``local`` when ``distance_rel`` ≤ ``LOCAL_THRESHOLD``, else ``global``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np


SCORE_THRESHOLD = 0.5  # a head putting half its attention on one kind of target is that kind of head
LOCAL_THRESHOLD = 0.5  # at most half the distance uniform attention would cover
ROLE_ORDER = ("sink", "previous-token", "next-token", "self")  # tie order among score roles


def is_causal(attentions: "np.ndarray", tol: float = 1e-9) -> bool:
    """True when no head of any layer puts weight on a later token (a decoder's causal mask)."""
    import numpy as np

    n = attentions.shape[-1]
    return n > 1 and bool(np.all(np.triu(attentions, k=1) <= tol))


def role_of(sink: float, self_: float, prev: float, next_: float, distance_rel: float) -> str:
    """The role label from the scores (thresholds in the module docstring)."""
    scores = dict(zip(ROLE_ORDER, (sink, prev, next_, self_)))
    best = max(ROLE_ORDER, key=lambda name: scores[name])  # max keeps the first on ties: ROLE_ORDER decides
    if scores[best] >= SCORE_THRESHOLD:
        return best
    if math.isfinite(distance_rel) and distance_rel <= LOCAL_THRESHOLD:
        return "local"
    return "global"


def _mean_distance(weights: "np.ndarray", dist: "np.ndarray", rows: "np.ndarray", cols: "np.ndarray") -> "np.ndarray":
    """(..., Q, K) weights → mean over the chosen rows of Σ_k w·d with w renormalised over the chosen keys."""
    import numpy as np

    sub = weights[..., rows[:, None], cols[None, :]]  # (..., q, k)
    totals = sub.sum(axis=-1, keepdims=True)
    norm = np.divide(sub, totals, out=np.zeros_like(sub), where=totals > 0)
    per_query = (norm * dist[np.ix_(rows, cols)]).sum(axis=-1)  # (..., q)
    valid = np.broadcast_to(totals[..., 0] > 0, per_query.shape)
    count = valid.sum(axis=-1)
    return np.divide(np.where(valid, per_query, 0).sum(axis=-1), count, out=np.full(count.shape, np.nan),
                     where=count > 0)


def head_statistics(attentions: "np.ndarray", positions: "np.ndarray", sinks: Sequence[int],
                    causal: bool | None = None) -> dict[str, "np.ndarray"]:
    """Every statistic as a (layers, heads) array; ``positions`` is (tokens, dims): pixel centres or indices."""
    import numpy as np

    att = np.asarray(attentions, dtype=np.float64)  # (L, H, Q, K)
    n = att.shape[-1]
    if att.shape[-2] != n or positions.shape[0] != n:
        raise UsageError(f"attention {att.shape} and {positions.shape[0]} token positions do not match")
    causal = is_causal(att) if causal is None else causal
    visible = np.tril(np.ones((n, n))) if causal else np.ones((n, n))  # (Q, K) keys each query can see
    n_visible = visible.sum(axis=-1)  # (Q,)

    logs = np.log(np.where(att > 0, att, 1.0))
    ent_q = -(att * logs).sum(axis=-1)  # (L, H, Q)
    many = n_visible > 1
    entropy_norm = (ent_q[..., many] / np.log(n_visible[many])).mean(axis=-1) if many.any() else np.zeros(ent_q.shape[:2])

    sink_mask = np.zeros(n, dtype=bool)
    sink_mask[list(sinks)] = True
    plain = np.flatnonzero(~sink_mask)  # non-sink tokens: the queries of every score, the keys of distance
    if plain.size == 0:
        raise UsageError("every token is a sink token: no statistics to compute")
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt((diff.astype(np.float64) ** 2).sum(axis=-1))  # (Q, K)
    distance = _mean_distance(att, dist, plain, plain)  # (L, H)
    uniform = visible / n_visible[:, None]
    base = float(_mean_distance(uniform, dist, plain, plain))
    distance_rel = distance / base if base > 0 else np.full(distance.shape, np.nan)

    q_att = att[..., plain, :]  # (L, H, q, K)
    sink = q_att[..., sink_mask].sum(axis=-1).mean(axis=-1)
    self_ = att[..., plain, plain].mean(axis=-1)
    has_prev, has_next = plain[plain >= 1], plain[plain <= n - 2]
    prev = att[..., has_prev, has_prev - 1].mean(axis=-1) if has_prev.size else np.zeros(sink.shape)
    nxt = att[..., has_next, has_next + 1].mean(axis=-1) if has_next.size else np.zeros(sink.shape)
    return {"entropy": ent_q.mean(axis=-1), "entropy_norm": entropy_norm, "distance": distance,
            "distance_rel": distance_rel, "sink": sink, "self": self_, "prev": prev, "next": nxt}
