"""Dual encoders (CLIP, SigLIP): an image tower and a text tower, each read on its own.

A checkpoint of the whole model (``CLIPModel``, ``SiglipModel``) loads only the tower a command reads: the image
tower (``CLIPVisionModel``) for image commands, where it is a ViT-like encoder (CLIP's has [CLS]; SigLIP's has
none and pools with an attention head), and the text tower (``CLIPTextModel``) for ``attn explain``. The tower
classes name their weights as the whole model does (``vision_model.…``, ``text_model.…``), so they load from
the same files; the other tower's weights are left unread.
"""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Family, Modality

# model_type -> the class-name stem of its towers (CLIP -> CLIPVisionModel, CLIPTextModel).
TOWERS = {"clip": "CLIP", "siglip": "Siglip", "siglip2": "Siglip2", "chinese_clip": "ChineseCLIP"}


class DualEncoder(Family):
    """Image and text towers trained to agree: the image tower serves image commands, the text tower text ones."""

    name = "dual encoder"
    examples = "CLIP, SigLIP"
    modality = Modality.image
    purposes = frozenset({Purpose.image, Purpose.text})
    processor_class = "AutoImageProcessor"

    def matches(self, config: Any) -> bool:
        """A config of a known dual encoder (a text_config and a vision_config)."""
        return getattr(config, "model_type", "") in TOWERS and hasattr(config, "vision_config")

    def tower(self, purpose: Purpose) -> str:
        """'text' for text commands, 'vision' otherwise."""
        return "text" if purpose is Purpose.text else "vision"

    def load_config(self, config: Any, purpose: Purpose) -> Any:
        """The tower's own config (CLIPVisionConfig, CLIPTextConfig)."""
        return getattr(config, f"{self.tower(purpose)}_config")

    def model_class(self, config: Any, purpose: Purpose) -> Any:
        """The tower's class: CLIPVisionModel for images, CLIPTextModel for text."""
        import transformers

        stem = TOWERS[config.model_type]
        return getattr(transformers, f"{stem}{self.tower(purpose).capitalize()}Model")

    def processor_for(self, location: str, purpose: Purpose, **options: Any) -> Any:
        """The tokenizer for the text tower, the image processor for the image tower."""
        import transformers

        cls = transformers.AutoTokenizer if purpose is Purpose.text else transformers.AutoImageProcessor
        return cls.from_pretrained(location, **options)


FAMILY = DualEncoder()
