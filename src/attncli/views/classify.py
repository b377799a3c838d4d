"""What attn classify shows: per image its top-k labels and where [CLS] looks (a method's map over the patches)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from attncli.capture import Capture, Prediction
from attncli.grid import PatchGrid

if TYPE_CHECKING:
    import numpy as np


@dataclass
class ClassifiedImage:
    """What `attn classify` reports per image: top-k labels and where CLS looks at the last layer."""

    source: str
    predictions: list[Prediction]
    cls_top: list[tuple[int, int, float]]  # (row, col, weight), highest first
    cls_layer: int
    cls_method: str = "attention"  # how the CLS map was computed (attncli.choices.Method)

    def to_dict(self) -> dict:
        """One entry of the `images` list in `attn classify --json` (schema attncli.classify/1)."""
        return {
            "source": self.source,
            "predictions": [{"index": p.index, "label": p.label, "score": round(p.score, 6)} for p in self.predictions],
            "cls_top_patches": [{"row": r, "col": c, "weight": round(w, 6)} for r, c, w in self.cls_top],
            "cls_layer": self.cls_layer,
            "cls_method": self.cls_method,
        }


def summarise(capture: Capture, k: int = 5, patches: int = 3, method: str = "attention", discard_ratio: float = 0.0,
              gradients: "np.ndarray | None" = None) -> ClassifiedImage:
    """Top-k predictions and the CLS token's top patches at the last layer (heads averaged, or --method's map)."""
    from attncli.views.maps import query_map, top_patches

    amap = query_map(capture, layer=-1, method=method, discard_ratio=discard_ratio, gradients=gradients)
    return ClassifiedImage(source=capture.source or "", predictions=list(capture.predictions[:k]),
                           cls_top=top_patches(amap, patches), cls_layer=amap.layer, cls_method=amap.method)


def classify_document(rows: Sequence[ClassifiedImage], model_id: str, grid: PatchGrid | None,
                      kept: str | None) -> dict:
    """The JSON document of `attn classify --json` (schema attncli.classify/1)."""
    return {
        "schema": "attncli.classify/1",
        "model": model_id,
        "grid": grid.to_dict() if grid is not None else None,
        "images": [row.to_dict() for row in rows],
        "last_capture": kept,
    }
