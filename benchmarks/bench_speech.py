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
    import soundfile
    from scipy.signal import resample_poly

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


def attncli_words(path: Path, loaded, num_beams: int = 1):
    """attncli's words for a clip, and the capture's seconds."""
    from attncli.families.speech_seq2seq import capture_audio

    start = time.perf_counter()
    cap = capture_audio(path, loaded, num_beams=num_beams)
    return cap.timing.get("words", []), time.perf_counter() - start


def pipeline_words(samples, pipe, num_beams: int = 1):
    """transformers' pipeline(return_timestamps='word') words (num_beams passed: its own default is 5)."""
    out = pipe({"raw": samples, "sampling_rate": RATE}, return_timestamps="word",
               generate_kwargs={"num_beams": num_beams})
    return [{"word": c["text"].strip(), "start": c["timestamp"][0],
             "end": c["timestamp"][1] if c["timestamp"][1] is not None else c["timestamp"][0]} for c in out["chunks"]]


def generate_seconds(samples, loaded, num_beams: int = 1) -> float:
    """Plain generate on the clip's features (feature extraction included, as attncli's capture includes it)."""
    import torch

    start = time.perf_counter()
    extractor = loaded.processor.feature_extractor
    feats = extractor(samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        loaded.model.generate(feats, max_new_tokens=196, num_beams=num_beams)
    return time.perf_counter() - start


def main() -> None:
    """Build the clips, run both systems, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--sets", default="gaps,long,tight")
    parser.add_argument("--num-beams", type=int, default=1,
                        help="beams for all three (attncli's default 1; the pipeline's own default is 5)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips per set (0: all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--words", type=Path, help="write every clip's words (truth, attncli, pipeline) as JSON")
    parser.add_argument("--worst", type=int, default=0, help="print the N words with the largest errors per system")
    parser.add_argument("--summary", type=Path, help="only summarise a --words file of an earlier run")
    parser.add_argument("--resound", action="store_true",
                        help="with --summary: redo attncli's sound step on the DTW spans kept in the file")
    args = parser.parse_args()
    if args.summary:
        dump = json.loads(args.summary.read_text())
        if args.resound:
            for clip in dump:
                resound(clip)
        for name in dict.fromkeys(c["set"] for c in dump):
            print_set(name, summarise([c for c in dump if c["set"] == name]))
        report(dump, args.json, args.worst)
        return

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
    dump: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, libraries_quiet():
        folder = Path(tmp)
        import soundfile

        for name in args.sets.split(","):
            clips, gaps = plan[name]
            if args.limit:  # evenly spread over sentences and voices
                clips = clips[::max(1, len(clips) // args.limit)][:args.limit]
            for n, (sentence, (voice, speed)) in enumerate(clips):
                samples, truth = make_clip(sentence.split(), voice, speed, gaps, rng, folder)
                path = folder / f"{name}{n}.wav"
                soundfile.write(str(path), samples, RATE)
                seconds = {"generate": generate_seconds(samples, loaded, args.num_beams)}
                ours, seconds["attncli"] = attncli_words(path, loaded, args.num_beams)
                start = time.perf_counter()
                theirs = pipeline_words(samples, pipe, args.num_beams)
                seconds["pipeline"] = time.perf_counter() - start
                print(f"{name} {n + 1}/{len(clips)}: {' '.join(w['word'] for w in ours)}", file=sys.stderr, flush=True)
                dump.append({"set": name, "clip": n, "voice": voice, "speed": speed, "truth": truth,
                             "attncli": ours, "pipeline": theirs, "seconds": seconds})
                if args.words:  # after every clip, so a run cut short can still be summarised
                    args.words.write_text(json.dumps(dump, indent=1) + "\n")
            print_set(name, summarise([c for c in dump if c["set"] == name]))
    report(dump, args.json, args.worst)


def rebuild(truth) -> np.ndarray:
    """A clip's samples again from its words' true places (espeak-ng is deterministic)."""
    import tempfile as tf

    end = truth[-1][2] + 0.3
    samples = np.zeros(int(round(end * RATE)), np.float32)
    with tf.TemporaryDirectory() as tmp:
        for word, start, _ in truth:
            audio = espeak_word(word, *VOICE_OF[0], Path(tmp))
            first = int(round(start * RATE))
            samples[first:first + len(audio)] = audio
    return samples


VOICE_OF: list = [None]


def resound(clip: dict) -> None:
    """Redo attncli's sound step (speech_timing.snap_to_sound, split_at_dips) on the clip's DTW spans."""
    from attncli.families import speech_timing as st

    VOICE_OF[0] = (clip["voice"], clip["speed"])
    samples = rebuild(clip["truth"])
    level = st.loudness(samples, RATE)
    words = [{**w, "start": w["dtw"][0], "end": w["dtw"][1]} for w in clip["attncli"]]
    st.snap_to_sound(words, level, len(samples) / RATE)
    st.split_at_dips(words, level)
    clip["attncli"] = words


def summarise(clips: list[dict]) -> dict:
    """One set's figures from its clips' records: errors per system, WER, seconds."""
    rows = {system: {"start": [], "end": [], "first_start": [], "first_end": [], "wer": [0, 0]}
            for system in ("attncli", "pipeline")}
    seconds = {"attncli": 0.0, "pipeline": 0.0, "generate": 0.0}
    for clip in clips:
        for key in seconds:
            seconds[key] += clip.get("seconds", {}).get(key, 0.0)
        for system, row in rows.items():
            pairs, errors = match(clip["truth"], clip[system])
            row["wer"][0] += errors
            row["wer"][1] += len(clip["truth"])
            for i, (ts, te), (fs, fe) in pairs:
                row["start"].append(fs - ts)
                row["end"].append(fe - te)
                if i == 0:
                    row["first_start"].append(fs - ts)
                    row["first_end"].append(fe - te)
    return {
        "clips": len(clips), "words": sum(len(c["truth"]) for c in clips),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "attncli_vs_generate": round(seconds["attncli"] / max(seconds["generate"], 1e-9), 2),
        "pipeline_vs_generate": round(seconds["pipeline"] / max(seconds["generate"], 1e-9), 2),
        **{system: {"matched": len(row["start"]), "wer": round(row["wer"][0] / max(row["wer"][1], 1), 3),
                    "start_ms": stats(row["start"]), "end_ms": stats(row["end"]),
                    "first_start_ms": stats(row["first_start"]), "first_end_ms": stats(row["first_end"])}
           for system, row in rows.items()},
    }


def worst(clips: list[dict], system: str, n: int) -> list[str]:
    """The n matched words with the largest start or end error: clip, word, place in the sentence, spans."""
    found = []
    for clip in clips:
        words = clip[system]
        pairs, _ = match(clip["truth"], words)
        by_truth = {i: span for i, _, span in pairs}
        for i, (word, ts, te) in enumerate(clip["truth"]):
            if i not in by_truth:
                continue
            fs, fe = by_truth[i]
            j = next(k for k, w in enumerate(words) if (w["start"], w["end"]) == (fs, fe))
            place = "first" if i == 0 else "last" if i == len(clip["truth"]) - 1 else f"word {i + 1}"
            err = max(abs(fs - ts), abs(fe - te))
            dtw = words[j].get("dtw")
            found.append((err, f"{clip['set']} {clip['clip']} ({clip['voice']} {clip['speed']}) {word!r} ({place}): "
                               f"true {ts:.3f}-{te:.3f}, found {fs:.3f}-{fe:.3f} (start {1000 * (fs - ts):+.0f} ms, "
                               f"end {1000 * (fe - te):+.0f} ms)" + (f", DTW {dtw[0]:.3f}-{dtw[1]:.3f}" if dtw else "")))
    return [line for _, line in sorted(found, reverse=True)[:n]]


def report(dump: list[dict], json_path: Path | None, n_worst: int) -> None:
    """Every set's figures (and JSON), and the worst words of each system."""
    results = {name: summarise([c for c in dump if c["set"] == name]) for name in dict.fromkeys(c["set"] for c in dump)}
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
    for system in ("attncli", "pipeline") if n_worst else ():
        print(f"\nworst {n_worst} words, {system}:")
        for line in worst(dump, system, n_worst):
            print("  " + line)


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
