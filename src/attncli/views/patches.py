"""What `attn patches` shows: the image as the model sees it cut into its grid, and position-embedding similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture
    from attncli.grid import PatchGrid
    from attncli.views.maps import ImageFacts


@dataclass
class PatchesView:
    """The patch grid of one image, and the learned position embeddings when the model has them."""

    facts: "ImageFacts"
    model_id: str
    positions: "np.ndarray | None" = None  # (patches, dim) learned absolute position embeddings
    position_grid: "PatchGrid | None" = None  # the grid they were learned for

    @property
    def grid(self) -> "PatchGrid":
        """The patch grid of this input."""
        return self.facts.grid

    @property
    def title(self) -> str:
        """'chelsea.png as the model sees it · model'."""
        return f"{self.facts.name} as the model sees it · {self.model_id}"

    @property
    def summary(self) -> str:
        """'64×64 input → 8×8 patches of 8×8 px; 1 prefix token ([CLS]) + 64 patches = 65 tokens'."""
        grid = self.grid
        plural = "s" if grid.prefix != 1 else ""
        size = self.facts.input_size
        resized = f" (resized from the {size[0]}×{size[1]} file)" if self.facts.resized and size else ""
        return (f"{grid.image_width}×{grid.image_height} input{resized} → {grid.rows}×{grid.cols} patches of "
                f"{grid.patch_height}×{grid.patch_width} px; {grid.prefix} prefix token{plural} "
                f"({', '.join(grid.prefix_labels)}) + {grid.n_patches} patches = {grid.n_tokens} tokens")

    def to_dict(self) -> dict:
        """The JSON document of `attn patches --json` (schema attncli.patches/1)."""
        return {"schema": "attncli.patches/1", "title": self.title, "model": self.model_id,
                "image": self.facts.source, "input_size": list(self.facts.input_size or ()) or None,
                "grid": self.grid.to_dict(), "summary": self.summary,
                "position_embeddings": None if self.positions is None else list(self.positions.shape)}


def patches_view(capture: "Capture", positions: "tuple[np.ndarray, PatchGrid] | None" = None) -> PatchesView:
    """The patch grid of an image capture, with the model's position embeddings when it has them."""
    from attncli.views.maps import image_facts

    table, grid = positions if positions is not None else (None, None)
    return PatchesView(image_facts(capture), capture.model_id, table, grid)
