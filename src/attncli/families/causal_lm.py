"""Causal language models (GPT-2, Llama, Mistral, …): each token attends to itself and the tokens before it."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Family, Modality, is_causal_lm


class CausalLM(Family):
    """A decoder-only text model; loaded with its language-model head when the checkpoint has one."""

    name = "causal language model"
    examples = "GPT-2, Llama, Mistral"
    modality = Modality.text
    purposes = frozenset({Purpose.text, Purpose.text_classification})
    default_class = "AutoModelForCausalLM"

    def matches(self, config: Any) -> bool:
        """A text config that is not an encoder-decoder and whose model type or architectures are causal LMs."""
        if getattr(config, "is_encoder_decoder", False) or hasattr(config, "vision_config"):
            return False
        return is_causal_lm(config)


FAMILY = CausalLM()
