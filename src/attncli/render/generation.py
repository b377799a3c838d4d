"""`attn generate` drawn: the per-token table for the terminal, the generated × context matrix as a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from attncli.render.longtable import LongTable
from attncli.render.tables import shade, titled, token_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Group

    from attncli.views.generation import GenerationView


def _prob(p: float) -> Text:
    """The model's probability of a generated token, dimmed ('.42', '.003' below 1%)."""
    text = "" if p != p else "1.0" if p >= 0.995 else f"{p:.{2 if p >= 0.01 else 3}f}".lstrip("0")  # p != p: NaN
    return Text(text, style="dim")


def _listed(view: "GenerationView", pairs: list[tuple[int, float]]) -> Text:
    """'cat·3 .31  the·0 .12' (token, its position, weight shaded); '–' when there is nothing to list."""
    if not pairs:
        return Text("–", style="dim")
    parts: list = []
    for n, (j, w) in enumerate(pairs):
        parts += ["  "] if n else []
        parts += [(view.labels[j], "italic dim" if view.special[j] else "bold"), (f"·{j}", "dim"), " ",
                  (f"{w:.2f}".lstrip("0") if w < 0.995 else "1.0", shade(w, view.vmax))]
    return Text.assemble(*parts)


def generation_table(view: "GenerationView") -> "Group":
    """Per generated token: its probability, its attention on the prompt in all, and what it attended to most."""
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("p", justify="right")
    table.add_column("on prompt", justify="right")
    table.add_column("top prompt tokens")
    table.add_column("top generated tokens")
    for t, (share, tp, tg) in enumerate(zip(view.prompt_share(), view.top_prompt(), view.top_generated())):
        table.add_row(str(view.prompt_length + t), token_text(view.generated[t], view.generated_special[t]),
                      _prob(view.scores[t]), f"{share:.2f}", _listed(view, tp), _listed(view, tg))
    return titled("\n".join([view.title, *view.notes]), LongTable(table))


def generation_figure(view: "GenerationView") -> "Figure":
    """Generated tokens (rows) × the tokens they could see (columns); the future greyed, the prompt's end marked."""
    import numpy as np

    from attncli.render.figures import MAX_INCHES, label_axis, new_figure, suptitle

    n_t, n_c = view.matrix.shape
    fig = new_figure(min(MAX_INCHES, max(5.0, 0.3 * n_c + 2.5)), min(MAX_INCHES, max(3.0, 0.3 * n_t + 2.8)))
    ax = fig.subplots()
    future = np.arange(n_c)[None, :] >= view.prompt_length + np.arange(n_t)[:, None]  # (T, C): not there yet
    import matplotlib

    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#e6e6e6")
    shown = ax.imshow(np.ma.masked_where(future, view.matrix), cmap=cmap, vmin=0.0, vmax=view.vmax, aspect="auto",
                      interpolation="nearest")
    ax.axvline(view.prompt_length - 0.5, color="orange", linewidth=1.2)
    x_note = label_axis(ax, "x", view.labels, view.special)
    y_note = label_axis(ax, "y", view.generated, view.generated_special)
    ax.set_xlabel("prompt | generated before it (attended to)" + (f" · {x_note}" if x_note else ""), fontsize=8)
    ax.set_ylabel("generated token" + (f" · {y_note}" if y_note else ""), fontsize=8)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("attention weight (rows sum to at most 1: learned sinks)" if view.sinks
                  else "attention weight (rows sum to 1)", fontsize=8)
    suptitle(fig, view.title, [view.notes[1], "orange line: end of the prompt; grey: not generated yet"])
    return fig
