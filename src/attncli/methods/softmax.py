"""Softmax of a handful of scores, step by step (pure Python: no numpy or torch needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from attncli.errors import UsageError


@dataclass(frozen=True)
class SoftmaxResult:
    """Scores, the logits actually exponentiated, and the resulting weights."""

    scores: tuple[float, ...]
    logits: tuple[float, ...]
    weights: tuple[float, ...]
    dim: int | None
    temperature: float

    @property
    def winner(self) -> int:
        """Index of the element that gets the most attention (first on ties)."""
        return max(range(len(self.weights)), key=lambda i: (self.weights[i], -i))

    @property
    def title(self) -> str:
        """What the table shows."""
        return "softmax(scores)"

    def to_dict(self) -> dict:
        """JSON-able view."""
        return {
            "scores": list(self.scores),
            "scale_dim": self.dim,
            "temperature": self.temperature,
            "logits": list(self.logits),
            "weights": list(self.weights),
            "argmax": self.winner,
        }


def softmax(scores: list[float], dim: int | None = None, temperature: float = 1.0) -> SoftmaxResult:
    """exp(s_i / (√dim · T)) / Σ_j exp(s_j / (√dim · T)), computed stably (max subtracted first)."""
    if not scores:
        raise UsageError("give at least one score", "e.g. attn softmax 1 2 3")
    if not all(math.isfinite(s) for s in scores):
        raise UsageError("scores must be finite numbers (no inf or nan)")
    if dim is not None and dim <= 0:
        raise UsageError(f"--scale {dim}: the dimension must be a positive integer")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise UsageError(f"--temperature {temperature}: must be a positive number")
    divisor = (math.sqrt(dim) if dim else 1.0) * temperature
    logits = [s / divisor for s in scores]
    if not all(math.isfinite(x) for x in logits):  # a tiny T or huge scores overflow float64
        raise UsageError(f"scores / (√D · --temperature {temperature:g}) are too large for floating point",
                         "use a larger --temperature or smaller scores")
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]  # subtract the max so large scores cannot overflow
    total = sum(exps)
    return SoftmaxResult(tuple(scores), tuple(logits), tuple(e / total for e in exps), dim, temperature)
