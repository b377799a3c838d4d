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
    from attncli.families.speech_capture import capture_audio

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


def test_token_times_keep_the_row_that_predicts_the_first_word(wav, loaded):
    """DTW runs on the rows that predict each word and the end token: the last prompt row is one of them."""
    from attncli.families import speech_timing as st

    cap = _capture(wav, loaded, target="the cat sat")
    assert cap.timing["fallback"] and cap.timing["heads"] == [[1, 0], [1, 1]]
    assert any("the generation config names no alignment_heads" in w for w in cap.warnings)
    times = cap.target_times
    assert len(times) == len(cap.target_tokens) and times[:3] == [None, None, None]  # the prompt has no time
    assert times[-1] is None and all(t is not None for t in times[3:-1])  # nor the end token
    ids = [loaded.model.generation_config.decoder_start_token_id]
    ids += loaded.processor.tokenizer.convert_tokens_to_ids(["<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    ids += loaded.processor.tokenizer(" the cat sat", add_special_tokens=False)["input_ids"] + [0]
    special = set(loaded.processor.tokenizer.all_special_ids)
    text, rows = st.dtw_rows(ids, 4, special, 0)
    assert text == list(range(4, len(ids) - 1)) and rows == [k - 1 for k in text] + [len(ids) - 2]
    assert rows[0] == 3  # the <|notimestamps|> row predicts the first word
    starts = st.dtw_times(cap.cross_attentions, [[1, 0], [1, 1]], rows, 30, 0.02)
    np.testing.assert_allclose([t for t in times if t is not None], starts[:-1], atol=1e-6)
    loaded.model.generation_config.alignment_heads = [[0, 1]]
    try:
        chosen = _capture(wav, loaded, target="the cat sat")
    finally:
        del loaded.model.generation_config.alignment_heads
    assert chosen.timing["heads"] == [[0, 1]] and not chosen.timing["fallback"]
    assert not any("alignment_heads" in w for w in chosen.warnings)
    words = chosen.timing["words"]
    assert [w["word"] for w in words] == ["the", "cat", "sat"]
    assert all(0 <= w["start"] <= w["end"] <= SECONDS for w in words)


def test_dtw_on_a_diagonal_and_the_first_word():
    """Rows that peak at frames 5, 15, 25 and an end row at 35: the words start there; the first is not empty."""
    from attncli.families import speech_timing as st

    cross = np.full((1, 1, 4, 50), 1e-3, dtype=np.float32)
    for row, frame in enumerate((5, 15, 25, 35)):
        cross[0, 0, row, frame:frame + 10] = 1.0
    starts = st.dtw_times(cross, [[0, 0]], [0, 1, 2, 3], 50, 0.02, median_width=1)
    np.testing.assert_allclose(starts, [0.0, 0.3, 0.5, 0.7])  # DTW starts at frame 0, then jumps at each peak


def test_word_ends_snap_to_the_sound():
    """A word's end moves back from the next word's start to where its sound stops; silence keeps DTW's span."""
    from attncli.families import speech_timing as st

    rate = 16000
    x = np.zeros(rate, dtype=np.float32)
    x[int(0.1 * rate):int(0.3 * rate)] = 0.5 * np.sin(np.arange(int(0.2 * rate)) * 0.3)  # sound 0.1-0.3 s
    x[int(0.6 * rate):int(0.8 * rate)] = 0.5 * np.sin(np.arange(int(0.2 * rate)) * 0.3)  # sound 0.6-0.8 s
    level = st.loudness(x, rate)
    assert level.cut is not None and level.peak > -10 and level.floor < -100
    words = [{"word": "a", "start": 0.08, "end": 0.58}, {"word": "b", "start": 0.58, "end": 0.9},
             {"word": "c", "start": 0.9, "end": 1.0}]
    assert st.snap_to_sound(words, level, 1.0) == 2
    assert words[0]["start"] == pytest.approx(0.09, abs=0.011) and words[0]["end"] == pytest.approx(0.3, abs=0.011)
    assert words[1]["start"] == pytest.approx(0.59, abs=0.011) and words[1]["end"] == pytest.approx(0.8, abs=0.011)
    assert (words[2]["start"], words[2]["end"]) == (0.9, 1.0)  # nothing loud inside: DTW's span stands
    flat = st.loudness(np.full(rate, 0.1, dtype=np.float32), rate)
    assert flat.cut is None and st.snap_to_sound([{"start": 0.0, "end": 1.0}], flat, 1.0) == 0


def test_late_dtw_spans_take_their_own_sound():
    """A late start takes its stretch's onset; a short word whose late span overlaps the next word's sound more
    than its own takes its own (the benchmark's worst word: 'the' before 'nearest', +476 ms)."""
    from attncli.families import speech_timing as st

    rate = 16000
    x = np.zeros(2 * rate, dtype=np.float32)
    for a, b in ((0.2, 0.35), (0.6, 1.2), (1.5, 1.8)):  # a short word, a long one, a third
        x[int(a * rate):int(b * rate)] = 0.5 * np.sin(np.arange(int(round((b - a) * rate))) * 0.3)
    level = st.loudness(x, rate)
    # DTW: the short word late (0.05 s of its own sound, 0.1 s of the next's), the third one starting late
    words = [{"start": 0.3, "end": 0.7}, {"start": 0.7, "end": 1.65}, {"start": 1.65, "end": 2.0}]
    assert st.snap_to_sound(words, level, 2.0) == 3
    got = [(w["start"], w["end"]) for w in words]
    for (s, e), (a, b) in zip(got, [(0.2, 0.35), (0.6, 1.2), (1.5, 1.8)]):
        assert s == pytest.approx(a, abs=0.011) and e == pytest.approx(b, abs=0.011)


def test_special_ids_cover_timestamps_an_incomplete_tokenizer_misses(loaded):
    """Ids from <|notimestamps|> to the end of the vocabulary are Whisper's, whatever the tokenizer lists."""
    from attncli.families.speech_seq2seq import special_ids

    tokenizer = loaded.processor.tokenizer
    special = special_ids(loaded, tokenizer)
    no_ts = loaded.model.generation_config.no_timestamps_token_id
    assert set(tokenizer.all_special_ids) <= special and no_ts in special
    assert set(range(no_ts, loaded.config.vocab_size)) <= special


def test_shared_boundaries_move_to_the_quiet_between_words():
    """Two words DTW joins at 0.55 s whose sounds meet at 0.45 s: the boundary moves back to the dip."""
    from attncli.families import speech_timing as st

    rate = 16000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    x[:int(0.2 * rate)] = 0.0  # silence, then the two words
    x[int(0.44 * rate):int(0.46 * rate)] *= 0.01  # a 20 ms dip between the words
    level = st.loudness(x, rate)
    words = [{"start": 0.2, "end": 0.55}, {"start": 0.55, "end": 1.0}]
    assert st.split_at_dips(words, level) == 1
    assert words[0]["end"] == words[1]["start"] == pytest.approx(0.45, abs=0.011)
    apart = [{"start": 0.2, "end": 0.3}, {"start": 0.6, "end": 1.0}]
    assert st.split_at_dips(apart, level) == 0  # a pause already separates them


def test_silence_is_said_not_transcribed(tmp_path, loaded):
    """A silent recording: a warning says so and no words are made of what the model wrote."""
    cap = _capture(write_wav(tmp_path / "quiet.wav", np.zeros(RATE // 2)), loaded, max_new_tokens=3)
    assert cap.timing["words"] == [] and "silent" in cap.timing["no_speech"]
    assert any("the recording is silent" in w and "not as words" in w for w in cap.warnings)


def test_given_target_is_scored(wav, loaded):
    """A given transcript: the prompt, its tokens (with Whisper's leading space) and the end token."""
    cap = _capture(wav, loaded, target="the cat sat on the mat")
    assert cap.target_text == "the cat sat on the mat" and cap.decoding["mode"] == "given"
    assert cap.target_tokens[-1] == "<|endoftext|>" and cap.target_special[-1]
    assert "".join(t for t, s in zip(cap.target_tokens, cap.target_special) if not s) == "thecatsatonthemat"


def test_resampled_stereo(tmp_path, loaded):
    """8 kHz stereo is averaged and resampled (with warnings)."""
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


@pytest.mark.parametrize("fmt,subtype,channels", [("WAV", "PCM_24", 3), ("WAV", "FLOAT", 1), ("WAVEX", "PCM_24", 2),
                                                  ("FLAC", "PCM_16", 1), ("OGG", "VORBIS", 2), ("MP3", "MPEG_LAYER_III", 1)])
def test_common_formats_read_the_same_tone(tmp_path, fmt, subtype, channels):
    """Extensible and float WAV headers, 24-bit, many channels, FLAC, OGG and MP3 all read as the same tone."""
    import soundfile

    from attncli.audio import read_audio

    suffix = {"WAVEX": "wav", "OGG": "ogg", "MP3": "mp3", "FLAC": "flac", "WAV": "wav"}[fmt]
    path = tmp_path / f"tone.{suffix}"
    soundfile.write(str(path), np.repeat(tone(0.5)[:, None], channels, axis=1), RATE, format=fmt, subtype=subtype)
    audio = read_audio(path, RATE)
    lossy = fmt in ("OGG", "MP3")
    assert abs(len(audio.samples) - RATE // 2) <= (2000 if lossy else 0)
    n = min(len(audio.samples), RATE // 2)
    if lossy:  # a perceptual codec keeps the tone's level, not each sample
        assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=0.05)
    else:
        np.testing.assert_allclose(audio.samples[:n], tone(0.5)[:n], atol=1e-4)
    assert (f"has {channels} channels; averaged to mono" in " ".join(audio.warnings)) == (channels > 1)


def test_unreadable_audio_is_one_line_with_a_command_that_keeps_the_input(tmp_path):
    """An M4A, or a file libsndfile cannot open: one line, and an ffmpeg command writing a new file."""
    from attncli.audio import probe_audio
    from attncli.errors import UsageError

    for name, data in (("talk.m4a", b"\0\0\0 ftypM4A "), ("talk.flac", b"fLaC" + bytes(40))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(UsageError) as err:
            probe_audio(path)
        assert "\n" not in str(err.value) and f"ffmpeg -i {name} -ac 1 -ar 16000 talk.16k.wav" in err.value.hint


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


def test_audio_page_offline_in_chromium(cli, whisper, wav, tmp_path):
    """-o page.html: the recording, spectrogram and words embedded; hover draws a word's frames, click plays it."""
    import base64

    from test_html_browser import ARGS, chromium_path

    page_path = tmp_path / "speech.html"
    code, _, err = cli("align", str(wav), "--model", str(whisper), "--target", "the cat", "-o", str(page_path))
    assert code == 0, err
    text = page_path.read_text()
    assert "data:audio/wav;base64," in text and "data:image/png;base64," in text and "http" not in text.split(
        "<script id=\"data\"")[0].replace("http-equiv", "")
    wav_b64 = text.split("data:audio/wav;base64,")[1].split('"')[0]
    assert len(base64.b64decode(wav_b64)) == 44 + 2 * int(SECONDS * RATE)  # 16-bit mono, every sample
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium executable found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            context = browser.new_context(offline=True)
            requests, errors = [], []
            context.route("**/*", lambda r: (requests.append(r.request.url), r.continue_()
                                             if r.request.url.startswith(("file:", "data:")) else r.abort()))
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            words = page.eval_on_selector_all(".w", "es => es.map(e => e.textContent)")
            assert words == ["the", "cat"]
            page.hover(".w >> nth=0")
            drawn = page.evaluate("() => { const c = document.getElementById('att'); const d = c.getContext('2d')"
                                  ".getImageData(0, 0, c.width, c.height).data; let n = 0; "
                                  "for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }")
            assert drawn > 0
            page.click(".w >> nth=1")
            start = page.evaluate("() => JSON.parse(document.getElementById('data').textContent).words[1].start")
            now = page.evaluate("() => document.getElementById('audio').currentTime")
            assert start - 0.03 <= now < start + 1.0  # set to the word's start, and playing on from there
            assert not errors and all(u.startswith(("file:", "data:")) for u in requests)
        finally:
            browser.close()


def _write_ct2(path: Path, model) -> None:
    """A tiny Whisper as CTranslate2 writes one (binary version 6, fused q/k/v, zero key bias, float16)."""
    import struct

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    arrays: dict[str, np.ndarray] = {}

    def attn(out: str, src: str, cross: bool) -> None:
        q, k, v, o = (f"{src}.{n}_proj" for n in ("q", "k", "v", "out"))
        zero = np.zeros_like(sd[q + ".bias"])
        if cross:
            arrays[out + "/linear_0/weight"], arrays[out + "/linear_0/bias"] = sd[q + ".weight"], sd[q + ".bias"]
            arrays[out + "/linear_1/weight"] = np.concatenate([sd[k + ".weight"], sd[v + ".weight"]])
            arrays[out + "/linear_1/bias"] = np.concatenate([zero, sd[v + ".bias"]])
            last = "linear_2"
        else:
            arrays[out + "/linear_0/weight"] = np.concatenate([sd[q + ".weight"], sd[k + ".weight"], sd[v + ".weight"]])
            arrays[out + "/linear_0/bias"] = np.concatenate([sd[q + ".bias"], zero, sd[v + ".bias"]])
            last = "linear_1"
        arrays[f"{out}/{last}/weight"], arrays[f"{out}/{last}/bias"] = sd[o + ".weight"], sd[o + ".bias"]

    def norm(out: str, src: str) -> None:
        arrays[out + "/gamma"], arrays[out + "/beta"] = sd[src + ".weight"], sd[src + ".bias"]

    for side in ("encoder", "decoder"):
        for i in range(2):
            src, out = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            norm(out + "/self_attention/layer_norm", src + ".self_attn_layer_norm")
            attn(out + "/self_attention", src + ".self_attn", False)
            if side == "decoder":
                norm(out + "/attention/layer_norm", src + ".encoder_attn_layer_norm")
                attn(out + "/attention", src + ".encoder_attn", True)
            norm(out + "/ffn/layer_norm", src + ".final_layer_norm")
            for j, fc in enumerate(("fc1", "fc2")):
                arrays[f"{out}/ffn/linear_{j}/weight"], arrays[f"{out}/ffn/linear_{j}/bias"] = \
                    sd[f"{src}.{fc}.weight"], sd[f"{src}.{fc}.bias"]
        norm(side + "/layer_norm", f"model.{side}.layer_norm")
        arrays[side + "/position_encodings/encodings"] = sd[f"model.{side}.embed_positions.weight"]
        arrays[side + "/num_heads"] = np.array(2, dtype="<i2")
    for conv in ("conv1", "conv2"):
        arrays[f"encoder/{conv}/weight"], arrays[f"encoder/{conv}/bias"] = \
            sd[f"model.encoder.{conv}.weight"], sd[f"model.encoder.{conv}.bias"]
    arrays["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]

    def text(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    blob = struct.pack("<I", 6) + text("WhisperSpec") + struct.pack("<II", 3, len(arrays))
    for name, value in arrays.items():
        value = value.astype("<f2") if value.dtype.kind == "f" else value
        blob += text(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        blob += struct.pack("<BI", 4 if value.dtype.kind == "f" else 2, value.nbytes) + value.tobytes()
    path.write_bytes(blob + struct.pack("<I", 1) + text("decoder/projection/weight") + text("decoder/embeddings/weight"))


def test_ctranslate2_whisper_reads_back_into_transformers(loaded, tmp_path):
    """A tiny Whisper written in CTranslate2's layout (float16) reads back to the same model, to float16 rounding."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from attncli.ct2read import read_ct2, whisper_state

    _write_ct2(tmp_path / "model.bin", loaded.model)
    spec, arrays = read_ct2((tmp_path / "model.bin").read_bytes())
    state, config = whisper_state(arrays)
    assert spec == "WhisperSpec" and config["encoder_layers"] == 2 and config["decoder_attention_heads"] == 2
    shape = {k: v for k, v in config.items() if not k.endswith("token_id")}  # the ids are tiny.en's
    back = WhisperForConditionalGeneration(WhisperConfig(**{**loaded.config.to_dict(), **shape}))
    missing, unexpected = back.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert not unexpected and set(missing) <= {"proj_out.weight"}  # tied to the embeddings
    back.tie_weights()
    feats = torch.randn(1, 16, 100)
    ids = torch.tensor([[loaded.model.generation_config.decoder_start_token_id, 5, 6]])
    with torch.no_grad():
        want = loaded.model(input_features=feats, decoder_input_ids=ids).logits
        got = back.eval()(input_features=feats, decoder_input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.01)  # float16 weights
