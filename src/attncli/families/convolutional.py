"""Convolutional image networks (ConvNeXt, ResNet, …): recognised so attncli says they have no attention."""

from __future__ import annotations

from typing import Any

from attncli.families.base import Family, Modality

# Convolutional networks: no attention weights at all.
CONVOLUTIONAL = {"convnext", "convnextv2", "resnet", "regnet", "efficientnet", "mobilenet_v1", "mobilenet_v2",
                 "bit", "van", "dinat_conv", "textnet", "rt_detr_resnet"}



class Convolutional(Family):
    """Convolutional image networks."""

    name = "convolutional image model"
    examples = "ConvNeXt, ResNet, EfficientNet"
    modality = Modality.image
    unsupported = "it is a convolutional network and has no attention weights to show"

    def matches(self, config: Any) -> bool:
        """Known convolutional model types."""
        return getattr(config, "model_type", "") in CONVOLUTIONAL



FAMILY = Convolutional()
