"""`attn stats` as a view: one row of statistics per (layer, head) of a capture (definitions in attncli.methods.stats)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from attncli.choices import Kind
from attncli.errors import KeptError, UsageError
from attncli.methods.stats import LOCAL_THRESHOLD, SCORE_THRESHOLD, head_statistics, is_causal, role_of
from attncli.views.common import require_whole
from attncli.views.sinks import RULE, PatchSink, capture_sinks, rule_phrase, sinks_note

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture, Selection

COLUMNS = ("layer", "head", "entropy", "entropy_norm", "distance", "distance_rel", "sink", "self", "prev", "next",
           "role")


def _attr(column: str) -> str:
    """HeadStats attribute of a column name (``self`` is a reserved parameter name in Python)."""
    return "self_" if column == "self" else column


@dataclass(frozen=True)
class HeadStats:
    """One head's statistics (see the module docstring for definitions)."""

    layer: int
    head: int
    entropy: float
    entropy_norm: float
    distance: float
    distance_rel: float
    sink: float
    self_: float  # "self" in tables, JSON and CSV
    prev: float
    next: float
    role: str

    def value(self, column: str) -> "float | int | str":
        """The value of one column by its table name."""
        return getattr(self, _attr(column))

    def to_dict(self) -> dict:
        """Columns by name, floats rounded to 6 decimals; an undefined number (NaN) becomes None."""
        return {c: _plain(self.value(c)) for c in COLUMNS}


@dataclass
class StatsReport:
    """Statistics of every (layer, head) of one capture; ``unit`` is "px" (images) or "tokens" (text)."""

    model_id: str
    kind: str
    unit: str
    n_tokens: int
    sinks: list[int]
    sink_labels: list[str]
    causal: bool
    heads: list[HeadStats]
    source: str | None = None
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"score": SCORE_THRESHOLD, "local_distance_rel": LOCAL_THRESHOLD})
    patch_sinks: list[PatchSink] | None = None  # image captures: patches soaking up attention (None for text)
    total_layers: int | None = None  # layers of the model (None: as many as the report has)
    kept: str | None = None  # which layers a capture that kept only some had, and how to capture the rest

    @property
    def notes(self) -> list[str]:
        """Lines under the table: the layers a partial capture kept, the patch sinks of an image capture."""
        notes = [self.kept] if self.kept else []
        if self.patch_sinks is None:
            return notes
        if not self.patch_sinks:
            return notes + [f"patch sinks: none (rule: {rule_phrase()})"]
        return notes + [f"{sinks_note(self.patch_sinks)}; rule: {rule_phrase()}"]

    @property
    def title(self) -> str:
        """'Head statistics · model · 13 tokens · sinks: [CLS], [SEP]'."""
        sinks = ", ".join(self.sink_labels) or "none"
        return (f"Head statistics · {self.model_id} · {self.n_tokens} tokens · sinks: {sinks}"
                + (" · causal" if self.causal else ""))

    def select(self, layer: int | None = None, sort: str | None = None, ascending: bool = False) -> "StatsReport":
        """A copy with only one layer's heads and/or sorted by a column (numbers largest first unless ascending)."""
        heads = self.heads
        if layer is not None:
            from attncli.methods.heads import resolve_index

            n_layers = self.total_layers or max(h.layer for h in self.heads) + 1
            layer_i = resolve_index(layer, n_layers, "layer")
            heads = [h for h in heads if h.layer == layer_i]
            if not heads:
                raise KeptError(f"this capture kept {self.kept_layers()} of {self.model_id}, not layer {layer_i}",
                                   f"capture it again with --layers {layer_i} (or --layers all)")
        if sort is not None:
            if sort not in COLUMNS:
                raise UsageError(f"--sort {sort}: not a column", "one of " + ", ".join(COLUMNS))
            descending = sort not in ("layer", "head", "role") and not ascending
            keyed = sorted(heads, key=lambda h: (h.layer, h.head))
            undefined = [h for h in keyed if _plain(h.value(sort)) is None]  # NaN sorts last either way
            defined = [h for h in keyed if _plain(h.value(sort)) is not None]
            heads = sorted(defined, key=lambda h: h.value(sort), reverse=descending) + undefined
        sinks = self.patch_sinks
        if sinks is not None and layer is not None:
            sinks = [s for s in sinks if s.layer == layer_i]
        return StatsReport(self.model_id, self.kind, self.unit, self.n_tokens, self.sinks, self.sink_labels,
                           self.causal, heads, self.source, dict(self.thresholds), sinks, self.total_layers,
                           None if layer is not None else self.kept)

    def kept_layers(self) -> str:
        """'layer 3' or 'layers 1, 3': the model layers this report has."""
        layers = sorted({h.layer for h in self.heads})
        return ("layer " if len(layers) == 1 else "layers ") + ", ".join(str(n) for n in layers)

    def to_dict(self) -> dict:
        """The JSON document of `attn stats --json` (schema attncli.stats/1)."""
        return {
            "schema": "attncli.stats/1",
            "title": self.title,
            "model": self.model_id,
            "kind": self.kind,
            "source": self.source,
            "distance_unit": self.unit,
            "tokens": self.n_tokens,
            "causal": self.causal,
            "sinks": [{"index": i, "token": t} for i, t in zip(self.sinks, self.sink_labels)],
            "thresholds": self.thresholds,
            "patch_sinks": None if self.patch_sinks is None else [s.to_dict() for s in self.patch_sinks],
            "patch_sink_rule": None if self.patch_sinks is None else dict(RULE),
            "heads": [h.to_dict() for h in self.heads],
        }

    def to_csv(self) -> str:
        """One header line and one line per head, columns as in COLUMNS."""
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for h in self.heads:
            row = [_plain(h.value(c)) for c in COLUMNS]
            writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
        return buf.getvalue()


def _plain(value: "float | int | str") -> "float | int | str | None":
    """JSON-safe value: floats rounded, NaN (e.g. the distance of a head that only looks at sinks) as None."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def token_positions(capture: "Capture") -> "tuple[np.ndarray, str]":
    """(tokens, dims) positions and their unit: patch centres in pixels for images, indices for text."""
    import numpy as np

    grid = capture.grid
    if capture.kind is Kind.image and grid is not None:
        pos = np.zeros((grid.n_tokens, 2))
        for t in range(grid.prefix, grid.n_tokens):
            r, c = grid.cell_of(t)
            pos[t] = ((r + 0.5) * grid.patch_height, (c + 0.5) * grid.patch_width)
        return pos, "px"
    return np.arange(capture.n_tokens, dtype=np.float64)[:, None], "tokens"


def sink_tokens(capture: "Capture", causal: bool) -> list[int]:
    """Sink positions: special tokens (prefix tokens of images); the first token of causal text without any."""
    if capture.kind is Kind.image and capture.grid is not None:
        return list(range(capture.grid.prefix))
    sinks = [i for i, s in enumerate(capture.special) if s]
    if not sinks and causal:
        sinks = [0]
    return sinks


def capture_stats(capture: "Capture") -> StatsReport:
    """Statistics for every head a capture kept of its (self-)attention, named by model layer and head number."""
    capture.check_heads("attn stats")
    require_whole(capture, "attn stats", layers=False)  # every query row: the scores average over all of them
    causal = capture.kind is not Kind.image and is_causal(capture.attentions)
    sinks = sink_tokens(capture, causal)
    positions, unit = token_positions(capture)
    stats = head_statistics(capture.attentions, positions, sinks, causal)
    layer_ids = capture.layer_ids or list(range(capture.n_layers))
    head_ids = capture.head_ids or list(range(capture.n_heads))
    heads = []
    for slot, layer in enumerate(layer_ids):
        for at, head in enumerate(head_ids):
            v = {_attr(k): float(a[slot, at]) for k, a in stats.items()}
            role = role_of(v["sink"], v["self_"], v["prev"], v["next"], v["distance_rel"])
            heads.append(HeadStats(layer, head, **v, role=role))
    patch_sinks = capture_sinks(capture) if capture.kind is Kind.image and capture.grid is not None else None
    total = capture.total_layers or capture.n_layers
    report = StatsReport(capture.model_id, capture.kind, unit, capture.n_tokens, sinks,
                         [capture.tokens[i] for i in sinks], causal, heads, capture.source, patch_sinks=patch_sinks,
                         total_layers=total)
    if capture.layer_ids is not None:
        report.kept = (f"this capture kept {report.kept_layers()} of {total}: capture it again with --layers all "
                       "for every layer")
    return report


def needs(layer: int | None = None, layers: str | None = None, heads: str | None = None) -> "Selection":
    """The weights `attn stats` reads: every query row of every layer (only --layer's when given, plus --layers)."""
    from attncli.capture import Selection, parse_numbers

    extra, kept = parse_numbers(layers, "layer"), parse_numbers(heads, "head")
    if layer is None or (layers is not None and extra is None):
        return Selection(heads=kept)
    return Selection(layers=(layer,) + (extra or ()), heads=kept)
