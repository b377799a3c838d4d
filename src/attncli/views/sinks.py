"""Patch sinks of an image capture as view data: which patches soak up a layer's attention (attncli.methods.sinks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from attncli.choices import Kind
from attncli.methods.sinks import MAX_SINKS, MIN_TOTAL, RATIO

if TYPE_CHECKING:
    from attncli.capture import Capture

RULE = {"ratio_to_uniform": RATIO, "max_sinks": MAX_SINKS, "min_total": MIN_TOTAL, "queries": "all"}


@dataclass(frozen=True)
class PatchSink:
    """One patch that soaks up attention in one layer: ``share`` of all queries' attention (heads averaged), 0–1.

    ``head`` is the model head that gives it the most attention and ``head_share`` how much (averaged over every
    query); both None when the capture kept the heads fused.
    """

    layer: int
    row: int
    col: int
    token: int
    share: float
    head: int | None = None
    head_share: float | None = None

    def to_dict(self) -> dict:
        """{"layer", "row", "col", "token", "share", "head", "head_share"} (shares rounded to 6 decimals)."""
        return {"layer": self.layer, "row": self.row, "col": self.col, "token": self.token,
                "share": round(self.share, 6), "head": self.head,
                "head_share": None if self.head_share is None else round(self.head_share, 6)}


def capture_sinks(capture: "Capture", layers: Iterable[int] | None = None) -> list[PatchSink] | None:
    """The patch sinks of an image capture's self-attention in the given model layers (default: every kept one).

    [] for text; None when it cannot be known: the capture kept only some query rows (a sink is a share of every
    query's attention), only some heads, or the heads fused by max or min (the rule averages every head).
    """
    from attncli.methods.sinks import patch_sinks

    grid = capture.grid
    if capture.kind is not Kind.image or grid is None:
        return []
    if capture.query_ids is not None or capture.head_ids is not None:
        return None
    if capture.fused_heads and capture.fused_heads != "mean":
        return None
    numbers = capture.layer_ids or list(range(capture.n_layers))
    chosen = list(range(capture.n_layers)) if layers is None else [capture.layer_index(i) for i in layers]
    weights = capture.attentions[chosen]  # (layers, heads, query, key); one "head" when fused by mean
    found = patch_sinks(weights if not capture.fused_heads else weights[:, 0], grid.prefix, grid.rows, grid.cols)
    return [PatchSink(numbers[slot], s["row"], s["col"], s["token"], s["share"], s.get("head"), s.get("head_share"))
            for slot, sinks in zip(chosen, found) for s in sinks]


def sink_drops(capture: "Capture", upto: int) -> list[list[int]]:
    """--drop-sinks: per stored layer 0..upto (slots), the token columns of that layer's sinks."""
    from attncli.errors import KeptError

    sinks = capture_sinks(capture, range(upto + 1))
    if sinks is None:
        raise KeptError("--drop-sinks needs the sinks of every layer, which this capture cannot tell",
                           "capture it again with --layers all and without --heads")
    by_layer: dict[int, list[int]] = {}
    for sink in sinks:
        by_layer.setdefault(sink.layer, []).append(sink.token)
    return [by_layer.get(layer, []) for layer in range(upto + 1)]


def sink_cells(sinks: list[PatchSink] | None) -> set[tuple[int, int]]:
    """(row, col) of every sink patch, whichever layer it is in."""
    return {(s.row, s.col) for s in sinks or ()}


def sinks_phrase(sinks: list[PatchSink]) -> str:
    """'layer 0: (2,8) 16.7% (head 5: 99.5%); layer 3: (5,1) 12.0%, (5,2) 4.1%'."""
    by_layer: dict[int, list[PatchSink]] = {}
    for sink in sinks:
        by_layer.setdefault(sink.layer, []).append(sink)

    def one(s: PatchSink) -> str:
        head = "" if s.head is None or s.head_share is None else f" [head {s.head}: {s.head_share:.1%}]"
        return f"({s.row},{s.col}) {s.share:.1%}{head}"

    return "; ".join(f"layer {layer}: " + ", ".join(one(s) for s in group) for layer, group in by_layer.items())


UNKNOWN = ("patch sinks not checked: a sink is a share of every query's attention with every head averaged, and this "
           "capture did not keep every query row and head of the layers (capture again with --layers all, no --heads)")


def sinks_note(sinks: list[PatchSink] | None, marked: bool = False) -> str | None:
    """One line for notes: where the sinks are and what was measured; None when there are none (or unknown).

    It says what the weights show — the share of all queries' attention (heads averaged) and the head that sends
    the most there — and nothing the weights cannot show: a sink can be background or part of the object.
    ``marked``: the view draws them with ◇ (maps), so the note names the mark.
    """
    if not sinks:
        return None
    word = ("patch sink" if len(sinks) == 1 else "patch sinks") + (" ◇" if marked else "")
    return f"{word} (share of all queries' attention, heads averaged [top head: its share]): {sinks_phrase(sinks)}"


def rule_phrase() -> str:
    """How a sink is defined, in words."""
    return (f"≥ {RULE['ratio_to_uniform']:g}× the uniform share of all queries' attention, heads averaged, "
            f"≥ {RULE['min_total']:.0%} together")
