"""The view of `attn align AUDIO`: each output token's cross-attention over the recording's time axis.

Encoder position ``s`` covers ``[s * frame_seconds, (s + 1) * frame_seconds)`` of the recording; positions past
its end are the feature extractor's padding. Token times and word spans come from the capture (transformers'
alignment-heads + DTW method); the attention peak per token is computed here from the layer shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import Fuse, Kind, Scale
from attncli.errors import UsageError
from attncli.views.common import colour_range
from attncli.views.cross import _layer_head, _tokens, decoder_title, decoding_note, require_cross_capture

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture


@dataclass
class SpeechView:
    """One decoder layer's cross-attention of each shown target token over the recording's encoder frames.

    ``matrix[t, f]`` is the weight of shown target token ``t`` on frame ``f`` (start ``frame_times[f]`` seconds);
    ``padding[t]`` is what the token put on frames past the recording, so each row plus its padding sums to 1
    (with ``skip_special`` padding is dropped and rows are renormalised over the recording).
    """

    matrix: "np.ndarray"  # (target shown, frames of the recording)
    padding: list[float]
    frame_times: list[float]
    frame_seconds: float
    audio_seconds: float
    target_indices: list[int]
    target_labels: list[str]
    target_special: list[bool]
    target_scores: list[float]
    times: list[float | None]  # DTW time of each shown token (None: the model has no timing method)
    words: list[dict[str, Any]]
    timing: dict[str, Any]
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    skip_special: bool
    model_id: str
    source: str | None
    target_text: str | None
    decoding: dict[str, Any] = field(default_factory=dict)
    spectrogram: "np.ndarray | None" = None  # (feature bins, input frames) of the recording
    vmax: float = 1.0

    @property
    def title(self) -> str:
        """'Decoder layer 1 · mean of 2 heads · model'."""
        return decoder_title(self.layer, self.head, self.fuse, self.n_heads, self.model_id)

    @property
    def notes(self) -> list[str]:
        """The recording and its time axis, the transcript, how token times were found."""
        from pathlib import Path

        name = Path(self.source).name if self.source else "the recording"
        notes = [f"{name}: {self.audio_seconds:.2f} s as {len(self.frame_times)} encoder frames of "
                 f"{self.frame_seconds * 1000:g} ms",
                 f"transcript: {self.target_text or '(empty)'}  "
                 f"[{decoding_note(self.decoding, len(self.target_indices))}]"]
        if self.timing.get("windows"):
            notes.append(f"read in {len(self.timing['windows'])} windows (Whisper's long-form decoding); each window's "
                         "tokens attend only to its own frames; the encoder's self-attention is not kept")
        if self.timing.get("method"):
            cut = self.timing.get("loudness_threshold_db")
            notes.append(f"token times: DTW over {self.timing['heads_from']} (the same for every --layer); word spans: "
                         + (f"DTW's, set to the sound they overlap (frames above {cut:g} dBFS) and split at energy dips"
                            if cut is not None else "DTW's (a word ends where the next begins)"))
        elif self.timing.get("note"):
            notes.append(self.timing["note"])
        if self.timing.get("no_speech"):
            notes.append(f"{self.timing['no_speech']}: no words shown")
        notes.append("special tokens hidden; rows renormalised over the recording" if self.skip_special else
                     "padding: weight on frames past the end of the recording")
        return notes

    def peaks(self) -> list[tuple[int, float, float]]:
        """Per shown token, its most attended frame: (frame, start time in seconds, weight)."""
        import numpy as np

        cols = np.argmax(self.matrix, axis=-1)
        return [(int(c), self.frame_times[int(c)], float(self.matrix[t, c])) for t, c in enumerate(cols)]

    def to_dict(self) -> dict:
        """The JSON document of `attn align AUDIO --json` (schema attncli.align-audio/1)."""
        return {
            "schema": "attncli.align-audio/1",
            "title": self.title,
            "model": self.model_id,
            "audio": {"path": self.source, "seconds": self.audio_seconds},
            "frame_seconds": self.frame_seconds,
            "frames": len(self.frame_times),
            "layer": self.layer,
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "skip_special": self.skip_special,
            "decoding": self.decoding,
            "timing": {k: v for k, v in self.timing.items() if k != "words"},
            "target": {"text": self.target_text,
                       "tokens": _tokens(self.target_indices, self.target_labels, self.target_special,
                                         self.target_scores)},
            "tokens": [
                {"index": self.target_indices[t], "token": self.target_labels[t],
                 "time": self.times[t], "peak": {"frame": f, "time": round(s, 6), "weight": round(w, 6)},
                 "padding": round(self.padding[t], 6),
                 "weights": [round(float(v), 6) for v in self.matrix[t]]}
                for t, (f, s, w) in enumerate(self.peaks())
            ],
            "words": self.words,
        }


def speech_view(capture: "Capture", layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean,
                skip_special: bool = False) -> SpeechView:
    """Per target token, one decoder layer's cross-attention over the recording's frames, with its time."""
    import numpy as np

    require_cross_capture(capture)
    if capture.kind is not Kind.audio or not capture.frame_seconds:
        raise UsageError("this cross-attention capture has no audio source", "view it with attn align or caption")
    layer_i, head_i = _layer_head(capture, layer, head)
    full = capture.cross_map(layer_i, head_i, fuse)  # (target, encoder frames)
    frames = [j for j, pad in enumerate(capture.special) if not pad]  # the recording's frames
    rows = [i for i, s in enumerate(capture.target_special) if not (skip_special and s)]
    if not rows:
        raise UsageError("--skip-special leaves no tokens to show", "run it without --skip-special")
    matrix = full[np.ix_(rows, frames)]  # (shown, frames)
    padding = 1.0 - matrix.sum(axis=-1)
    if skip_special:
        totals = matrix.sum(axis=-1, keepdims=True)  # keepdims: each row divided by its own total
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        padding = np.zeros(len(rows))
    times = capture.target_times or [None] * len(capture.target_tokens)
    scores = capture.target_scores or [float("nan")] * len(capture.target_tokens)
    return SpeechView(
        matrix=matrix, padding=[max(float(p), 0.0) for p in padding],
        frame_times=[round(j * capture.frame_seconds, 6) for j in frames], frame_seconds=capture.frame_seconds,
        audio_seconds=float(capture.audio_seconds or 0.0), target_indices=rows,
        target_labels=[capture.target_tokens[i] for i in rows],
        target_special=[capture.target_special[i] for i in rows], target_scores=[scores[i] for i in rows],
        times=[times[i] for i in rows], words=list(capture.timing.get("words", [])), timing=dict(capture.timing),
        layer=layer_i, head=head_i, fuse=Fuse(fuse).value, n_heads=int(capture.cross_attentions.shape[1]),
        skip_special=skip_special, model_id=capture.model_id, source=capture.source,
        target_text=capture.target_text, decoding=dict(capture.decoding), spectrogram=capture.spectrogram,
        vmax=colour_range(matrix, Scale.zero)[1],
    )


@dataclass
class SpeechPage:
    """The audio page of `attn align AUDIO -o page.html`: a SpeechView and the samples the model heard."""

    view: SpeechView
    samples: "np.ndarray"  # (samples,) float32 mono at `rate`, as the model read them
    rate: int

    def word_rows(self) -> list["np.ndarray"]:
        """Per word, the mean over its tokens of the shown layer's weights on the recording's frames."""
        import numpy as np

        row_of = {index: t for t, index in enumerate(self.view.target_indices)}
        rows = []
        for word in self.view.words:
            shown = [row_of[k] for k in word.get("tokens", []) if k in row_of]
            rows.append(self.view.matrix[shown].mean(axis=0) if shown else np.zeros(self.view.matrix.shape[1]))
        return rows


def speech_page(view: SpeechView, samples: "np.ndarray", rate: int) -> SpeechPage:
    """The page's view: the speech view plus the samples, checked to be the recording the view covers."""
    if abs(len(samples) / rate - view.audio_seconds) > 0.05:
        raise UsageError(f"the recording is now {len(samples) / rate:.2f} s, the capture read {view.audio_seconds:.2f} s",
                         "capture it again")
    return SpeechPage(view, samples, rate)
