"""Audio in: WAV (PCM or float, plain or extensible headers, any channel count), FLAC, OGG/Opus and MP3 through
soundfile (libsndfile, bundled in its wheels), averaged to mono and resampled to the feature extractor's rate with
scipy's polyphase filter. Anything else is refused with an ffmpeg command that writes a new file beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

READABLE = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"})
# Recognised as audio so that they are refused with a conversion hint instead of being read as text.
AUDIO_SUFFIXES = READABLE | frozenset({".m4a", ".aac", ".wma", ".webm", ".mp4"})
CONVERT = "convert it first: ffmpeg -i {name} -ac 1 -ar 16000 {stem}.16k.wav"


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
    """The ffmpeg line that turns a file into a 16 kHz mono WAV beside it (never over it)."""
    return CONVERT.format(name=path.name, stem=path.stem)


def _open_error(path: Path, exc: Exception) -> UsageError:
    """A one-line refusal for a file libsndfile cannot read."""
    reason = str(exc).split("\n")[0].replace(f"Error opening {str(path)!r}: ", "").strip() or exc.__class__.__name__
    return UsageError(f"{path}: not audio attncli can read ({reason})", _hint(path))


def probe_audio(path: Path | str) -> tuple[int, int, int]:
    """(rate, channels, frames) from the file's header; unreadable, empty or unknown formats are refused."""
    import soundfile

    path = Path(path)
    if path.suffix.lower() not in READABLE:
        raise UsageError(f"{path}: attncli reads WAV, FLAC, OGG and MP3 audio, not {path.suffix.lower()[1:].upper()}",
                         _hint(path))
    if not path.is_file():
        raise UsageError(f"{path}: no such file", "check the path")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise _open_error(path, exc) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if not 1000 <= rate <= 768_000 or channels <= 0:
        raise UsageError(f"{path}: the header says {rate} Hz and {channels} channel(s), not a usable recording",
                         _hint(path))
    if frames == 0:
        raise UsageError(f"{path} holds no audio (0 samples)", "give a recording with sound in it")
    return rate, channels, frames


def read_audio(path: Path | str, rate: int) -> Audio:
    """The file's samples, averaged to mono and resampled to ``rate`` Hz (with a warning saying so)."""
    import numpy as np
    import soundfile

    path = Path(path)
    file_rate, channels, _ = probe_audio(path)
    try:
        data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise _open_error(path, exc) from None
    if data.shape[0] == 0:
        raise UsageError(f"{path} holds no audio (0 samples)", "give a recording with sound in it")
    samples = data.mean(axis=1)  # (frames,)
    warnings = []
    if file_rate != rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(file_rate, rate)
        samples = resample_poly(samples, rate // g, file_rate // g).astype(np.float32)
        warnings.append(f"{path.name} is {file_rate} Hz; resampled to the model's {rate} Hz")
    if channels > 1:
        warnings.append(f"{path.name} has {channels} channels; averaged to mono")
    if not np.all(np.isfinite(samples)):
        raise UsageError(f"{path}: the samples hold NaN or infinite values", "re-export the recording")
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), rate, file_rate, channels, warnings)
