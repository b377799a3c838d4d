"""Text encoders (BERT, RoBERTa, MiniLM, DistilBERT, …): bidirectional self-attention over text tokens."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Family, Modality, is_causal_lm


class TextEncoder(Family):
    """An encoder-only text model; a checkpoint saved with a task head keeps it."""

    name = "text encoder"
    examples = "BERT, RoBERTa, MiniLM"
    modality = Modality.text
    purposes = frozenset({Purpose.text, Purpose.text_classification})

    def matches(self, config: Any) -> bool:
        """Any text config that is neither a decoder nor an encoder-decoder nor a vision/speech model."""
        if getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False):
            return False
        if hasattr(config, "vision_config") or hasattr(config, "num_mel_bins") or hasattr(config, "patch_size"):
            return False
        return not is_causal_lm(config)


FAMILY = TextEncoder()
