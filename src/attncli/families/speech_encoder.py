"""Speech encoders without a decoder (wav2vec2, HuBERT, WavLM): refused by name, with the command that reads audio.

Their self-attention runs over frames of a convolutional feature encoder; attncli reads audio only through a
speech encoder-decoder (``attn align AUDIO.wav``), whose frames it can place in time. Naming the family keeps
such a model from being taken for a text encoder (it would then fail on its ``input_values``).
"""

from __future__ import annotations

from typing import Any

from attncli.families.base import Family, Modality

# Model types of audio encoders whose first stage is a convolutional feature encoder over raw samples.
SPEECH_ENCODERS = {"wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "data2vec-audio",
                   "unispeech", "unispeech-sat", "sew", "sew-d", "audio-spectrogram-transformer"}


class SpeechEncoder(Family):
    """Audio in, frame vectors out: no text side and no cross-attention."""

    name = "speech encoder"
    examples = "wav2vec2, HuBERT, WavLM"
    modality = Modality.speech
    purposes = frozenset()
    unsupported = "it is a speech encoder (audio in, no decoder), and attncli reads audio only through a " \
                  "speech encoder-decoder"
    instead = "for audio use attn align AUDIO.wav --model openai/whisper-tiny"

    def matches(self, config: Any) -> bool:
        """Known audio-encoder model types, or a config with a convolutional feature encoder over samples."""
        if getattr(config, "is_encoder_decoder", False):
            return False
        return getattr(config, "model_type", "") in SPEECH_ENCODERS or (
            hasattr(config, "conv_dim") and hasattr(config, "feat_extract_norm"))


FAMILY = SpeechEncoder()
