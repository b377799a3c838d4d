"""Cross-attention in the terminal: the shaded target × source matrix of `attn align`, the word → patches table
of `attn caption`, the token → time table of `attn align AUDIO`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from attncli.render.tables import cell, fit_matrix, ordinal, shade, titled, token_text

if TYPE_CHECKING:
    from rich.console import Group

    from attncli.views.cross import AlignView, CaptionView
    from attncli.views.speech import SpeechView


def _prob(p: float) -> Text:
    """The model's probability of a target token, dimmed."""
    return Text("" if p != p else f"{p:.2f}".lstrip("0") if p < 0.995 else "1.0", style="dim")  # p != p: NaN


def align_title(view: "AlignView") -> str:
    """Title naming decoder layer, heads, model, both texts and how the target came about."""
    return "\n".join([view.title, *view.notes])


def align_table(view: "AlignView", width: int = 80) -> "Group":
    """Target × source matrix shaded by weight, with each target token's best ordinary source token and probability."""
    vmin, vmax = view.vmin, view.vmax
    cells = [[Text(cell(float(w)), style=shade(float(w), vmax, vmin)) for w in row] for row in view.matrix]
    best_cells = [Text(" –") if best is None else Text.assemble(
        " ", (view.source_labels[best[0]], "bold"), " ", (f"{best[1]:.2f}", "cyan")) for best in view.best()]
    probs = [_prob(p) for p in view.target_scores]
    rows = [token_text(label, special) for label, special in zip(view.target_labels, view.target_special)]
    extra = [(" best source", best_cells, "left"), (" p", probs, "right")]
    return titled(align_title(view), *fit_matrix("target ↓ source →", rows, view.source_indices, view.source_labels,
                                                 view.source_special, cells, width, extra))


def caption_title(view: "CaptionView") -> str:
    """Title naming decoder layer, heads, model, the patch grid and the caption."""
    return "\n".join([view.title, *view.notes])


def caption_table(view: "CaptionView", k: int | None = None) -> "Group":
    """Per word: its probability, the k patches (row,col) it attends to most, and what went to the prefix tokens."""
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("word")
    table.add_column("p", justify="right")
    k = min(view.top_k if k is None else k, view.grid.n_patches)
    for n in range(1, k + 1):
        table.add_column(f"{ordinal(n)} patch")
    for label in view.grid.prefix_labels:
        table.add_column(f"on {label}", justify="right")
    vmax = float(view.maps.max()) if view.maps.size else 1.0
    for w, top in enumerate(view.top(k)):
        cells = [Text.assemble((f"({r},{c})", "bold"), " ", (f"{v:.3f}", shade(v, vmax))) for r, c, v in top]
        table.add_row(str(view.word_indices[w]), token_text(view.words[w], view.word_special[w]),
                      _prob(view.scores[w]), *cells, *(f"{float(v):.3f}" for v in view.prefix[w]))
    note = Text("patch weights are raw cross-attention (not renormalised); a word's patches plus its prefix "
                "column(s) sum to 1", style="dim")
    return titled(caption_title(view), table, note)


BARS = " ▁▂▃▄▅▆▇█"


def time_strip(row: "Any", vmax: float, width: int) -> str:
    """A row of weights over time as block characters, each character the largest weight of its span of frames."""
    import numpy as np

    n = len(row)
    if n == 0 or width < 1:
        return ""
    edges = np.linspace(0, n, min(width, n) + 1).astype(int)
    peaks = [float(row[a:b].max()) for a, b in zip(edges[:-1], edges[1:])]
    top = vmax if vmax > 0 else 1.0
    return "".join(BARS[min(len(BARS) - 1, int(round(p / top * (len(BARS) - 1))))] for p in peaks)


def speech_table(view: "SpeechView", width: int = 80) -> "Group":
    """Per token: probability, DTW time, attention peak, padding share and a strip of its attention over time."""
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("p", justify="right")
    table.add_column("time", justify="right")
    table.add_column("peak", justify="right")
    table.add_column("padding", justify="right")
    strip = max(10, min(len(view.frame_times), width - 50))
    table.add_column(f"0 s … {view.audio_seconds:.2f} s", no_wrap=True)
    for t, (_, start, weight) in enumerate(view.peaks()):
        time = view.times[t]
        table.add_row(str(view.target_indices[t]), token_text(view.target_labels[t], view.target_special[t]),
                      _prob(view.target_scores[t]), "–" if time is None else f"{time:.2f} s",
                      Text.assemble(f"{start:.2f} s ", (f"{weight:.2f}", "cyan")), f"{view.padding[t]:.2f}",
                      Text(time_strip(view.matrix[t], view.vmax, strip), style="blue"))
    parts: list[Any] = [table]
    if view.words:
        words = Table(title=None)
        words.add_column("word")
        words.add_column("start", justify="right")
        words.add_column("end", justify="right")
        for word in view.words:
            words.add_row(Text(word["word"], style="bold"), f"{word['start']:.2f} s", f"{word['end']:.2f} s")
        parts.append(words)
    note = Text("time: where DTW over the alignment heads starts the token (words: start and end as the notes say); "
                "peak: the frame this layer attends to most", style="dim")
    return titled("\n".join([view.title, *view.notes]), *parts, note)
