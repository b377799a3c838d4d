"""Rich tables for text views: top-k tables, per-layer profiles, shaded matrices that fit the width, softmax steps."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from rich.cells import cell_len
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from attncli.render.longtable import LongTable

if TYPE_CHECKING:
    from attncli.methods.softmax import SoftmaxResult
    from attncli.views.explain import LayerMatrix, TokenProfile

_ORDINALS = ["1st", "2nd", "3rd"]


def ordinal(n: int) -> str:
    """1 → 1st, 4 → 4th."""
    return _ORDINALS[n - 1] if n <= 3 else f"{n}th"


def shade(weight: float, vmax: float, vmin: float = 0.0) -> Style:
    """White→blue background for a weight in [vmin, vmax], with text readable on it in every colour system."""
    span = vmax - vmin
    t = 0.0 if span <= 0 else max(0.0, min(1.0, (weight - vmin) / span))
    r, g, b = (int(255 + (c - 255) * t) for c in (8, 48, 107))  # towards matplotlib's Blues end
    return Style(bgcolor=f"rgb({r},{g},{b})", color=_ink(r, g, b))


@lru_cache(maxsize=1024)  # a few hundred shades at most; a long matrix asks for each many times
def _ink(r: int, g: int, b: int) -> str:
    """'black' or 'bright_white': whichever contrasts more with the background at its worst.

    A terminal of 16 or 256 colours shows the nearest colour of its palette (rgb(106,130,166) becomes ANSI
    white, 192 grey), so a choice made on the true colour alone can put white on white; this one is made on
    every rendering of the background.
    """
    from rich.color import Color, ColorSystem
    from rich.terminal_theme import DEFAULT_TERMINAL_THEME

    color = Color.from_rgb(r, g, b)
    backs = [(r, g, b)] + [tuple(color.downgrade(system).get_truecolor(DEFAULT_TERMINAL_THEME))
                           for system in (ColorSystem.EIGHT_BIT, ColorSystem.STANDARD)]
    lums = [_luminance(*back) for back in backs]
    black = min((lum + 0.05) / 0.05 for lum in lums)  # WCAG contrast ratios
    white = min(1.05 / (lum + 0.05) for lum in lums)
    return "black" if black >= white else "bright_white"


def _luminance(r: int, g: int, b: int) -> float:
    """WCAG relative luminance of an sRGB colour."""
    def lin(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def token_text(label: str, special: bool) -> Text:
    """A token label; special tokens are dimmed so the eye skips them."""
    return Text(label, style="dim italic" if special else "bold")


def heading(view: Any) -> str:
    """A view's title and its notes, one per line."""
    return "\n".join([view.title, *getattr(view, "notes", [])])


def _weight_cell(label: str, weight: float) -> Text:
    """'cat 0.172' with the weight dimmed."""
    return Text.assemble((label, "bold"), " ", (f"{weight:.3f}", "cyan"))


def line(text: str, style: str = "") -> Text:
    """A line of prose, wrapped at spaces to the width it is drawn in (a word longer than the width is folded)."""
    return Text(text, style=style, overflow="fold")


def titled(title: str, *renderables) -> Group:
    """Title lines above a table, wrapped at spaces like any line of prose (see ``line``)."""
    return Group(line(title, "bold"), *renderables)


def top_table(view: "LayerMatrix", k: int | None = None, n_heads: int | None = None, width: int = 80) -> Group:
    """Each token with the k tokens it attends to most; fewer ranks (said under the title) when k would not fit
    ``width`` with every label whole."""
    k = view.top_k if k is None else k
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    k = min(k, len(view.indices))
    asked = k
    longest = max((cell_len(label) for label in view.labels), default=1)
    fixed = len(str(max(view.indices, default=0))) + 3 + max(longest, 5) + 3 + 1  # "#" and token, borders
    while k > 1 and fixed + k * (max(longest, 5) + 3) > width:
        k -= 1  # a rank column holds "label" over "0.123" when narrow: as wide as the longest label
    for n in range(1, k + 1):
        table.add_column(ordinal(n))
    for pos, row in enumerate(view.top(k)):
        table.add_row(str(view.indices[pos]), token_text(view.labels[pos], view.special[pos]),
                      *(_weight_cell(view.labels[j], w) for j, w in row))
    narrow = [f"top {k} of {asked}: the terminal is too narrow for more (--width or --json shows all)"] if k < asked else []
    return titled("\n".join([view.title, *(view.notes[:1] if view.skip_special else []), *narrow]), LongTable(table))


def profile_table(profile: "TokenProfile", k: int | None = None, n_heads: int | None = None) -> Group:
    """One token's top-k attended tokens at every layer, and which token wins most layers."""
    k = profile.top_k if k is None else k
    table = Table()
    table.add_column("layer", justify="right")
    k = min(k, len(profile.indices))
    for n in range(1, k + 1):
        table.add_column(ordinal(n))
    tops = profile.top(k)
    for layer, row in zip(profile.layer_numbers, tops):
        table.add_row(str(layer), *(_weight_cell(profile.labels[j], w) for j, w in row))
    lines = [Text(profile_summary(profile))]
    if profile.heads and profile.heads_to is not None:
        heads = ", ".join(f"layer {layer} head {head} {w:.3f}" for layer, head, w in profile.heads)
        lines.append(Text(f'Heads that send the most from "{profile.label}" to "{profile.labels[profile.heads_to]}": '
                          f"{heads}."))
    return titled(heading(profile), table, *lines)


def profile_summary(profile: "TokenProfile") -> str:
    """One sentence: the ordinary token (not itself, not special) that is on top in the most layers."""
    import numpy as np

    others = [j for j, i in enumerate(profile.indices) if i != profile.token and not profile.special[j]]
    if not others:
        return f'"{profile.label}" has no other ordinary token to attend to.'
    sub = profile.rows[:, others]  # (layers, other tokens)
    winners = sub.argmax(axis=1)  # per layer, the best other token
    wins = np.bincount(winners, minlength=len(others))
    # Most layer wins first; ties go to the larger mean weight.
    best = max(range(len(others)), key=lambda c: (wins[c], sub[:, c].mean()))
    layers = ", ".join(str(profile.layer_numbers[n]) for n in np.flatnonzero(winners == best))
    return (f'Besides itself and special tokens, "{profile.label}" attends most to "{profile.labels[others[best]]}" '
            f"(token {profile.indices[others[best]]}): the top such token in {wins[best]} of {sub.shape[0]} layers "
            f"({layers}), mean weight {sub[:, best].mean():.3f}.")


def matrix_table(view: "LayerMatrix", n_heads: int | None = None, width: int = 80) -> Group:
    """The full token × token table, each cell shaded by its weight (rows: query, columns: key)."""
    cells = [[Text(cell(float(w)), style=shade(float(w), view.vmax, view.vmin)) for w in row] for row in view.matrix]
    rows = [token_text(label, special) for label, special in zip(view.labels, view.special)]
    return titled(heading(view), *fit_matrix("query ↓ key →", rows, view.indices, view.labels, view.special, cells,
                                             width))


def cell(w: float) -> str:
    """A value in three characters: '.42', '1.0'; above 1 (norms: value-norm) '4.3', '43', '430', '4e3'."""
    if w < 0.995:
        return f"{w:.2f}".lstrip("0")
    if w < 9.95:
        return f"{w:.1f}"
    return f"{w:.0f}" if w < 999.5 else f"{w:.0e}".replace("e+0", "e").replace("e+", "e")


def fit_matrix(corner: str, row_labels: Sequence[Text], indices: Sequence[int], labels: Sequence[str],
               special: Sequence[bool], cells: Sequence[Sequence[Text]], width: int,
               extra: Sequence[tuple[str, Sequence[Text], str]] = ()) -> list:
    """A shaded matrix that shows every number within ``width`` columns.

    With the column labels as headers when they fit; else the columns are headed by token index (the rows say
    which token that is) and, when even that is too wide, split into blocks of columns one under the other.
    ``extra`` columns (header, cells, justify) end the last block.
    """
    n_cols = len(labels)
    row_w = max([len(corner)] + [r.cell_len for r in row_labels])
    extra_w = sum(max(len(h), *(c.cell_len for c in cs)) + 1 for h, cs, _ in extra) if extra else 0
    full = 2 + row_w + sum(max(len(lab), 3) + 1 for lab in labels) + extra_w
    if full <= width:
        headers = [token_text(lab, sp) for lab, sp in zip(labels, special)]
        return [_matrix_block(corner, row_labels, headers, cells, range(n_cols), extra)]
    numbered = list(row_labels)
    if len(row_labels) == n_cols:  # a square token matrix: rows are the same tokens as the columns
        numbered = [Text.assemble((f"{indices[i]:>{len(str(max(indices)))}} ", "dim"), r)
                    for i, r in enumerate(row_labels)]
    row_w = max([len(corner)] + [r.cell_len for r in numbered])
    headers = [Text(str(i), style="dim italic" if sp else "bold") for i, sp in zip(indices, special)]
    col_w = [max(len(str(i)), 3) + 1 for i in indices]
    room = max(width - 2 - row_w, 4)
    blocks, start = [], 0
    while start < n_cols:
        end, used = start, 0
        while end < n_cols and used + col_w[end] <= room:
            used += col_w[end]
            end += 1
        end = max(end, start + 1)
        last = end >= n_cols
        if last and extra and used + extra_w > room and end - start > 1:
            # the extra columns do not fit next to this block: give them a block of their own
            blocks.append(range(start, end))
            blocks.append(range(end, end))
        else:
            blocks.append(range(start, end))
        start = end
    key = "columns: " + "  ".join(f"{i}={lab}" for i, lab in zip(indices, labels))
    parts: list = [Text(key, style="dim")]
    for b, cols in enumerate(blocks):
        last = b == len(blocks) - 1
        if len(blocks) > 1 and len(cols):
            parts.append(Text(f"columns {indices[cols[0]]}–{indices[cols[-1]]}", style="dim"))
        parts.append(_matrix_block(corner, numbered, [headers[c] for c in cols], cells, cols, extra if last else ()))
    return parts


def _matrix_block(corner: str, row_labels: Sequence[Text], headers: Sequence[Text], cells: Sequence[Sequence[Text]],
                  cols: Sequence[int], extra: Sequence[tuple[str, Sequence[Text], str]]) -> Table:
    """One table of the matrix: the given columns of every row, then any extra columns."""
    table = Table(padding=(0, 0), show_lines=False)
    table.add_column(corner, no_wrap=True)
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True, min_width=3)
    for header, _, justify in extra:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r, label in enumerate(row_labels):
        table.add_row(label, *(cells[r][c] for c in cols), *(cs[r] for _, cs, _ in extra))
    return table


def softmax_table(result: "SoftmaxResult", width: int = 80) -> Group:
    """The seed's walkthrough: scores → (scaled) logits → exp → weights, and who wins.

    The bar column takes what the numbers leave of ``width`` (20 characters at most): numbers are never cut.
    """
    import math

    headers = ["element", "score"]
    scaled = result.dim is not None or result.temperature != 1.0
    if scaled:
        headers.append(_divisor_label(result))
    headers += ["exp", "weight"]
    top = max(result.logits)
    exps = [math.exp(x - top) for x in result.logits]
    total = sum(exps)
    rows = []
    for i, (score, logit, weight) in enumerate(zip(result.scores, result.logits, result.weights)):
        cells = [str(i), f"{score:g}"]
        if scaled:
            cells.append(f"{logit:.4g}")
        cells += [f"{math.exp(logit):.4g}" if logit < 700 else f"e^{logit:.4g}", f"{weight:.2f}"]
        rows.append(cells)
    def span(names: list[str]) -> int:  # the number columns' width with their borders and padding
        return sum(max(len(h), *(len(r[c]) for r in rows)) + 3 for c, h in enumerate(names)) + 1

    if span(headers) > width:  # narrow: short headers ("#", "÷√64", "w") before any number is cut
        headers = ["#", "score", *([_divisor_label(result)[5:].replace("/", "÷")] if scaled else []), "exp", "w"]
    bar = min(20, width - span(headers) - 3)  # the bar column's own border and padding take 3
    bar = bar if bar >= 5 else 0  # a shorter bar tells nothing
    table = Table()
    for header in headers:
        table.add_column(header, justify="right")
    if bar >= 1:
        table.add_column("", no_wrap=True)
    for i, (cells, weight) in enumerate(zip(rows, result.weights)):
        table.add_row(*cells, *(["█" * round(weight * bar)] if bar >= 1 else []),
                      style="bold" if i == result.winner else None)
    sum_exp = f"{total * math.exp(top):.4g}" if top < 700 else f"e^{top:.4g} × {total:.4g}"
    note = line(f"weights = exp / Σexp (Σexp = {sum_exp}); they sum to 1.\n"
                f"Element {result.winner} (score {result.scores[result.winner]:g}) gets the most attention: "
                f"{result.weights[result.winner]:.0%}.")
    return titled("softmax(scores)", table, note)


def _divisor_label(result: "SoftmaxResult") -> str:
    """Column header for scaled logits, e.g. 'score/√64/T'."""
    parts = ["score"]
    if result.dim is not None:
        parts.append(f"√{result.dim}")
    if result.temperature != 1.0:
        parts.append(f"{result.temperature:g}")
    return "/".join(parts)
