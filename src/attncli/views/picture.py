"""The picture behind a patch map: the image as the model saw it, its file, how it was resized and cropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncli.choices import Kind, TrainingSet
from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture, Prediction
    from attncli.grid import PatchGrid


@dataclass
class ImageFacts:
    """The picture behind a patch map: as the model saw it, its file and original size, the top prediction."""

    image: "np.ndarray"  # (height, width, 3) uint8 after preprocessing
    grid: "PatchGrid"
    source: str | None = None
    input_size: tuple[int, int] | None = None  # (width, height) of the file, before preprocessing
    prediction: "Prediction | None" = None
    unlike_training: str | None = None  # the shapes model on an image unlike its training set: why (see domain_note)
    framing: dict | None = None  # how the processor resized and cropped the file (attncli.images.framing)

    @property
    def name(self) -> str:
        """The file name, or 'input'."""
        from pathlib import Path

        return Path(self.source).name if self.source else "input"

    @property
    def sizes(self) -> str | None:
        """'451×300 → 224×224' when the model saw the image at another size, else None."""
        height, width = self.image.shape[:2]
        if self.input_size is None or tuple(self.input_size) == (width, height):
            return None
        return f"{self.input_size[0]}×{self.input_size[1]} → {width}×{height}"

    @property
    def cropped(self) -> str | None:
        """What the processor did beyond a size change: '741×500 → crop 501×500 → 224×224, 32% of the width cut',
        '451×300 → 64×64, aspect not kept'; None when it only scaled, or when attncli.images.framing cannot tell."""
        from attncli.images import framing_phrase

        phrase = framing_phrase(self.framing) if self.sizes else None
        return phrase if phrase != self.sizes else None

    @property
    def resized(self) -> str | None:
        """The framing in words (cropped), else the sizes ('451×300 → 64×64'), else None (seen at its own size)."""
        return self.cropped or self.sizes

    def to_dict(self) -> dict:
        """{"input_size", "framing", "preprocessing"}: the file's size, the processor's resize and crop, in words."""
        return {"input_size": list(self.input_size) if self.input_size else None, "framing": self.framing,
                "preprocessing": self.resized}


def image_facts(capture: "Capture") -> ImageFacts:
    """The picture facts of an image capture."""
    if capture.kind is not Kind.image or capture.grid is None or capture.image is None:
        raise UsageError("this view draws over an image: it needs an image capture",
                         "capture an image first, e.g. attn heatmap IMAGE")
    size = tuple(capture.input_size) if capture.input_size is not None else None
    return ImageFacts(capture.image, capture.grid, capture.source, size,  # type: ignore[arg-type]
                      capture.predictions[0] if capture.predictions else None, domain_note(capture), capture.framing)


def domain_note(capture: "Capture") -> str | None:
    """For a capture of the shapes model (``arch["trained_on"]``, set when it loads): a line saying the image is
    unlike its synthetic training set, else None.

    The rule is attncli.synthetic.unlike_training: the file is not 64×64 px, or its fine detail agrees across colour
    channels the way a photograph's does. The prediction is still shown; this says how little it means.
    """
    if capture.arch.get("trained_on") != TrainingSet.shapes.value or capture.image is None:
        return None
    from attncli.synthetic import unlike_training

    reason = unlike_training(capture.image, capture.input_size)
    if reason is None:
        return None
    return f"{capture.model_id} only knows synthetic shapes on clutter (64×64 px): {reason}, so its prediction " \
           "says little about it"
