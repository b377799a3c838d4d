"""Image models whose attention works in local windows or stages (Swin, PVT, …): recognised, not drawn yet."""

from __future__ import annotations

from typing import Any

from attncli.families.base import Family, Modality

# Model types that attend inside local windows or shrink the grid stage by stage.
WINDOWED = {"swin", "swinv2", "donut-swin", "maskformer-swin", "pvt", "pvt_v2", "levit", "mobilevit", "mobilevitv2",
            "focalnet", "dinat", "nat", "hiera", "efficientformer", "poolformer", "segformer", "cvt", "vitdet"}

class WindowedVision(Family):
    """Attention inside local windows or per stage: no single global patch grid to draw on."""

    name = "windowed-attention image model"
    examples = "Swin, PVT, MobileViT"
    modality = Modality.image
    unsupported = "its attention works in local windows or stages, not over one global patch grid"

    def matches(self, config: Any) -> bool:
        """Known windowed model types, or an image config with a window size or per-stage depths."""
        model_type = getattr(config, "model_type", "")
        if model_type in WINDOWED:
            return True
        return (getattr(config, "patch_size", None) is not None
                and (bool(getattr(config, "window_size", None)) or isinstance(getattr(config, "depths", None), list)))



FAMILY = WindowedVision()
