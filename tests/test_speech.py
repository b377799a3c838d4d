"""attn align AUDIO: a tiny random Whisper over WAV files the tests write (a 0.3 s tone, then silence)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny_speech import RATE, make_whisper, tone, write_wav

SECONDS = 0.6  # 0.3 s of tone, 0.3 s of silence; the model reads 1 s windows, so 0.4 s is padding


@pytest.fixture(scope="session")
def whisper(tmp_path_factory) -> Path:
    """The tiny Whisper folder, built once."""
    return make_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="session")
def loaded(whisper):
    """The tiny Whisper loaded once through the real loader."""
    from attncli.choices import Purpose
    from attncli.models import load_model

    return load_model(str(whisper), Purpose.align)


@pytest.fixture(scope="session")
def wav(tmp_path_factory) -> Path:
    """0.3 s of a 440 Hz tone, then 0.3 s of silence, 16-bit mono at 16 kHz."""
    samples = np.concatenate([tone(0.3), np.zeros(int(0.3 * RATE))])
    return write_wav(tmp_path_factory.mktemp("wav") / "tone.wav", samples)


def _capture(wav, loaded, **kwargs):
    from attncli.families.speech_seq2seq import capture_audio

    return capture_audio(wav, loaded, **kwargs)


def test_capture_shapes_rows_and_time_axis(wav, loaded):
    """50 encoder frames of 20 ms (hop 160 / 16 kHz × conv stride 2); frames past 0.6 s are padding."""
    cap = _capture(wav, loaded, max_new_tokens=5)
    n_target = len(cap.target_tokens)
    assert cap.kind.value == "audio" and cap.frame_seconds == pytest.approx(160 / 16000 * 2)
    assert cap.cross_attentions.shape == (2, 2, n_target, 50) and cap.attentions.shape == (2, 2, 50, 50)
    np.testing.assert_allclose(cap.cross_attentions.sum(-1), 1.0, atol=1e-5)
    assert cap.tokens[15] == "0.30s" and cap.tokens[-1] == "0.98s"
    assert cap.special == [i >= 30 for i in range(50)]
    assert cap.audio_seconds == pytest.approx(SECONDS) and cap.spectrogram.shape == (16, 60)
    # The tone's 30 mel frames are louder than the silence's: the features line up with the time axis.
    assert cap.spectrogram[:, :28].mean() > cap.spectrogram[:, 32:].mean() + 0.1
    # Whisper's own prompt (start token, language, task, no-timestamps) comes first, then 5 generated tokens.
    assert cap.target_tokens[:3] == ["<|en|>", "<|transcribe|>", "<|notimestamps|>"] and n_target == 3 + 5
    assert cap.target_special[:3] == [True] * 3 and cap.timing["prompt_tokens"] == 4


def test_teacher_forcing_equals_generation(wav, loaded):
    """Every decoder step of Whisper's own generate attends exactly like its row of the teacher-forced pass."""
    import torch

    cap = _capture(wav, loaded, max_new_tokens=4)
    extractor = loaded.processor.feature_extractor
    from attncli.audio import read_audio

    feats = extractor(read_audio(wav, RATE).samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        gen = loaded.model.generate(feats, max_new_tokens=4, do_sample=False, num_beams=1, output_attentions=True,
                                    return_dict_in_generate=True)
    rows = np.concatenate([torch.stack([layer[0] for layer in step]).numpy() for step in gen.cross_attentions],
                          axis=2)  # (layers, heads, steps, frames): the prompt's rows first, then one per step
    tokenizer = loaded.processor.tokenizer
    assert [tokenizer.convert_ids_to_tokens(i) for i in gen.sequences[0, 1:4].tolist()] == cap.target_tokens[:3]
    assert rows.shape == cap.cross_attentions.shape
    np.testing.assert_allclose(cap.cross_attentions, rows, atol=1e-4)


def test_token_times_use_transformers_dtw(wav, loaded):
    """Times come from _extract_token_timestamps over the configured heads, else the last half (said as a warning)."""
    import torch
    from transformers.generation.utils import GenerateEncoderDecoderOutput

    cap = _capture(wav, loaded, target="the cat sat")
    assert cap.timing["fallback"] and cap.timing["heads"] == [[1, 0], [1, 1]]
    assert any("the generation config names no alignment_heads" in w for w in cap.warnings)
    times = cap.target_times
    assert len(times) == len(cap.target_tokens) and times[:3] == [0.0, 0.0, 0.0]  # the prompt is at 0
    assert times == sorted(times) and 0.0 <= times[-1] <= SECONDS
    loaded.model.generation_config.alignment_heads = [[0, 1]]
    try:
        chosen = _capture(wav, loaded, target="the cat sat")
    finally:
        del loaded.model.generation_config.alignment_heads
    assert chosen.timing["heads"] == [[0, 1]] and not chosen.timing["fallback"]
    assert not any("alignment_heads" in w for w in chosen.warnings)
    ids = [loaded.model.generation_config.decoder_start_token_id]
    ids += loaded.processor.tokenizer.convert_tokens_to_ids(["<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    ids += loaded.processor.tokenizer(" the cat sat", add_special_tokens=False)["input_ids"] + [0]
    layers = tuple(torch.from_numpy(chosen.cross_attentions[i])[None] for i in range(2))
    direct = loaded.model._extract_token_timestamps(
        GenerateEncoderDecoderOutput(sequences=torch.tensor([ids]), cross_attentions=(layers,)), [[0, 1]],
        time_precision=0.02, num_frames=60, num_input_ids=4)
    np.testing.assert_allclose(chosen.target_times, direct[0, 1:].numpy(), atol=1e-6)
    words = chosen.timing["words"]
    assert [w["word"] for w in words] == ["the", "cat", "sat"]
    assert all(w["start"] <= w["end"] for w in words) and words[0]["start"] == 0.0


def test_given_target_is_scored(wav, loaded):
    """A given transcript: the prompt, its tokens (with Whisper's leading space) and the end token."""
    cap = _capture(wav, loaded, target="the cat sat on the mat")
    assert cap.target_text == "the cat sat on the mat" and cap.decoding["mode"] == "given"
    assert cap.target_tokens[-1] == "<|endoftext|>" and cap.target_special[-1]
    assert "".join(t for t, s in zip(cap.target_tokens, cap.target_special) if not s) == "thecatsatonthemat"


def test_resampled_stereo_and_long_audio(tmp_path, loaded):
    """8 kHz stereo is averaged and resampled (with warnings); audio past the model's window is cut and said."""
    from attncli.audio import read_audio

    path = write_wav(tmp_path / "stereo8k.wav", tone(0.5, rate=8000), rate=8000, channels=2, width=4)
    audio = read_audio(path, RATE)
    assert audio.rate == RATE and len(audio.samples) == RATE // 2 and audio.channels == 2
    assert audio.warnings == ["stereo8k.wav is 8000 Hz; resampled to the model's 16000 Hz",
                              "stereo8k.wav has 2 channels; averaged to mono"]
    assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=0.02)
    for width in (1, 3):  # unsigned 8-bit and packed 24-bit samples decode to the same tone
        read = read_audio(write_wav(tmp_path / f"w{width}.wav", tone(0.1), width=width), RATE)
        np.testing.assert_allclose(read.samples, tone(0.1), atol=0.01 if width == 1 else 1e-6)
    long = _capture(write_wav(tmp_path / "long.wav", tone(1.5)), loaded, max_new_tokens=2)
    assert any("only the first 1.0 s were read" in w for w in long.warnings)
    assert long.audio_seconds == pytest.approx(1.0) and not any(long.special)


def test_view_skip_special_and_json(wav, loaded):
    """Rows plus padding sum to 1; --skip-special drops the prompt and padding and renormalises."""
    from attncli.views.speech import speech_view

    cap = _capture(wav, loaded, target="the cat")
    view = speech_view(cap)
    assert view.matrix.shape == (len(cap.target_tokens), 30)
    np.testing.assert_allclose(view.matrix.sum(-1) + np.array(view.padding), 1.0, atol=1e-5)
    hidden = speech_view(cap, layer=0, head=1, skip_special=True)
    assert hidden.target_labels == ["the", "cat"] and hidden.layer == 0 and hidden.head == 1
    np.testing.assert_allclose(hidden.matrix.sum(-1), 1.0, atol=1e-5)
    doc = json.loads(json.dumps(view.to_dict()))
    assert doc["schema"] == "attncli.align-audio/1" and doc["frame_seconds"] == pytest.approx(0.02)
    assert doc["frames"] == 30 and doc["audio"]["seconds"] == pytest.approx(SECONDS)
    first = doc["tokens"][3]
    assert set(first) == {"index", "token", "time", "peak", "padding", "weights"} and len(first["weights"]) == 30
    assert first["peak"]["time"] == pytest.approx(first["peak"]["frame"] * 0.02)
    assert [w["word"] for w in doc["words"]] == ["the", "cat"]


def test_cli_table_json_figure_and_rerender(cli, whisper, wav, tmp_path):
    """attn align AUDIO: a table, JSON and a PNG; the last capture re-renders through attn heatmap."""
    code, out, err = cli("align", str(wav), "--model", str(whisper), "--max-new-tokens", "3")
    assert code == 0, err
    assert "tone.wav: 0.60 s as 30 encoder frames of 20 ms" in out and "0 s … 0.60 s" in out
    assert "warning: token times use all 2 heads of decoder layer 1" in err
    png = tmp_path / "speech.png"
    code, out, err = cli("align", str(wav), "--model", str(whisper), "--target", "the cat", "--json", "-o", str(png))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["target"]["text"] == "the cat" and png.read_bytes()[:4] == b"\x89PNG"
    code, again, err = cli("heatmap", "--json")
    assert code == 0, err
    assert json.loads(again)["tokens"] == doc["tokens"]
    code, _, err = cli("heatmap", "-o", str(tmp_path / "page.html"))
    assert code == 2 and "interactive page does not draw audio" in err
