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
    """One patch that soaks up attention in one layer: ``share`` of all queries' attention (heads averaged), 0–1."""

    layer: int
    row: int
    col: int
    token: int
    share: float

    def to_dict(self) -> dict:
        """{"layer", "row", "col", "token", "share"} (share rounded to 6 decimals)."""
        return {"layer": self.layer, "row": self.row, "col": self.col, "token": self.token,
                "share": round(self.share, 6)}


def capture_sinks(capture: "Capture", layers: Iterable[int] | None = None) -> list[PatchSink] | None:
    """The patch sinks of an image capture's self-attention in the given model layers (default: every kept one).

    [] for text; None when the capture kept only some query rows: a sink is a share of every query's attention.
    """
    from attncli.methods.sinks import patch_sinks

    grid = capture.grid
    if capture.kind is not Kind.image or grid is None:
        return []
    if capture.query_ids is not None:
        return None
    numbers = capture.layer_ids or list(range(capture.n_layers))
    chosen = list(range(capture.n_layers)) if layers is None else [capture.layer_index(i) for i in layers]
    found = patch_sinks(capture.attentions[chosen], grid.prefix, grid.rows, grid.cols)
    return [PatchSink(numbers[slot], s["row"], s["col"], s["token"], s["share"])
            for slot, sinks in zip(chosen, found) for s in sinks]


def sinks_phrase(sinks: list[PatchSink]) -> str:
    """'layer 0: (2,8) 16.7%; layer 3: (5,1) 12.0%, (5,2) 4.1%'."""
    by_layer: dict[int, list[PatchSink]] = {}
    for sink in sinks:
        by_layer.setdefault(sink.layer, []).append(sink)
    return "; ".join(f"layer {layer}: " + ", ".join(f"({s.row},{s.col}) {s.share:.1%}" for s in group)
                     for layer, group in by_layer.items())


def sinks_note(sinks: list[PatchSink] | None) -> str | None:
    """One line for a map's notes: where the sinks are and what they mean; None when there are none (or unknown)."""
    if not sinks:
        return None
    what = "an artefact token" if len(sinks) == 1 else "artefact tokens"
    word = "patch sink" if len(sinks) == 1 else "patch sinks"
    return f"{word}, share of all queries' attention: {sinks_phrase(sinks)} (likely {what}, not evidence)"


def rule_phrase() -> str:
    """How a sink is defined, in words."""
    return (f"≥ {RULE['ratio_to_uniform']:g}× the uniform share of all queries' attention, heads averaged, "
            f"≥ {RULE['min_total']:.0%} together")
