"""Word timings against known word boundaries: attncli's `attn align AUDIO` and transformers' ASR pipeline.

Clips are synthesised with espeak-ng one word at a time (so every word's true start and end is known to the
sample: each word's own file is trimmed to its first and last sample above 1/1000 of full scale), joined with
seeded random pauses, at 16 kHz. Sets:
  gaps     80-400 ms pauses, 12 sentences x 4 voice/speed pairs (the issue's 48 clips)
  long     600 ms pauses (the issue's late-end case), 4 sentences x 2 voices
  tight    0-40 ms pauses: near-continuous speech, 6 sentences x 2 voices (espeak-ng gives no word times for a
           whole sentence, so this stands in for continuous speech)
Both systems run the same converted Whisper (`--model whisper-tiny.en` by default) with its generation config.
Words are matched to the reference by text (difflib on lower-cased words without punctuation); errors are over
matched words. Speed: attncli's capture vs plain `generate` on the same features, in the same process.

    PYTHONPATH=src python benchmarks/bench_speech.py [--model whisper-tiny.en] [--sets gaps,long,tight] [--json F]
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16000
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "please call stella and ask her to bring these things",
    "she sells sea shells by the sea shore",
    "we will meet at the station at seven tomorrow morning",
    "the weather today is cold and windy with some rain",
    "my favourite book is on the table next to the lamp",
    "can you tell me the way to the nearest bank",
    "he opened the door and walked into the garden",
    "the children played football in the park after school",
    "turn left at the second traffic light and keep going",
    "our team finished the project two days early",
    "a large black cat was sleeping under the old tree",
]
VOICES = [("en-us", 160), ("en", 175), ("en-us+f3", 140), ("en+m3", 200)]


def espeak_word(word: str, voice: str, speed: int, folder: Path) -> np.ndarray:
    """One word from espeak-ng at 16 kHz, trimmed to its first and last sample above 1e-3."""
    from scipy.signal import resample_poly
    import soundfile

    out = folder / "w.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), word], check=True)
    data, rate = soundfile.read(str(out), dtype="float32")
    data = resample_poly(data, 320, 441).astype(np.float32) if rate == 22050 else data
    loud = np.flatnonzero(np.abs(data) > 1e-3)
    return data[loud[0]:loud[-1] + 1]


def make_clip(words: list[str], voice: str, speed: int, gaps: tuple[float, float], rng, folder: Path):
    """(samples, [(word, start, end)]) with a 0.3 s lead-in and 0.3 s tail."""
    parts, truth, t = [np.zeros(int(0.3 * RATE), np.float32)], [], 0.3
    for i, word in enumerate(words):
        if i:
            gap = rng.uniform(*gaps)
            parts.append(np.zeros(int(gap * RATE), np.float32))
            t += int(gap * RATE) / RATE
        audio = espeak_word(word, voice, speed, folder)
        truth.append((word, t, t + len(audio) / RATE))
        parts.append(audio)
        t += len(audio) / RATE
    parts.append(np.zeros(int(0.3 * RATE), np.float32))
    return np.concatenate(parts), truth


def norm(word: str) -> str:
    """Lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", word.lower())


def match(truth, found):
    """Pairs (true (start, end), found (start, end)) of words matched by text, and the word error count."""
    a, b = [norm(w) for w, _, _ in truth], [norm(w["word"]) for w in found]
    pairs = []
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            pairs.append((i, truth[i][1:], (found[j]["start"], found[j]["end"])))
    errors = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal")
    return pairs, errors


def stats(values):
    """median, p90, max of absolute values (ms), and the mean signed value (bias)."""
    v = np.asarray(values, dtype=np.float64) * 1000
    if v.size == 0:
        return {"median": None, "p90": None, "max": None, "bias": None}
    return {"median": round(float(np.median(np.abs(v))), 1), "p90": round(float(np.percentile(np.abs(v), 90)), 1),
            "max": round(float(np.abs(v).max()), 1), "bias": round(float(v.mean()), 1)}


def attncli_words(path: Path, loaded):
    """attncli's words for a clip, and the capture's seconds."""
    from attncli.families.speech_seq2seq import capture_audio

    start = time.perf_counter()
    cap = capture_audio(path, loaded)
    return cap.timing.get("words", []), time.perf_counter() - start


def pipeline_words(samples, pipe):
    """transformers' pipeline(return_timestamps='word') words."""
    out = pipe({"raw": samples, "sampling_rate": RATE}, return_timestamps="word")
    return [{"word": c["text"].strip(), "start": c["timestamp"][0],
             "end": c["timestamp"][1] if c["timestamp"][1] is not None else c["timestamp"][0]} for c in out["chunks"]]


def generate_seconds(samples, loaded) -> float:
    """Plain generate on the clip's features (feature extraction included, as attncli's capture includes it)."""
    import torch

    start = time.perf_counter()
    extractor = loaded.processor.feature_extractor
    feats = extractor(samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        loaded.model.generate(feats, max_new_tokens=196)
    return time.perf_counter() - start


def main() -> None:
    """Build the clips, run both systems, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--sets", default="gaps,long,tight")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips per set (0: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import transformers

    from attncli.choices import Purpose
    from attncli.models import load_model
    from attncli.quiet import libraries_quiet

    transformers.utils.logging.set_verbosity_error()
    loaded = load_model(args.model, Purpose.align)
    pipe = transformers.pipeline("automatic-speech-recognition", model=loaded.model,
                                 tokenizer=loaded.processor.tokenizer,
                                 feature_extractor=loaded.processor.feature_extractor, device="cpu")
    rng = np.random.default_rng(0)
    plan = {"gaps": ([(s, v) for s in SENTENCES for v in VOICES], (0.08, 0.4)),
            "long": ([(s, v) for s in SENTENCES[:4] for v in VOICES[:2]], (0.6, 0.6)),
            "tight": ([(s, v) for s in SENTENCES[4:10] for v in VOICES[:2]], (0.0, 0.04))}
    results = {}
    with tempfile.TemporaryDirectory() as tmp, libraries_quiet():
        folder = Path(tmp)
        import soundfile

        for name in args.sets.split(","):
            clips, gaps = plan[name]
            if args.limit:  # evenly spread over sentences and voices
                clips = clips[::max(1, len(clips) // args.limit)][:args.limit]
            rows = {"attncli": {"start": [], "end": [], "first_start": [], "first_end": [], "wer": [0, 0]},
                    "pipeline": {"start": [], "end": [], "first_start": [], "first_end": [], "wer": [0, 0]}}
            seconds = {"attncli": 0.0, "pipeline": 0.0, "generate": 0.0}
            for n, (sentence, (voice, speed)) in enumerate(clips):
                samples, truth = make_clip(sentence.split(), voice, speed, gaps, rng, folder)
                path = folder / f"{name}{n}.wav"
                soundfile.write(str(path), samples, RATE)
                seconds["generate"] += generate_seconds(samples, loaded)
                ours, took = attncli_words(path, loaded)
                seconds["attncli"] += took
                start = time.perf_counter()
                theirs = pipeline_words(samples, pipe)
                seconds["pipeline"] += time.perf_counter() - start
                print(f"{name} {n + 1}/{len(clips)}: {' '.join(w['word'] for w in ours)}", file=sys.stderr, flush=True)
                for system, found in (("attncli", ours), ("pipeline", theirs)):
                    pairs, errors = match(truth, found)
                    row = rows[system]
                    row["wer"][0] += errors
                    row["wer"][1] += len(truth)
                    for i, (ts, te), (fs, fe) in pairs:
                        row["start"].append(fs - ts)
                        row["end"].append(fe - te)
                        if i == 0:
                            row["first_start"].append(fs - ts)
                            row["first_end"].append(fe - te)
            results[name] = {
                "clips": len(clips), "words": sum(len(s.split()) for s, _ in clips),
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "attncli_vs_generate": round(seconds["attncli"] / seconds["generate"], 2),
                "pipeline_vs_generate": round(seconds["pipeline"] / seconds["generate"], 2),
                **{system: {"matched": len(row["start"]), "wer": round(row["wer"][0] / max(row["wer"][1], 1), 3),
                            "start_ms": stats(row["start"]), "end_ms": stats(row["end"]),
                            "first_start_ms": stats(row["first_start"]), "first_end_ms": stats(row["first_end"])}
                   for system, row in rows.items()},
            }
            print_set(name, results[name])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def print_set(name: str, res: dict) -> None:
    """One set's table: start/end median, p90, max and bias (ms), first word, WER, speed."""
    print(f"\n## {name}: {res['clips']} clips, {res['words']} words")
    print("| system | matched | WER | start med | start p90 | start max | start bias | end med | end p90 | end max "
          "| end bias | 1st start med | 1st end med |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for system in ("attncli", "pipeline"):
        r = res[system]
        s, e, fs, fe = r["start_ms"], r["end_ms"], r["first_start_ms"], r["first_end_ms"]
        print(f"| {system} | {r['matched']} | {r['wer']:.1%} | {s['median']} | {s['p90']} | {s['max']} | {s['bias']} "
              f"| {e['median']} | {e['p90']} | {e['max']} | {e['bias']} | {fs['median']} | {fe['median']} |")
    print(f"time: attncli {res['seconds']['attncli']} s, pipeline {res['seconds']['pipeline']} s, plain generate "
          f"{res['seconds']['generate']} s → attncli/generate {res['attncli_vs_generate']}×, "
          f"pipeline/generate {res['pipeline_vs_generate']}×", flush=True)


if __name__ == "__main__":
    main()
