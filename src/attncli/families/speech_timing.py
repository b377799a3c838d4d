"""Word times from Whisper's cross-attention: alignment heads + dynamic time warping, then the words' loud frames.

The DTW step is OpenAI Whisper's (whisper/timing.py), run with transformers' own helpers (`_median_filter`,
`_dynamic_time_warping`): the rows are those that *predict* each text token and the end token — row ``k`` of a
teacher-forced pass is the decoder reading ``ids[k]`` — so the last prompt row, which predicts the first word,
is kept (transformers' ``_extract_token_timestamps(num_input_ids=len(prompt))`` drops it and the first word
comes out zero-length). Special tokens inside the target (timestamps, language tags) are not words and take no
row. DTW puts a word's end where the next word starts, so the pause after a word is counted in it; the end (and
the start) is then moved to the word's last (first) frame whose loudness clears a threshold set from the
recording's own quiet and loud frames, when such a frame lies inside the DTW span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ENERGY_HOP = 0.01  # seconds between loudness frames
ENERGY_WINDOW = 0.02  # seconds per loudness frame
LOUD_FRACTION = 0.35  # threshold: this far (in dB) from the quiet level (10th percentile) to the loud one (99th)
MERGE_GAP = 0.05  # seconds: quieter stretches shorter than this are inside a word (measured: benchmarks/bench_speech.py)
DIP_BEFORE, DIP_AFTER = 0.16, 0.06  # seconds searched before/after a shared boundary (measured, as MERGE_GAP)
SHARED = 0.03  # seconds: words closer than this share a boundary
MIN_RANGE_DB = 10.0  # a recording with less contrast than this between quiet and loud is left as DTW timed it


@dataclass
class Loudness:
    """Frame loudness of a recording: ``db[i]`` covers [i * hop, i * hop + window) seconds; ``loud`` is db >= cut."""

    db: "np.ndarray"  # (frames,)
    hop: float
    cut: float | None  # None: too little contrast to tell sound from pause
    floor: float
    peak: float

    @property
    def loud(self) -> "np.ndarray":
        """Boolean (frames,): frames above the threshold."""
        import numpy as np

        return self.db >= self.cut if self.cut is not None else np.ones_like(self.db, dtype=bool)


def loudness(samples: "np.ndarray", rate: int) -> Loudness:
    """RMS level in dBFS every ENERGY_HOP seconds over ENERGY_WINDOW, and the loud/quiet threshold."""
    import numpy as np

    hop, win = max(1, round(ENERGY_HOP * rate)), max(1, round(ENERGY_WINDOW * rate))
    x = np.asarray(samples, dtype=np.float64)
    n = max(1, int(np.ceil(len(x) / hop)))
    padded = np.concatenate([x, np.zeros(n * hop + win - len(x))])
    power = np.cumsum(np.concatenate([[0.0], padded ** 2]))
    starts = np.arange(n) * hop
    rms = np.sqrt((power[starts + win] - power[starts]) / win)
    db = 20 * np.log10(np.maximum(rms, 1e-6))  # (frames,) dBFS, floored at -120
    floor, peak = float(np.percentile(db, 10)), float(np.percentile(db, 99))
    cut = floor + LOUD_FRACTION * (peak - floor) if peak - floor >= MIN_RANGE_DB else None
    return Loudness(db, hop / rate, cut, floor, peak)


def dtw_rows(ids: list[int], prompt: int, special: set[int], eos: int | None) -> tuple[list[int], list[int]]:
    """(target positions of text tokens, teacher-forced rows for DTW): the row predicting each, then the end's."""
    text = [k for k in range(prompt, len(ids)) if ids[k] not in special]
    rows = [k - 1 for k in text]
    if text and eos is not None and ids[-1] == eos and len(ids) - 2 > rows[-1]:
        rows.append(len(ids) - 2)  # the row that predicts the end token: where the last word stops
    return text, rows


def dtw_times(cross: "np.ndarray", heads: list[list[int]], rows: list[int], frames: int, frame_seconds: float,
              median_width: int = 7) -> "np.ndarray":
    """One time per row: where DTW over the normalised, median-filtered mean of the heads first reaches it."""
    import numpy as np
    import torch
    from transformers.models.whisper.generation_whisper import _dynamic_time_warping, _median_filter

    weights = np.stack([cross[layer, head][rows, :frames] for layer, head in heads])  # (heads, rows, frames)
    w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
    std, mean = torch.std(w, dim=-2, keepdim=True, unbiased=False), torch.mean(w, dim=-2, keepdim=True)
    w = (w - mean) / std.clamp_min(1e-12)  # each frame normalised over the tokens, as OpenAI's timing does
    if median_width > 1 and frames > median_width // 2:
        w = _median_filter(w[None], median_width)[0]
    matrix = w.mean(dim=0).double().numpy()  # (rows, frames)
    text_idx, time_idx = _dynamic_time_warping(-matrix)
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    return time_idx[jumps] * frame_seconds  # (rows,)


def word_spans(tokenizer: Any, ids: list[int], text: list[int], starts: "np.ndarray",
               audio_seconds: float) -> list[dict[str, Any]]:
    """Words with DTW (start, end): a word runs from its first token's time to the next word's (or the end's)."""
    from transformers.models.whisper.tokenization_whisper import _combine_tokens_into_words

    words, _, groups = _combine_tokens_into_words(tokenizer, [ids[k] for k in text])
    out = []
    for word, group in zip(words, groups):
        first, last = group[0], group[-1]
        start = float(starts[first])
        if last + 1 < len(starts):
            end = float(starts[last + 1])
        else:  # no end-token row: the last word runs to the end of the recording
            end = audio_seconds
        out.append({"word": word.strip(), "tokens": [text[g] - 1 for g in group], "start": start,
                    "end": max(end, start), "dtw": [round(start, 3), round(max(end, start), 3)]})
    return out


def sound_runs(level: Loudness, merge_gap: float) -> list[tuple[float, float]]:
    """(start, end) seconds of loud stretches, joined across quiet gaps shorter than merge_gap (stop consonants)."""
    import numpy as np

    loud = level.loud.astype(np.int8)
    edges = np.diff(np.concatenate([[0], loud, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # frame indices, end exclusive
    runs: list[list[float]] = []
    for a, b in zip(starts, ends):
        start, end = a * level.hop, b * level.hop + (ENERGY_WINDOW - level.hop)
        if runs and start - runs[-1][1] < merge_gap:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(a, b) for a, b in runs]


def snap_to_sound(words: list[dict[str, Any]], level: Loudness, audio_seconds: float,
                  merge_gap: float = MERGE_GAP) -> int:
    """Give each word the stretch of sound its DTW span overlaps most, and its span that stretch; how many moved.

    DTW ends a word where the next one starts, so a late next start drags the end into the pause, and a late
    start leaves the word's onset to the pause before it (measured: starts up to +240 ms, ends up to +440 ms on
    benchmarks/bench_speech.py). A stretch held by one word becomes its span; a stretch several words share
    (connected speech) starts the first and ends the last, the boundaries inside stay DTW's (split_at_dips moves
    them). A short word whose late span overlaps the next word's stretch more than its own, but also overlaps a
    stretch no other word holds just before, takes that one. Words with no sound inside their span keep it.
    """
    if level.cut is None or not words:
        return 0
    runs = sound_runs(level, merge_gap)
    spans = [(w["start"], w["end"]) for w in words]
    overlap = [[min(e, b) - max(s, a) for a, b in runs] for s, e in spans]  # (words, runs) seconds
    picks: list[int | None] = [max(range(len(runs)), key=row.__getitem__) if runs and max(row) > 0 else None
                               for row in overlap]
    for k in range(len(words) - 1):  # a word sharing the next word's stretch moves to a free one before it
        pick = picks[k]
        if pick is None or pick != picks[k + 1]:
            continue
        floor = max((p for p in picks[:k] if p is not None), default=-1)
        free = [r for r in range(floor + 1, pick) if overlap[k][r] > 0]
        if free:
            picks[k] = max(free, key=overlap[k].__getitem__)
    moved, prev_end = 0, 0.0
    for k, (word, pick) in enumerate(zip(words, picks)):
        if pick is None:
            prev_end = word["end"]
            continue
        a, b = runs[pick]
        first = k == 0 or picks[k - 1] != pick
        last = k == len(words) - 1 or picks[k + 1] != pick
        start = a if first else max(word["start"], a)
        end = min(b if last else min(word["end"], b), audio_seconds)
        start = round(float(max(start, prev_end)), 3)
        end = round(float(max(end, start)), 3)
        if (start, end) != (word["start"], word["end"]):
            moved += 1
        word["start"], word["end"] = start, end
        prev_end = end
    return moved


def split_at_dips(words: list[dict[str, Any]], level: Loudness, before: float = DIP_BEFORE,
                  after: float = DIP_AFTER) -> int:
    """Move each boundary two words still share (no pause found between them) to the quietest frame near it.

    In connected speech DTW's boundary lands late (measured: about +90 ms), so the search reaches further back
    (``before``) than forward (``after``); it never crosses either word's other end. Returns how many moved.
    """
    import numpy as np

    if level.cut is None:
        return 0
    moved = 0
    for left, right in zip(words, words[1:]):
        if right["start"] - left["end"] > SHARED:
            continue
        boundary = (left["end"] + right["start"]) / 2
        lo = max(int((boundary - before) / level.hop), int(left["start"] / level.hop) + 1)
        hi = min(int((boundary + after) / level.hop) + 1, int(right["end"] / level.hop) - 1, len(level.db))
        if hi <= lo:
            continue
        quiet = lo + int(np.argmin(level.db[lo:hi]))
        t = round(quiet * level.hop + ENERGY_WINDOW / 2, 3)
        left["end"], right["start"] = max(t, left["start"]), min(t, right["end"])
        moved += 1
    return moved


def token_times(n_target: int, text: list[int], starts: "np.ndarray") -> list[float | None]:
    """Per target token (ids[1:]), its DTW start time; prompt and special tokens have none."""
    times: list[float | None] = [None] * n_target
    for j, k in enumerate(text):
        times[k - 1] = round(float(starts[j]), 6)
    return times
