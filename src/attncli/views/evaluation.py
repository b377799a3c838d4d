"""The result of `attn evaluate`: each method's faithfulness scores on one image set (attncli.evaluate makes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MethodScore:
    """Mean scores of one method over the images (None where the metric was not computed)."""

    method: str
    pointing: float | None = None
    iou: float | None = None
    deletion: float | None = None
    insertion: float | None = None
    seconds: float = 0.0  # time spent computing this method's maps

    def to_dict(self) -> dict:
        """JSON-ready, rounded."""
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {"method": self.method, "pointing": r(self.pointing), "iou": r(self.iou),
                "deletion_auc": r(self.deletion), "insertion_auc": r(self.insertion),
                "map_seconds": round(self.seconds, 3)}


@dataclass
class EvalReport:
    """Scores of every method (and the random baseline, last) on one image set."""

    model_id: str
    dataset: str  # "shapes" or "images"
    n: int
    seed: int
    scores: list[MethodScore]
    accuracy: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON document of `attn evaluate --json` (schema attncli.evaluate/1)."""
        return {"schema": "attncli.evaluate/1", "model": self.model_id, "dataset": self.dataset, "n": self.n,
                "seed": self.seed, "accuracy": None if self.accuracy is None else round(self.accuracy, 4),
                "settings": self.settings, "methods": [s.to_dict() for s in self.scores]}
