"""Audio in: read a PCM WAV file with the standard library's ``wave`` module, as mono float samples.

No new dependency: ``wave`` reads the uncompressed PCM WAV that recorders and ``ffmpeg -i X -ar 16000 X.wav``
write; other containers (FLAC, MP3, float WAV) are refused with the conversion command. Resampling to the
feature extractor's rate uses scipy's polyphase filter (scipy is already a dependency, for attention flow).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

WAV_SUFFIXES = frozenset({".wav", ".wave"})
# Recognised as audio so that they are refused with a conversion hint instead of being read as text.
AUDIO_SUFFIXES = WAV_SUFFIXES | frozenset({".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif"})
CONVERT = "convert it first: ffmpeg -i {name} -ac 1 -ar 16000 {stem}.wav"


@dataclass
class Audio:
    """Mono samples in [-1, 1] at ``rate`` Hz, and what the file was before reading."""

    samples: "np.ndarray"  # (samples,) float32
    rate: int
    file_rate: int
    channels: int
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / self.rate


def _hint(path: Path) -> str:
    """The ffmpeg line that turns a file into a WAV attncli reads."""
    return CONVERT.format(name=path.name, stem=path.stem)


def probe_audio(path: Path | str) -> tuple[int, int, int]:
    """(rate, channels, frames) from a WAV header; anything that is not a readable, non-empty PCM WAV is refused."""
    path = Path(path)
    if path.suffix.lower() not in WAV_SUFFIXES:
        raise UsageError(f"{path}: attncli reads PCM WAV audio, not {path.suffix.lower()[1:].upper()}", _hint(path))
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, frames, width = wav.getframerate(), wav.getnchannels(), wav.getnframes(), wav.getsampwidth()
    except (wave.Error, EOFError) as exc:
        raise UsageError(f"{path} is not a PCM WAV file ({exc or 'truncated header'})", _hint(path)) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    if width not in (1, 2, 3, 4):
        raise UsageError(f"{path}: {8 * width}-bit samples are not PCM WAV", _hint(path))
    if not 1000 <= rate <= 768_000 or channels <= 0:
        raise UsageError(f"{path}: the WAV header says {rate} Hz and {channels} channel(s), not a usable recording",
                         _hint(path))
    if frames == 0:
        raise UsageError(f"{path} holds no audio (0 samples)", "give a recording with sound in it")
    return rate, channels, frames


def _decode(raw: bytes, width: int, channels: int) -> "np.ndarray":
    """Interleaved little-endian PCM bytes → (frames, channels) float32 in [-1, 1]."""
    import numpy as np

    if width == 1:  # 8-bit WAV is unsigned
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit: widen each sample to 32 bits, sign kept by the shift
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (bytes3[:, 0] << 8 | bytes3[:, 1] << 16 | bytes3[:, 2] << 24) >> 8
        values = ints.astype(np.float32) / float(1 << 23)
    else:
        dtype = np.int16 if width == 2 else np.int32
        values = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32) / float(np.iinfo(dtype).max + 1)
    return values.reshape(-1, channels)


def read_audio(path: Path | str, rate: int) -> Audio:
    """The file's samples, averaged to mono and resampled to ``rate`` Hz (with a warning saying so)."""
    import numpy as np

    path = Path(path)
    file_rate, channels, _ = probe_audio(path)
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise UsageError(f"{path}: cannot read its samples ({exc})", _hint(path)) from None
    usable = len(raw) - len(raw) % (width * channels)  # a cut file ends mid-frame
    if usable == 0:
        raise UsageError(f"{path} holds no audio (0 samples)", "give a recording with sound in it")
    samples = _decode(raw[:usable], width, channels).mean(axis=1)  # (frames,)
    warnings = []
    if file_rate != rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(file_rate, rate)
        samples = resample_poly(samples, rate // g, file_rate // g).astype(np.float32)
        warnings.append(f"{path.name} is {file_rate} Hz; resampled to the model's {rate} Hz")
    if channels > 1:
        warnings.append(f"{path.name} has {channels} channels; averaged to mono")
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), rate, file_rate, channels, warnings)
