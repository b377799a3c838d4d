"""Views of cross-attention, computed from a Capture with numpy only: `attn align` and `attn caption`.

``AlignView`` is the target × source matrix of one decoder layer over text; ``CaptionView`` lays each target
word's attention over the encoder's patch grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from attncli.choices import Fuse
from attncli.errors import NotSupportedError, UsageError
from attncli.methods.heads import resolve_index, top_k

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture
    from attncli.grid import PatchGrid


def require_cross_capture(capture: "Capture", kind: str | None = None) -> None:
    """Refuse a capture without cross-attention (or of the other source kind) with a one-line error."""
    if capture.cross_attentions is None:
        raise NotSupportedError(f"the capture of {capture.model_id} has no cross-attention",
                                'capture one with attn align "TEXT" or attn caption IMAGE')
    if kind == "image" and (capture.kind != "image" or capture.grid is None):
        raise UsageError("this cross-attention capture has a text source, not an image", "view it with attn align")
    if kind == "text" and capture.kind != "text":
        raise UsageError("this cross-attention capture has an image source", "view it with attn caption")


def keep_cross(matrix: "np.ndarray", rows: Sequence[bool], cols: Sequence[bool]) -> "np.ndarray":
    """Keep some rows and columns of a (target, source) matrix and renormalise each row over the kept columns."""
    import numpy as np

    sub = matrix[np.ix_(np.flatnonzero(rows), np.flatnonzero(cols))]
    totals = sub.sum(axis=-1, keepdims=True)  # keepdims: each row divided by its own total
    return np.divide(sub, totals, out=np.zeros_like(sub), where=totals > 0)


def _layer_head(capture: "Capture", layer: int, head: int | None) -> tuple[int, int | None]:
    """Resolve the decoder layer and head, naming the decoder's range when out of range."""
    n_layers, n_heads = capture.cross_attentions.shape[:2]
    layer_i = resolve_index(layer, n_layers, "layer", "the decoder")
    return layer_i, resolve_index(head, n_heads, "head", "the decoder") if head is not None else None


def _tokens(indices: list[int], labels: list[str], special: list[bool], scores: list[float] | None = None) -> list:
    """JSON token list; target tokens carry the model's probability."""
    out = []
    for n, i in enumerate(indices):
        item: dict[str, Any] = {"index": i, "token": labels[n], "special": special[n]}
        if scores is not None:
            item["prob"] = round(scores[n], 6)
        out.append(item)
    return out


@dataclass
class AlignView:
    """One decoder layer's cross-attention over the tokens shown.

    ``matrix[t, s]`` is how much shown target token ``t`` attended to shown source token ``s``; each row sums to 1.
    ``*_indices`` map shown positions back to positions in the capture.
    """

    matrix: "np.ndarray"  # (target shown, source shown)
    source_indices: list[int]
    source_labels: list[str]
    source_special: list[bool]
    target_indices: list[int]
    target_labels: list[str]
    target_special: list[bool]
    target_scores: list[float]
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    skip_special: bool
    model_id: str
    source_text: str | None
    target_text: str | None
    decoding: dict[str, Any] = field(default_factory=dict)

    def best(self) -> list[tuple[int, float] | None]:
        """Per target row, its most attended ordinary (non-special) source position and weight."""
        ordinary = [j for j, s in enumerate(self.source_special) if not s]
        if not ordinary:
            return [None] * len(self.target_indices)
        result = []
        for row in self.matrix:
            j, w = top_k(row[ordinary], 1)[0]
            result.append((ordinary[j], w))
        return result

    def to_dict(self) -> dict:
        """The JSON document of `attn align --json` (schema attncli.align/1)."""
        return {
            "schema": "attncli.align/1",
            "model": self.model_id,
            "layer": self.layer,
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "skip_special": self.skip_special,
            "decoding": self.decoding,
            "source": {"text": self.source_text,
                       "tokens": _tokens(self.source_indices, self.source_labels, self.source_special)},
            "target": {"text": self.target_text,
                       "tokens": _tokens(self.target_indices, self.target_labels, self.target_special,
                                         self.target_scores)},
            "weights": [[round(float(w), 6) for w in row] for row in self.matrix],
            "best": [
                {"target": self.target_indices[t], "token": self.target_labels[t],
                 "source": None if b is None else self.source_indices[b[0]],
                 "source_token": None if b is None else self.source_labels[b[0]],
                 "weight": None if b is None else round(b[1], 6)}
                for t, b in enumerate(self.best())
            ],
        }


def align_view(capture: "Capture", layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean,
               skip_special: bool = False) -> AlignView:
    """Target × source cross-attention of one decoder layer; special tokens optionally hidden (rows renormalised)."""
    require_cross_capture(capture)
    layer_i, head_i = _layer_head(capture, layer, head)
    matrix = capture.cross_map(layer_i, head_i, fuse)  # (target, source)
    rows = [not s for s in capture.target_special] if skip_special else [True] * matrix.shape[0]
    cols = [not s for s in capture.special] if skip_special else [True] * matrix.shape[1]
    if not any(rows) or not any(cols):
        raise UsageError("--skip-special leaves no tokens to show", "run it without --skip-special")
    if skip_special:
        matrix = keep_cross(matrix, rows, cols)
    t_idx = [i for i, k in enumerate(rows) if k]
    s_idx = [j for j, k in enumerate(cols) if k]
    scores = capture.target_scores or [float("nan")] * len(capture.target_tokens)
    return AlignView(
        matrix=matrix, source_indices=s_idx, source_labels=[capture.tokens[j] for j in s_idx],
        source_special=[capture.special[j] for j in s_idx], target_indices=t_idx,
        target_labels=[capture.target_tokens[i] for i in t_idx],
        target_special=[capture.target_special[i] for i in t_idx], target_scores=[scores[i] for i in t_idx],
        layer=layer_i, head=head_i, fuse=Fuse(fuse).value, n_heads=int(capture.cross_attentions.shape[1]),
        skip_special=skip_special, model_id=capture.model_id,
        source_text=capture.text if capture.kind == "text" else capture.source,
        target_text=capture.target_text, decoding=dict(capture.decoding),
    )


@dataclass
class CaptionView:
    """Each shown target word's cross-attention laid out on the image's patch grid.

    ``maps[w]`` is ``(rows, cols)``: word ``w``'s weights on the patches, not renormalised; ``prefix[w]`` holds
    what the same word put on the prefix tokens (CLS, ...) so that ``maps[w].sum() + prefix[w].sum() == 1``.
    """

    maps: "np.ndarray"  # (words shown, rows, cols)
    prefix: "np.ndarray"  # (words shown, grid.prefix)
    word_indices: list[int]
    words: list[str]
    word_special: list[bool]
    scores: list[float]
    grid: "PatchGrid"
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    skip_special: bool
    model_id: str
    caption: str | None
    source: str | None
    decoding: dict[str, Any] = field(default_factory=dict)

    def top(self, k: int) -> list[list[tuple[int, int, float]]]:
        """Per shown word, its k most attended patches as (row, col, weight)."""
        cols = self.grid.cols
        return [[(i // cols, i % cols, w) for i, w in top_k(m.reshape(-1), k)] for m in self.maps]

    def to_dict(self, k: int) -> dict:
        """The JSON document of `attn caption --json` (schema attncli.caption/1)."""
        grid = self.grid
        return {
            "schema": "attncli.caption/1",
            "model": self.model_id,
            "image": self.source,
            "caption": self.caption,
            "decoding": self.decoding,
            "layer": self.layer,
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "skip_special": self.skip_special,
            "grid": grid.to_dict(),
            "words": [
                {"index": self.word_indices[w], "token": self.words[w], "special": self.word_special[w],
                 "prob": round(self.scores[w], 6),
                 "prefix": {label: round(float(v), 6) for label, v in zip(grid.prefix_labels, self.prefix[w])},
                 "top": [{"row": r, "col": c, "token": grid.token_of(r, c), "weight": round(v, 6)} for r, c, v in top],
                 "patches": [[round(float(v), 6) for v in row] for row in self.maps[w]]}
                for w, top in enumerate(self.top(k))
            ],
        }


def caption_view(capture: "Capture", layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean,
                 skip_special: bool = False) -> CaptionView:
    """Per target word, its cross-attention of one decoder layer on the patch grid; special words optionally hidden."""
    require_cross_capture(capture, "image")
    grid = capture.grid
    layer_i, head_i = _layer_head(capture, layer, head)
    matrix = capture.cross_map(layer_i, head_i, fuse)  # (target, source)
    keep = [i for i, s in enumerate(capture.target_special) if not (skip_special and s)]
    if not keep:
        raise UsageError("--skip-special leaves no words to show", "run it without --skip-special")
    rows = matrix[keep]  # (words, source)
    patches = rows[:, grid.prefix:grid.prefix + grid.n_patches].reshape(len(keep), grid.rows, grid.cols)
    scores = capture.target_scores or [float("nan")] * len(capture.target_tokens)
    return CaptionView(
        maps=patches, prefix=rows[:, :grid.prefix], word_indices=keep,
        words=[capture.target_tokens[i] for i in keep], word_special=[capture.target_special[i] for i in keep],
        scores=[scores[i] for i in keep], grid=grid, layer=layer_i, head=head_i, fuse=Fuse(fuse).value,
        n_heads=int(capture.cross_attentions.shape[1]), skip_special=skip_special, model_id=capture.model_id,
        caption=capture.target_text, source=capture.source, decoding=dict(capture.decoding),
    )
