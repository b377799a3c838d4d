"""A tiny random Whisper built from a config (with its feature extractor and tokenizer), and WAV files to feed it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 16000
SPEECH = ["the cat sat on the mat", "hello world", "a tone and then silence", "one two three four"]
SPECIALS = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>"]


def make_whisper(folder: Path, alignment_heads: list[list[int]] | None = None) -> Path:
    """A 2-layer, 2-head Whisper (d_model 16) reading 1-second windows of 16 mel bins: 50 encoder frames of 20 ms.

    The prompt is Whisper's own: <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" " + s for s in SPEECH] * 4, vocab_size=300, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(folder))
    tok = WhisperTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=32)
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    ids = dict(zip(SPECIALS, tok.convert_tokens_to_ids(SPECIALS)))
    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=RATE, hop_length=160, chunk_length=1, n_fft=400)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(vocab_size=len(tok), num_mel_bins=16, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, d_model=16, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, max_source_positions=50, max_target_positions=32,
                           decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eos, pad_token_id=eos,
                           bos_token_id=eos, suppress_tokens=[], begin_suppress_tokens=[], init_std=0.5)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.forced_decoder_ids = None
    gen._from_model_config = False  # else loading rebuilds it from config.json and drops the Whisper keys below
    gen.is_multilingual = True
    gen.lang_to_id = {"<|en|>": ids["<|en|>"]}
    gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gen.language, gen.task = "en", "transcribe"
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    gen.suppress_tokens = list(ids.values())  # the random model writes words, not prompt tokens
    gen.begin_suppress_tokens = [eos]
    if alignment_heads is not None:
        gen.alignment_heads = alignment_heads
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tok).save_pretrained(folder)
    return folder


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    """A sine tone at half volume."""
    t = np.arange(int(round(seconds * rate))) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, width: int = 2, channels: int = 1) -> Path:
    """Samples in [-1, 1] as a PCM WAV (8, 16, 24 or 32 bits), the same signal on every channel."""
    data = np.repeat(np.asarray(samples, dtype=np.float64)[:, None], channels, axis=1)
    if width == 1:
        raw = np.clip(data * 128 + 128, 0, 255).astype(np.uint8).tobytes()
    else:
        top = float(1 << (8 * width - 1)) - 1
        ints = np.round(data * top).astype("<i4" if width == 3 else f"<i{width}")
        # 24-bit: the low three bytes of each little-endian 32-bit sample
        raw = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes() if width == 3 else ints.tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)
    return path
