"""One input's numbers for the corpus: the per-head statistics of `attn stats INPUT`, plus what only a corpus asks.

Every statistic `attn stats` reports comes from :func:`attncli.views.stats.capture_stats` on the input's Capture
— the same code, not a copy. Added here, per (layer, head), over the same queries as ``sink`` (non-sink
queries):

- ``cls``: weight on the first token when it is special ([CLS], BOS; an image's [CLS]; a causal model's first
  token when it has no special token);
- ``sep``: weight on the other special tokens ([SEP], EOS; none for images: undefined);
- ``punct``: weight on ordinary tokens made only of punctuation (Unicode category P*; text only).

With each statistic goes the number of queries it averaged over (``counts``), so the corpus can weight by
token as well as by input. A head's **top receiver** (text) is the token receiving the largest mean share of
its attention (over all queries); the head has a *sink* in this input when that share is at least
``SINK_SHARE``. Images use the patch-sink rule of attncli.methods.sinks (per layer, heads fused).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncli.choices import Kind
from attncli.methods.stats import SCORE_THRESHOLD

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

STATS = ("entropy", "entropy_norm", "distance", "distance_rel", "sink", "self", "prev", "next", "cls", "sep",
         "punct")
ROLES = ("sink", "previous-token", "next-token", "self", "local", "global")
SINK_KINDS = ("first", "special", "punct", "other")  # what a text head's top receiver is
SINK_SHARE = SCORE_THRESHOLD  # a token receiving half a head's attention is that head's sink


@dataclass
class Record:
    """One input's per-head numbers: ``values`` and ``counts`` are (stats, layers, heads), NaN where undefined."""

    index: int
    item: str
    n_tokens: int
    values: "np.ndarray"  # (S, L, H) float64
    counts: "np.ndarray"  # (S, L, H) float64: queries each value averaged over
    roles: "np.ndarray"  # (L, H) int: index into ROLES
    sink_kind: "np.ndarray | None" = None  # text (L, H) int: index into SINK_KINDS, -1 when no sink
    patch_sinks: "np.ndarray | None" = None  # images (L, patches) bool
    cls_map: "np.ndarray | None" = None  # images (L, H, patches): the [CLS] query's weights on the patches
    truncated: bool = False
    grid: "tuple[int, int] | None" = None  # images: the patch grid (rows, cols)


def is_punct(label: str) -> bool:
    """A token label made only of punctuation characters."""
    text = label.strip()
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


def record(index: int, item: str, capture: "Capture", truncated: bool = False) -> Record:
    """The per-head numbers of one capture (every layer, head and query row of its self-attention)."""
    import numpy as np

    from attncli.views.stats import capture_stats

    report = capture_stats(capture)
    att = capture.attentions  # (L, H, Q, K) float32: read in place (views), summed in float64
    n_layers, n_heads, n = att.shape[0], att.shape[1], att.shape[-1]
    values = np.full((len(STATS), n_layers, n_heads), np.nan)
    roles = np.zeros((n_layers, n_heads), dtype=np.int64)
    for h in report.heads:  # capture_stats lists every kept head: layer-major, in capture order
        slot, at = _slot(capture, h.layer, h.head)
        for s, name in enumerate(STATS[:8]):
            values[s, slot, at] = h.value(name)
        roles[slot, at] = ROLES.index(h.role)

    sinks = report.sinks
    sink_mask = np.zeros(n, dtype=bool)
    sink_mask[sinks] = True
    plain = np.flatnonzero(~sink_mask)  # (q,) the queries of every score
    rows = _span(plain)  # a slice when contiguous (sinks first and/or last, as usual): a view, not a copy
    image = capture.kind is Kind.image and capture.grid is not None
    first = [0] if (sinks and sinks[0] == 0) else []
    others = [] if image else [i for i in sinks if i != 0]
    punct = [] if image else [i for i in range(n) if not sink_mask[i] and is_punct(capture.tokens[i])]
    q_att = att[..., rows, :]  # (L, H, q, K)

    def weight_on(keys: list[int]) -> "np.ndarray":  # (L, H): mean over the queries of the weight on these keys
        if not keys:
            return np.zeros((n_layers, n_heads))
        return q_att[..., _span(np.asarray(keys))].sum(axis=-1, dtype=np.float64).mean(axis=-1)

    values[8] = weight_on(first)
    values[9] = np.nan if image else weight_on(others)
    values[10] = np.nan if image else weight_on(punct)

    counts = np.zeros_like(values)
    many = n if not report.causal else n - 1  # queries that see more than one key
    has_prev, has_next = int((plain >= 1).sum()), int((plain <= n - 2).sum())
    for s, c in zip(range(len(STATS)), (n, many if n > 1 else 0, None, None, plain.size, plain.size, has_prev,
                                        has_next, plain.size, plain.size, plain.size)):
        counts[s] = c if c is not None else 0
    on_plain = (q_att[..., rows] > 0).any(axis=-1)  # (L, H, q): distance's queries (some weight on a plain key)
    counts[2] = counts[3] = on_plain.sum(axis=-1)

    out = Record(index, item, n, values, counts, roles, truncated=truncated)
    if image:
        grid = capture.grid
        flags = np.zeros((n_layers, grid.rows * grid.cols), dtype=bool)
        numbers = capture.layer_ids or list(range(n_layers))
        for sink in report.patch_sinks or []:
            flags[numbers.index(sink.layer), sink.row * grid.cols + sink.col] = True
        out.patch_sinks = flags
        out.grid = (grid.rows, grid.cols)
        out.cls_map = att[:, :, 0, grid.prefix:].astype(np.float64) if grid.prefix else None  # (L, H, patches)
    else:
        received = att.mean(axis=-2, dtype=np.float64)  # (L, H, K): mean share each key receives
        top = received.argmax(axis=-1)  # (L, H)
        share = np.take_along_axis(received, top[..., None], axis=-1)[..., 0]
        kinds = np.array([0 if (k == 0 and sink_mask[0]) or (k == 0 and report.causal) else 1 if sink_mask[k]
                          else 2 if k in punct else 3 for k in range(n)])
        out.sink_kind = np.where(share >= SINK_SHARE, kinds[top], -1)
    return out


def _span(index: "np.ndarray") -> "slice | np.ndarray":
    """Sorted positions as a slice when they are consecutive (indexing with it is a view), else as they are."""
    if index.size and index[-1] - index[0] + 1 == index.size:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _slot(capture: "Capture", layer: int, head: int) -> tuple[int, int]:
    """Array slots of a model layer and head number in a capture that may keep only some."""
    layers = capture.layer_ids or list(range(capture.n_layers))
    heads = capture.head_ids or list(range(capture.n_heads))
    return layers.index(layer), heads.index(head)


def rows(rec: Record) -> dict[str, list]:
    """One row per (layer, head) of an input, as columns (for --save FILE.parquet)."""
    n_layers, n_heads = rec.roles.shape
    cols: dict[str, list] = {"input": [], "item": [], "tokens": [], "layer": [], "head": []}
    cols.update({name: [] for name in STATS})
    cols["role"] = []
    for layer in range(n_layers):
        for head in range(n_heads):
            cols["input"].append(rec.index)
            cols["item"].append(rec.item)
            cols["tokens"].append(rec.n_tokens)
            cols["layer"].append(layer)
            cols["head"].append(head)
            for s, name in enumerate(STATS):
                value = float(rec.values[s, layer, head])
                cols[name].append(value if value == value else None)
            cols["role"].append(ROLES[int(rec.roles[layer, head])])
    return cols
