"""BLIP captioners: a ViT encoder and a BERT-style text decoder whose captions end with [SEP]."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Modality
from attncli.families.vision_encoder_decoder import VisionEncoderDecoder


class Blip(VisionEncoderDecoder):
    """BlipForConditionalGeneration; its forward drops the decoder's attentions, so its parts are called."""

    name = "BLIP captioner"
    examples = "BLIP"
    modality = Modality.image
    purposes = frozenset({Purpose.caption})
    default_class = "BlipForConditionalGeneration"

    def matches(self, config: Any) -> bool:
        """transformers' BlipConfig."""
        return getattr(config, "model_type", "") == "blip"

    def decoder_config(self, config: Any) -> Any:
        """The text decoder's config."""
        return config.text_config

    def encoder_config(self, config: Any) -> Any:
        """The vision model's config."""
        return config.vision_config

    def start_id(self, model: Any) -> int:
        """BLIP decodes from its text config's BOS token."""
        return model.config.text_config.bos_token_id

    def eos_id(self, model: Any) -> int | None:
        """BLIP ends captions with [SEP]."""
        return model.config.text_config.sep_token_id

    def target_ids(self, tokenizer: Any, text: str, eos: int | None) -> list[int]:
        """The plain tokenization without its leading [CLS] (the start token replaces it)."""
        ids = list(tokenizer(text, verbose=False)["input_ids"])
        special = set(tokenizer.all_special_ids)
        return ids[1:] if ids and ids[0] in special and ids[0] != eos else ids

    def forward(self, model: Any, inputs: dict[str, Any], decoder_in: Any) -> tuple:
        """Vision model, then text decoder, each asked for its attentions."""
        vision = model.vision_model(pixel_values=inputs["pixel_values"], output_attentions=True)
        text = model.text_decoder(input_ids=decoder_in, encoder_hidden_states=vision.last_hidden_state,
                                  output_attentions=True)
        return vision.attentions, text.attentions, text.cross_attentions, text.logits


FAMILY = Blip()
