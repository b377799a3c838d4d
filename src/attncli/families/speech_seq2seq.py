"""Speech encoder-decoders (Whisper, Speech2Text, …): recognised by name so no command calls them something else.

No command captures audio yet; every command that is given such a model says what it is and which models it
takes instead.
"""

from __future__ import annotations

from typing import Any

from attncli.families.base import Family, Modality


class SpeechSeq2Seq(Family):
    """Audio in, text out."""

    name = "speech encoder-decoder"
    examples = "Whisper, Speech2Text"
    modality = Modality.speech
    cross = True
    purposes = frozenset()  # no command reads audio yet
    default_class = "AutoModelForSpeechSeq2Seq"
    processor_class = "AutoProcessor"

    def matches(self, config: Any) -> bool:
        """Configs with mel-spectrogram inputs, or transformers' speech encoder-decoder."""
        return hasattr(config, "num_mel_bins") or getattr(config, "model_type", "") == "speech-encoder-decoder"


FAMILY = SpeechSeq2Seq()
