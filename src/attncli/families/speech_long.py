"""Recordings longer than one model window: Whisper's own long-form decoding, then each window aligned.

transformers' Whisper ``generate`` on the whole file (``return_timestamps=True, return_segments=True``) moves
its 30-second window along by the timestamps it predicts and returns segments with absolute start and end times.
Consecutive segments are grouped into windows of at most one model window that start where their first segment
starts; each window is then encoded once, teacher-forced with its segments' words (Whisper's prompt, the words,
the end token) and timed like a short recording (speech_seq2seq.run_window), its times shifted by the window's
start. The capture lays every window's cross-attention on one time axis for the whole file (zero outside the
window a token's decoder saw); the encoder's self-attention is not kept (one window's would be 4 × 6 × 1500²
floats, the whole file's does not exist).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.capture import ALL, Capture, Selection
from attncli.choices import Kind
from attncli.errors import NotSupportedError
from attncli.families.encdec import arch, target_side

if TYPE_CHECKING:
    from attncli.audio import Audio
    from attncli.families.speech_seq2seq import SpeechSeq2Seq
    from attncli.families.loaded import LoadedModel


ENCODER_NOT_KEPT = ("not kept: the recording is longer than one window (each window's encoder self-attention is "
                    "layers x heads x 1500 x 1500 floats, 216 MB for tiny.en); the cross-attention covers the whole file")
TAIL = 0.5  # seconds kept after a window's last segment ends (Whisper's timestamps can be early)


def long_segments(loaded: "LoadedModel", family: "SpeechSeq2Seq", audio: "Audio",
                  num_beams: int) -> list[dict[str, Any]]:
    """Whisper's long-form segments: [{"start", "end", "tokens" (text ids only)}], times in seconds."""
    import warnings

    import torch

    from attncli.families.speech_seq2seq import special_ids

    if not str(getattr(loaded.config, "model_type", "")).startswith("whisper"):
        raise NotSupportedError(f"{loaded.ref.model_id} reads {audio.seconds:.0f} s only in one window, and "
                                "long-form decoding is Whisper's", "cut the recording into pieces the model reads")
    tokenizer, extractor = family.split_processor(loaded)
    features = extractor(audio.samples, sampling_rate=audio.rate, truncation=False, padding="longest",
                         return_attention_mask=True, return_tensors="pt")
    name = loaded.model.main_input_name
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = loaded.model.generate(features[name].to(loaded.device),
                                    attention_mask=features["attention_mask"].to(loaded.device),
                                    return_timestamps=True, return_segments=True, condition_on_prev_tokens=False,
                                    num_beams=num_beams, do_sample=False)
    special = special_ids(loaded, tokenizer)
    segments = []
    for seg in out["segments"][0]:
        tokens = [int(t) for t in seg["tokens"].tolist() if int(t) not in special]
        segments.append({"start": float(seg["start"]), "end": float(seg["end"]), "tokens": tokens})
    return segments


def group_windows(segments: list[dict[str, Any]], window: float, frame: float) -> list[dict[str, Any]]:
    """Consecutive segments in windows of at most `window` seconds, each starting on the frame grid."""
    groups: list[dict[str, Any]] = []
    for seg in segments:
        if not seg["tokens"]:
            continue
        if groups and seg["end"] - groups[-1]["start"] <= window - 0.5:
            groups[-1]["tokens"] += seg["tokens"]
            groups[-1]["end"] = seg["end"]
        else:
            start = max(0.0, math.floor(seg["start"] / frame) * frame)
            groups.append({"start": round(start, 6), "end": seg["end"], "tokens": list(seg["tokens"])})
    return groups


def capture_long(path: Path | str, loaded: "LoadedModel", family: "SpeechSeq2Seq", audio: "Audio", *,
                 target: str | None, max_new_tokens: int | None, num_beams: int, selection: Selection = ALL,
                 progress: Any = None) -> Capture:
    """The whole recording, window by window, on one time axis (see the module docstring)."""
    import numpy as np

    from attncli.errors import UsageError
    from attncli.families.speech_seq2seq import _text, encoder_stride, run_window

    if target is not None:
        raise UsageError(f"--target on a {audio.seconds:.0f} s recording: a given text is aligned within one "
                         "model window only", "leave --target out (the words are transcribed window by window), "
                         "or give a recording of at most 30 s")
    tokenizer, extractor = family.split_processor(loaded)
    rate, hop = int(extractor.sampling_rate), int(extractor.hop_length)
    n_window = int(extractor.n_samples)
    frame = hop / rate * encoder_stride(loaded.model)
    if progress:
        progress(f"transcribing {audio.seconds:.0f} s (Whisper's long-form decoding)", None, None)
    groups = group_windows(long_segments(loaded, family, audio, num_beams), n_window / rate, frame)
    warnings = list(audio.warnings)
    windows, scored = [], []
    for n, group in enumerate(groups):
        if progress:
            progress(f"aligning window {n + 1} of {len(groups)} ({group['start']:.1f}-{group['end']:.1f} s)",
                     n, len(groups))
        first = int(round(group["start"] * rate))
        # The window ends where its last segment ends (and a little after): DTW spreads the words over every frame.
        last = min(first + n_window, int(math.ceil((group["end"] + TAIL) * rate)))
        w = run_window(loaded, family, audio.samples[first:last], group["start"], text_ids=group["tokens"],
                       encoder_attention=False)
        scored.append(target_side(tokenizer, w.ids, w.decoded.logits))  # labels and scores now: logits are dropped
        w.decoded.logits = w.decoded.logits[:0]  # (0, vocab): one window's is tokens x 51864 floats
        windows.append(w)
    if not windows:
        raise UsageError(f"{Path(path).name}: Whisper's long-form decoding found no words in {audio.seconds:.0f} s",
                         "check that the recording holds speech")
    # One time axis: encoder position p covers [p * frame, (p + 1) * frame) of the file.
    first_pos = [int(round(w.offset / frame)) for w in windows]
    width = int(windows[0].decoded.cross.shape[-1])
    positions = max(p + width for p in first_pos)
    n_layers, n_heads = windows[0].decoded.cross.shape[:2]
    rows = sum(int(w.decoded.cross.shape[2]) for w in windows)
    cross = np.zeros((n_layers, n_heads, rows, positions), dtype=np.float32)  # (layers, heads, target, positions)
    decoder = np.zeros((n_layers, n_heads, rows, rows), dtype=np.float32)  # block-diagonal: one block per window
    labels, special, scores, times, words = [], [], [], [], []
    row = 0
    for w, pos, (lab, _, sc, _) in zip(windows, first_pos, scored):
        t = int(w.decoded.cross.shape[2])
        cross[:, :, row:row + t, pos:pos + width] = w.decoded.cross
        decoder[:, :, row:row + t, row:row + t] = w.decoded.decoder
        labels += lab
        scores += sc
        special += w.special
        times += w.times
        words += w.timing.get("words", [])
        row += t
    seconds = len(audio.samples) / rate
    mel = extractor(audio.samples, sampling_rate=rate, truncation=False, padding="longest",
                    return_tensors="np")[loaded.model.main_input_name][0]  # (bins, input frames)
    timing = {k: v for k, v in windows[0].timing.items() if k not in ("words", "snapped_words", "split_boundaries")}
    timing.update(words=words, windows=[{"start": w.offset, "seconds": round(w.seconds, 3),
                                         "tokens": len(w.ids) - 1} for w in windows],
                  long_form="transformers' Whisper long-form generate (timestamps, segments, no conditioning on "
                            "the previous window); each window then aligned on its own",
                  encoder_attention=ENCODER_NOT_KEPT)
    warnings.append(f"{seconds:.1f} s read in {len(windows)} windows of at most {n_window / rate:.0f} s; the "
                    "encoder's self-attention is not kept for recordings longer than one window")
    encoder = np.zeros((0, n_heads, 0, 0), dtype=np.float32)
    text = " ".join(_text(tokenizer, w.ids, w.special) for w in windows).strip()
    total_layers = int(getattr(loaded.config, "encoder_layers", 0) or 0)
    return Capture(
        attentions=encoder, tokens=[f"{i * frame:.2f}s" for i in range(positions)],
        special=[i * frame >= seconds for i in range(positions)], model_id=loaded.ref.model_id,
        model_path=loaded.ref.location, kind=Kind.audio, arch=arch(loaded.config, windows[0].decoded),
        source=str(Path(path).resolve()), warnings=warnings, cross_attentions=cross, decoder_attentions=decoder,
        target_tokens=labels, target_special=special, target_scores=scores, target_text=text,
        decoding={"mode": "generated", "strategy": "greedy" if num_beams == 1 else "beam search (best beam)",
                  "num_beams": num_beams, "max_new_tokens": None, "scored": "teacher-forced", "finished": True,
                  "long_form": True, "windows": len(windows)},
        frame_seconds=frame, audio_seconds=round(seconds, 6), spectrogram=mel[:, :math.ceil(len(audio.samples) / hop)],
        target_times=times, timing=timing, layer_ids=[], total_layers=total_layers,
        total_heads=int(n_heads),
    )
