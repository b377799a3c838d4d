"""Text encoders (BERT, RoBERTa, MiniLM, DistilBERT, …): bidirectional self-attention over text tokens."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Family, Modality


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
        return not _is_causal(config)


def _is_causal(config: Any) -> bool:
    """A config whose architectures are causal language models (GPT-2, Llama, …)."""
    names = [str(a) for a in getattr(config, "architectures", None) or []]
    if any(n.endswith(("ForCausalLM", "LMHeadModel")) for n in names):
        return True
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = getattr(config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


FAMILY = TextEncoder()
