"""Cross-attention in the terminal: the shaded target × source matrix of `attn align`, the word → patches table
of `attn caption`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from attncli.render.tables import cell, fit_matrix, ordinal, shade, titled, token_text

if TYPE_CHECKING:
    from rich.console import Group

    from attncli.views.cross import AlignView, CaptionView


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
