"""Text encoder-decoders (Marian/opus-mt, T5, BART, …): cross-attention from target to source tokens."""

from __future__ import annotations

from typing import Any

from attncli.choices import Purpose
from attncli.families.base import Modality
from attncli.families.encdec import EncoderDecoder


class TextSeq2Seq(EncoderDecoder):
    """Translation and summarisation models: a text encoder, a text decoder with cross-attention."""

    name = "text encoder-decoder"
    examples = "Marian/opus-mt, T5, BART"
    modality = Modality.text
    purposes = frozenset({Purpose.align})
    default_class = "AutoModelForSeq2SeqLM"
    processor_class = "AutoTokenizer"

    def matches(self, config: Any) -> bool:
        """An encoder-decoder config without image or audio inputs."""
        return (bool(getattr(config, "is_encoder_decoder", False)) and not hasattr(config, "num_mel_bins")
                and getattr(config, "model_type", "") not in ("vision-encoder-decoder", "speech-encoder-decoder"))

    def target_ids(self, tokenizer: Any, text: str, eos: int | None) -> list[int]:
        """Labels as seq2seq training makes them: text_target (BART keeps its leading <s>)."""
        return list(tokenizer(text_target=text, verbose=False)["input_ids"])


FAMILY = TextSeq2Seq()
