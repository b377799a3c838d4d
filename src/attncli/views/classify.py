"""What `attn classify` shows: per image its top-k labels and where [CLS] looks (the method's map over patches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attncli.methods.registry import Method, info
from attncli.methods.spec import ONE
from attncli.views.common import MapSpec

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture, Prediction, Selection
    from attncli.grid import PatchGrid
    from attncli.views.maps import PatchMap


@dataclass
class ClassifiedImage:
    """One image: its top-k labels and the [CLS] map's top patches."""

    source: str
    predictions: "list[Prediction]"
    cls_top: list[tuple[int, int, float]]  # (row, col, weight), highest first
    cls_layer: int
    cls_sinks: list["bool | None"] = field(default_factory=list)  # per cls_top entry: a sink behind the map (None: unknown)
    cls_method: Method = Method.attention
    unlike_training: str | None = None  # the shapes model on an image unlike its training set: why

    def to_dict(self) -> dict:
        """One entry of the `images` list in `attn classify --json` (schema attncli.classify/1)."""
        return {
            "source": self.source,
            "predictions": [{"index": p.index, "label": p.label, "score": round(p.score, 6)} for p in self.predictions],
            "cls_top_patches": [{"row": r, "col": c, "weight": round(w, 6),
                                 "sink": self.cls_sinks[i] if i < len(self.cls_sinks) else None}
                                for i, (r, c, w) in enumerate(self.cls_top)],
            "cls_layer": self.cls_layer,
            "cls_method": Method(self.cls_method).value,
            "out_of_distribution": self.unlike_training,
        }


@dataclass
class ClassifyResult:
    """Every image classified in one run; ``first`` is the map of the image kept as the last capture."""

    rows: list[ClassifiedImage]
    model_id: str
    grid: "PatchGrid | None"
    kept: str | None
    method_note: str  # how the [CLS] map was made, e.g. "layer 5 · mean of 12 heads"
    first: "PatchMap | None" = None
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """'000_star.png · attncli/shapes-vit' or '6 images · attncli/shapes-vit'."""
        if len(self.rows) == 1:
            return f"{Path(self.rows[0].source).name} · {self.model_id}"
        return f"{len(self.rows)} images · {self.model_id}"

    @property
    def cls_phrase(self) -> str:
        """'where [CLS] looks most (layer 5 · mean of 12 heads)'."""
        return f"where [CLS] looks most ({self.method_note})"

    def to_dict(self) -> dict:
        """The JSON document of `attn classify --json` (schema attncli.classify/1)."""
        return {
            "schema": "attncli.classify/1",
            "title": self.title,
            "model": self.model_id,
            "cls_map": self.method_note,
            "grid": self.grid.to_dict() if self.grid is not None else None,
            "images": [row.to_dict() for row in self.rows],
            "last_capture": self.kept,
            "notes": self.notes,
        }


def summarise(capture: "Capture", k: int = 5, patches: int = 3, spec: MapSpec = MapSpec(),
              gradients: "np.ndarray | None" = None) -> tuple[ClassifiedImage, "PatchMap"]:
    """Top-k predictions and the [CLS] map's top patches (spec's method and layer, default the last layer)."""
    from attncli.views.maps import patch_map

    amap = patch_map(capture, spec, gradients)
    top = amap.top(patches)
    row = ClassifiedImage(source=capture.source or "", predictions=list(capture.predictions[:k]),
                          cls_top=top, cls_layer=amap.layer, cls_method=amap.method,
                          unlike_training=amap.facts.unlike_training,
                          cls_sinks=[amap.is_sink(r, c) for r, c, _ in top])
    return row, amap


def classify_result(rows: list[ClassifiedImage], first: "PatchMap", kept: str | None) -> ClassifyResult:
    """The view of a classify run (``first``: the map of the image kept as the last capture)."""
    note = f"layer {first.layer} · {first.method_note}" if info(first.method).span == ONE else first.method_note
    unlike = [row for row in rows if row.unlike_training]
    notes = [] if not unlike else [unlike[0].unlike_training or ""] if len(rows) == 1 else [
        f"{len(unlike)} of {len(rows)} images are unlike the synthetic shapes {first.model_id} was trained on "
        "(64×64 px, one shape on clutter): their predictions say little (--json: out_of_distribution)"]
    return ClassifyResult(rows, first.model_id, first.grid, kept, note or "", first, notes)


def needs(spec: MapSpec = MapSpec(), layers: str | None = None, heads: str | None = None) -> "Selection":
    """What the summary reads, plus --layers (more layers, or all of them) and --heads (only these).

    The summary is the [CLS] map of views.maps.needs: the last layer's [CLS] row for raw attention, everything for
    rollout, flow and grad-rollout.
    """
    from attncli.views.maps import needs as map_needs

    return map_needs(spec, layers, heads, image=True)
