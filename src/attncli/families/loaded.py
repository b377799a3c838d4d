"""What loading a model gives: where it came from (ModelRef, EmbeddedModel) and the LoadedModel families run.

attncli.models makes these; the families and everything above them only read them, so the types live here,
below both, and a family never imports the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from attncli.choices import Purpose, TrainingSet

if TYPE_CHECKING:
    from attncli.families.base import Family


@dataclass(frozen=True)
class EmbeddedModel:
    """A model that ships with the install and works offline."""

    alias: str
    model_id: str
    purpose: Purpose
    locate: Callable[[], Path]
    sha256: str | None = None
    description: str = ""
    trained_on: TrainingSet | None = None  # a narrow training set: its captures carry it (arch["trained_on"])


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: kind is "alias", "local" or "hub"."""

    kind: str
    location: str
    model_id: str
    embedded: EmbeddedModel | None = None


@dataclass
class LoadedModel:
    """A model in eval mode (selective or eager attention), its tokenizer/processor, family and where it came from."""

    model: Any
    processor: Any
    ref: ModelRef
    device: str
    family: "Family | None" = None
    warnings: list[str] = field(default_factory=list)  # said once per capture (e.g. "eager attention")
    local_files_only: bool = False  # the hub was offline for this load: files read later come from the cache too

    @property
    def config(self) -> Any:
        """The model's transformers config."""
        return self.model.config
