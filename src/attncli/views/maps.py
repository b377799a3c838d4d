"""Maps of one query: over an image's patch grid (PatchMap), per head (HeadPanels), or over text tokens (TokenRow).

Computed from a Capture with numpy only (no torch, no model): the rows come from ``attncli.methods.dispatch``
(raw attention of one layer, one head or fused heads; rollout; flow; gradient rollout). Patches are named
(row, col), 0-based, row-major, everywhere: tables, JSON, figure titles and file names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import Fuse, Kind, Scale
from attncli.errors import UsageError
from attncli.methods.heads import top_k
from attncli.methods.registry import Method, info
from attncli.methods.spec import ONE
from attncli.views.common import (MapSpec, check_capture, colour_range, default_scale, heads_phrase, quantity,
                                  query_row, require_whole, rounded, stored_head)
from attncli.views.picture import ImageFacts, domain_note, image_facts  # noqa: F401 (domain_note: public here too)
from attncli.views.sinks import UNKNOWN, PatchSink, capture_sinks, sink_cells, sink_drops, sinks_note

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture, Selection
    from attncli.grid import PatchGrid


NO_TEXT_SINKS = "--drop-sinks removes image patch sinks (attncli.methods.sinks); a text capture has none"


def query_name(grid: "PatchGrid", query: int, label: str) -> str:
    """'patch (3,4)' for a patch token, the prefix token's own name ('[CLS]') otherwise (or the pooled label)."""
    if query >= grid.prefix:
        row, col = grid.cell_of(query)
        return f"patch ({row},{col})"
    return label


class OnGrid:
    """What patch maps share: the grid of their picture and the name of their query."""

    facts: ImageFacts
    query: int
    query_label: str

    @property
    def grid(self) -> "PatchGrid":
        """The patch grid."""
        return self.facts.grid

    @property
    def who(self) -> str:
        """The query as a reader names it: '[CLS]' or 'patch (3,4)'."""
        return query_name(self.grid, self.query, self.query_label)


@dataclass
class PatchMap(OnGrid):
    """One query token's map over the patch grid: ``values[row, col]``; ``outside`` is what went to prefix tokens."""

    values: "np.ndarray"  # (rows, cols)
    facts: ImageFacts
    query: int
    query_label: str
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    model_id: str
    method: Method = Method.attention
    method_note: str | None = None
    outside: float | None = None
    scale: Scale = Scale.zero
    vmin: float = 0.0
    vmax: float = 1.0
    patch_sinks: list[PatchSink] | None = field(default_factory=list)  # in the layers behind it (None: not known)
    drop_sinks: bool = False  # rollout/flow: the sinks' columns were removed before the product

    @property
    def notes(self) -> list[str]:
        """Lines a renderer shows under the title: an out-of-distribution image, the patch sinks behind the map."""
        sinks = UNKNOWN if self.patch_sinks is None else sinks_note(self.patch_sinks, marked=True)
        return [n for n in (self.facts.unlike_training, sinks, self._drop_note) if n]

    @property
    def _drop_note(self) -> str | None:
        """What --drop-sinks did, or that it exists, for a rollout or flow map with sinks behind it."""
        if "drop_sinks" not in info(self.method).options:
            return None
        if self.drop_sinks:
            return ("--drop-sinks: each layer's sink columns were removed and its rows renormalised before the layers "
                    "were combined" if self.patch_sinks else "--drop-sinks: no layer behind this map has a patch sink")
        if self.patch_sinks:
            which, them = ("this sink", "it") if len(self.patch_sinks) == 1 else ("these sinks", "them")
            return (f"the {self.method.value} combines the layers with {which} in them; "
                    f"--drop-sinks removes {them} first")
        return None

    @property
    def sink_cells(self) -> set[tuple[int, int]]:
        """(row, col) of the patch sinks behind the map: figures and the terminal mark them."""
        return sink_cells(self.patch_sinks)

    @property
    def cell(self) -> tuple[int, int] | None:
        """(row, col) of the query when it is a patch."""
        return self.grid.cell_of(self.query) if self.query >= max(self.grid.prefix, 0) else None

    @property
    def title(self) -> str:
        """'Layer 5 · mean of 6 heads · [CLS] → patches · model'."""
        how = self.method_note or heads_phrase(self.head, self.fuse, self.n_heads)
        return f"Layer {self.layer} · {how} · {self.who} → patches · {self.model_id}"

    @property
    def quantity(self) -> str:
        """'attention' or 'relevance'."""
        return quantity(self.method)

    def top(self, k: int = 3) -> list[tuple[int, int, float]]:
        """The k highest cells as (row, col, weight), highest first."""
        cols = self.values.shape[1]
        return [(i // cols, i % cols, w) for i, w in top_k(self.values.reshape(-1), k)]

    def to_dict(self) -> dict:
        """The JSON document of `attn heatmap IMAGE --json` (schema attncli.patch-map/1)."""
        return {"schema": "attncli.patch-map/1", "title": self.title, "model": self.model_id,
                "image": self.facts.source, "method": self.method.value, "layer": self.layer, "head": self.head,
                "fuse": None if self.head is not None else self.fuse,
                "query": {"token": self.query if self.query >= 0 else None, "label": self.who, "cell": self.cell},
                "grid": self.grid.to_dict(), "quantity": self.quantity,
                "prefix_share": None if self.outside is None else round(self.outside, 6),
                "scale": {"kind": self.scale.value, "vmin": round(self.vmin, 6), "vmax": round(self.vmax, 6)},
                "top": [{"row": r, "col": c, "weight": round(w, 6), "sink": self.is_sink(r, c)}
                        for r, c, w in self.top(5)],
                "patch_sinks": None if self.patch_sinks is None else [s.to_dict() for s in self.patch_sinks],
                "drop_sinks": self.drop_sinks,
                **self.facts.to_dict(),
                "out_of_distribution": self.facts.unlike_training,
                "weights": rounded(self.values)}

    def is_sink(self, row: int, col: int) -> bool | None:
        """Whether the patch is a sink in a layer behind the map; None when that cannot be known."""
        return None if self.patch_sinks is None else (row, col) in self.sink_cells


@dataclass
class HeadPanels(OnGrid):
    """Every head of one layer as its own patch map: ``values[head, row, col]`` on one shared colour scale."""

    values: "np.ndarray"  # (heads, rows, cols)
    facts: ImageFacts
    query: int
    query_label: str
    layer: int
    model_id: str
    outside: float | None = None
    scale: Scale = Scale.zero
    vmin: float = 0.0
    vmax: float = 1.0
    method: Method = Method.attention
    patch_sinks: list[PatchSink] | None = field(default_factory=list)  # in this layer (None: not known)

    @property
    def notes(self) -> list[str]:
        """Lines a renderer shows under the title: an out-of-distribution image, the layer's patch sinks."""
        sinks = UNKNOWN if self.patch_sinks is None else sinks_note(self.patch_sinks, marked=True)
        return [n for n in (self.facts.unlike_training, sinks) if n]

    @property
    def sink_cells(self) -> set[tuple[int, int]]:
        """(row, col) of the layer's patch sinks: figures and the terminal mark them."""
        return sink_cells(self.patch_sinks)

    @property
    def quantity(self) -> str:
        """'attention', or what the method's numbers are ('norm')."""
        return quantity(self.method)

    @property
    def title(self) -> str:
        """'Layer 5 · all 6 heads · [CLS] → patches · model' ('value-norm of all 6 heads' for another method)."""
        heads = f"all {self.values.shape[0]} heads"
        how = heads if info(self.method).raw else f"{Method(self.method).value} of {heads}"
        return f"Layer {self.layer} · {how} · {self.who} → patches · {self.model_id}"

    def to_dict(self) -> dict:
        """The JSON document of `attn heatmap IMAGE --all-heads --json` (schema attncli.head-panels/1)."""
        return {"schema": "attncli.head-panels/1", "title": self.title, "model": self.model_id,
                "image": self.facts.source, "method": Method(self.method).value, "layer": self.layer,
                "query": {"token": self.query if self.query >= 0 else None, "label": self.who},
                "grid": self.grid.to_dict(),
                "prefix_share": None if self.outside is None else round(self.outside, 6),
                "scale": {"kind": self.scale.value, "vmin": round(self.vmin, 6), "vmax": round(self.vmax, 6)},
                "patch_sinks": None if self.patch_sinks is None else [s.to_dict() for s in self.patch_sinks],
                **self.facts.to_dict(),
                "out_of_distribution": self.facts.unlike_training,
                "heads": [rounded(v) for v in self.values]}


@dataclass
class TokenRow:
    """One text token's map over every token: ``values[key]``."""

    values: "np.ndarray"  # (tokens,)
    labels: list[str]
    special: list[bool]
    query: int
    query_label: str
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    model_id: str
    method: Method = Method.attention
    method_note: str | None = None
    scale: Scale = Scale.zero
    vmin: float = 0.0
    vmax: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """'Layer 1 · mean of 2 heads · what "cat" (token 2) attends to · model'."""
        how = self.method_note or heads_phrase(self.head, self.fuse, self.n_heads)
        return f'Layer {self.layer} · {how} · what "{self.query_label}" (token {self.query}) attends to · ' \
               f"{self.model_id}"

    def to_dict(self) -> dict:
        """The JSON document of `attn heatmap --text … --query Q --json` (schema attncli.token-row/1)."""
        return {"schema": "attncli.token-row/1", "title": self.title, "model": self.model_id,
                "method": self.method.value, "layer": self.layer, "head": self.head,
                "fuse": None if self.head is not None else self.fuse,
                "query": {"index": self.query, "text": self.query_label},
                "tokens": [{"index": i, "text": t, "special": s} for i, (t, s) in enumerate(zip(self.labels,
                                                                                               self.special))],
                "weights": rounded(self.values)}


def parse_query(capture: "Capture", query: str | None) -> int | None:
    """Token index of --query: for images '(ROW,COL)', 'ROW,COL', a patch index or a prefix name; for text a word."""
    if query is None:
        return None
    text = query.strip()
    if capture.kind is Kind.image and capture.grid is not None:
        return capture.grid.query_token(query)
    from attncli.views.explain import find_token

    return find_token(capture, text)  # the same lookup, and the same words, as explain --token


def patch_map(capture: "Capture", spec: MapSpec = MapSpec(), gradients: "np.ndarray | None" = None,
              target_label: str | None = None) -> PatchMap:
    """The query's (default [CLS]) map over the patch grid for the spec's method, layer and heads."""
    from attncli.methods.dispatch import describe, method_rows

    facts = image_facts(capture)
    method = check_capture(capture, spec)
    m = info(method)
    slot, layer = capture.layer_index(spec.layer), capture.layer_number(spec.layer)
    head_slot, head = stored_head(capture, spec.head, spec.fuse)
    q = parse_query(capture, spec.query)
    grid = facts.grid
    q, label, rows = _query_rows(capture, q, spec.query)
    drop = sink_drops(capture, slot) if spec.drop_sinks else None
    row = method_rows(capture.attentions, method, slot, head=head_slot, fuse=spec.fuse,
                      discard_ratio=spec.discard_ratio, gradients=gradients, protect=range(grid.prefix),
                      queries=rows, drop=drop, extras=capture.extras).mean(axis=0)  # (K,): the query's row, or the mean
    values, outside = _on_grid(row, grid)
    if not m.sums_to_one:
        outside = None  # relevance or norm rows do not sum to 1: there is no "share" left on the prefix
    fuse = Fuse(spec.fuse).value
    note = describe(method, layer, head, fuse, capture.heads_total, spec.discard_ratio, target_label, spec.drop_sinks)
    scale = spec.scale or default_scale(method)
    vmin, vmax = colour_range(values, scale)
    # A one-layer method reads that layer; rollout, flow and grad-rollout combine every layer up to it.
    behind = [layer] if m.span == ONE else range(layer + 1)
    return PatchMap(values, facts, q, label, layer, head, fuse, capture.heads_total, capture.model_id,
                    method, note, outside, scale, vmin, vmax, capture_sinks(capture, behind), spec.drop_sinks)


def _query_rows(capture: "Capture", q: int | None, query: str | None) -> tuple[int, str, list[int]]:
    """(query token, its label, stored rows to average): [CLS] by default; a model without one, every row.

    A model with no prefix token (SigLIP pools with an attention head of its own) has no single row that stands
    for the image, so the map shown is the mean of every query row, and its label says so (query token -1).
    """
    if q is None and capture.grid is not None and capture.grid.prefix == 0:
        n = capture.n_tokens
        return -1, f"mean of all {n} query rows (no [CLS])", [query_row(capture, t, None) for t in range(n)]
    q = 0 if q is None else q
    return q, capture.tokens[q], [query_row(capture, q, query)]


def head_panels(capture: "Capture", spec: MapSpec = MapSpec()) -> HeadPanels:
    """Every head of one layer as its own patch map (raw attention, or another method that shows one head)."""
    import numpy as np

    from attncli.methods.dispatch import method_rows

    check_all_heads(spec.method)
    if capture.kind is not Kind.image or capture.grid is None:
        raise UsageError("--all-heads draws one patch-grid panel per head: it needs an image capture",
                         "for text, pick one head with --head")
    facts = image_facts(capture)
    require_whole(capture, "--all-heads", layers=False, rows=False, heads=True)
    slot, layer = capture.layer_index(spec.layer), capture.layer_number(spec.layer)
    q, label, rows = _query_rows(capture, parse_query(capture, spec.query), spec.query)
    check_capture(capture, spec)
    panels = [_on_grid(method_rows(capture.attentions, spec.method, slot, head=h, queries=rows,
                                   extras=capture.extras).mean(axis=0), facts.grid)[0] for h in range(capture.n_heads)]
    values = np.stack(panels)  # (heads, rows, cols)
    outside = float(1.0 - values.sum(axis=(1, 2)).mean()) if info(spec.method).sums_to_one else None
    scale = spec.scale or Scale.zero
    vmin, vmax = colour_range(values, scale)
    return HeadPanels(values, facts, q, label, layer, capture.model_id, outside, scale, vmin, vmax, Method(spec.method),
                      patch_sinks=capture_sinks(capture, [layer]))


def check_all_heads(method: "Method | str") -> None:
    """Refuse --all-heads for a method that has no map of one head."""
    if not info(method).one_head:
        raise UsageError(f"--all-heads shows each head of one layer; {Method(method).value} combines the heads",
                         f"drop --all-heads, or use --method {' or '.join(m for m in _one_head())}")


def _one_head() -> list[str]:
    from attncli.methods.registry import METHODS

    return [m.name for m in METHODS.values() if m.one_head]


def token_row(capture: "Capture", spec: MapSpec, gradients: "np.ndarray | None" = None,
              target_label: str | None = None) -> TokenRow:
    """One text token's (spec.query) map over every token."""
    from attncli.methods.dispatch import describe, method_rows

    if spec.drop_sinks:
        raise UsageError(NO_TEXT_SINKS, "drop --drop-sinks")
    method = check_capture(capture, spec)
    slot, layer = capture.layer_index(spec.layer), capture.layer_number(spec.layer)
    head_slot, head = stored_head(capture, spec.head, spec.fuse)
    q = parse_query(capture, spec.query)
    assert q is not None
    values = method_rows(capture.attentions, method, slot, head=head_slot, fuse=spec.fuse,
                         discard_ratio=spec.discard_ratio, gradients=gradients, extras=capture.extras,
                         queries=[query_row(capture, q, spec.query)])[0]  # (K,)
    fuse = Fuse(spec.fuse).value
    note = describe(method, layer, head, fuse, capture.heads_total, spec.discard_ratio, target_label)
    scale = spec.scale or default_scale(method)
    vmin, vmax = colour_range(values, scale)
    return TokenRow(values, list(capture.tokens), list(capture.special), q, capture.tokens[q], layer, head, fuse,
                    capture.heads_total, capture.model_id, method, note, scale, vmin, vmax)


def needs(spec: MapSpec, layers: str | None = None, heads: str | None = None, *, image: bool = True,
          all_heads: bool = False) -> "Selection":
    """The weights a map reads, plus --layers (more layers; "all": every layer and row) and --heads (only these).

    Raw attention reads one layer: a text's one query row (--query) or its whole token matrix; an image's every
    query row, since the map checks the layer for patch sinks, which are a share of every query's attention (a
    layer of DINOv2-S/14 is 1.6 MB). Rollout, flow and grad-rollout read everything.
    """
    from attncli.capture import Selection, parse_numbers

    extra, kept = parse_numbers(layers, "layer"), parse_numbers(heads, "head")
    if all_heads:
        kept = None  # every head of the layer is drawn
    elif kept is not None and spec.head is not None:
        kept += (spec.head,)
    m = info(spec.method)
    if m.span != ONE:
        return Selection(extras=m.extras)
    if m.each_head:
        kept = None
    if layers is not None and extra is None:  # --layers all: the whole capture, to re-render anything later
        return Selection(heads=kept, extras=m.extras)
    wanted = (spec.layer,) + (extra or ())
    if spec.query is not None and not image:
        return Selection(layers=wanted, heads=kept, query=spec.query, extras=m.extras)
    return Selection(layers=wanted, heads=kept, extras=m.extras)


def _on_grid(row: "np.ndarray", grid: "PatchGrid") -> "tuple[np.ndarray, float]":
    """A (tokens,) attention row → its patch part as (rows, cols), and the share left on prefix tokens."""
    patches = row[grid.prefix:grid.prefix + grid.n_patches]  # (rows*cols,)
    # Not renormalised: the colours show real weights; what the prefix tokens took is reported instead.
    return patches.reshape(grid.rows, grid.cols), float(1.0 - patches.sum())


def describe_top(amap: PatchMap, k: int = 3) -> str:
    """'(3,4) 0.081, (3,5) 0.062, (4,4) 0.050'."""
    return ", ".join(f"({r},{c}) {w:.3f}" for r, c, w in amap.top(k))
