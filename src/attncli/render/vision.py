"""Image results in the terminal with rich: classification tables and patch grids shaded by attention."""

from __future__ import annotations

import math

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from attncli.render.longtable import LongTable
from attncli.render.tables import line, ordinal, shade, titled
from attncli.views.common import quantity as view_quantity

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Prediction
    from attncli.views.classify import ClassifiedImage, ClassifyResult
    from attncli.views.maps import HeadPanels, PatchMap, TokenRow


def _unit(vmax: float) -> tuple[float, str]:
    """Scale for the printed numbers: percent when the largest weight is ≥ 0.1, else per mille; values of 1 and more
    (value-norm's norms) in a power of ten that keeps them under 100."""
    if vmax >= 1.0:
        step = 10.0 ** (math.floor(math.log10(vmax)) - 1)  # 4.9 → 0.1, 49 → 1
        return 1.0 / step, f"×{step:g}"
    return (100.0, "%") if vmax >= 0.1 else (1000.0, "‰")


SINK_MARK = "◇"  # the patch-sink marker, the same in figures (views.sinks.sinks_note names it)


_BLOCKS = " ░▒▓█"  # the shading without colour (NO_COLOR, TERM=dumb, a pipe), lightest to darkest


def grid_text(values: "np.ndarray", vmax: float | None = None, width: int = 80, vmin: float = 0.0,
              marks: "set[tuple[int, int]] | frozenset" = frozenset()) -> "Shaded":
    """(rows, cols) weights as lines of shaded cells, row and column numbers at the edges.

    Cells show the weight in % (or ‰ when all weights are small) when the grid fits ``width``
    at three characters a cell, else blocks of two characters (one when two do not fit), whose shading is a
    background colour, or ░▒▓█ where there is no colour. Cells in ``marks`` (patch sinks) start with ◇,
    the number kept whole (a three-digit number is underlined instead).
    """
    rows, cols = values.shape
    vmax = float(values.max()) if vmax is None else vmax
    scale, _ = _unit(vmax)
    margin = len(str(rows - 1)) + 1
    cell = next((c for c in (3, 2) if margin + cols * c <= width), 1)
    numbers = cell == 3
    text = Text(no_wrap=True, overflow="ignore")
    text.append(" " * margin)
    if cell == 1:  # a tick every ten columns
        ticks = "".join(f"{c:<10}" for c in range(0, cols, 10))[:cols]
        text.append(ticks, style="dim")
    else:
        for c in range(cols):
            text.append(f"{c:>{cell}}"[-cell:] if numbers or c % 2 == 0 else " " * cell, style="dim")
    text.append("\n")
    plain = text.copy()
    span = vmax - vmin
    for r in range(rows):
        for out in (text, plain):
            out.append(f"{r:>{margin - 1}} ", style="dim")
        for c in range(cols):
            w = float(values[r, c])
            label = f"{round(w * scale):>{cell}}" if numbers else " " * cell
            t = 0.0 if span <= 0 else max(0.0, min(1.0, (w - vmin) / span))
            block = label if numbers else _BLOCKS[min(len(_BLOCKS) - 1, int(t * len(_BLOCKS)))] * cell
            style = shade(w, vmax, vmin)
            if (r, c) in marks:
                if label[0] == " ":
                    label = SINK_MARK + label[1:]
                    block = SINK_MARK + block[1:]
                else:
                    style = f"{style} underline"
            text.append(label, style=style)
            plain.append(block)
        if r < rows - 1:
            text.append("\n")
            plain.append("\n")
    return Shaded(text, plain)


class Shaded:
    """A shaded grid: drawn in colour where the console has colour, else with its characters (░▒▓█) alone."""

    def __init__(self, colour: Text, plain: Text) -> None:
        self.colour, self.plain = colour, plain

    def __rich_console__(self, console, options):
        yield self.colour if console.color_system is not None else self.plain


def grid_view(amap: "PatchMap | HeadPanels", width: int = 80) -> Group:
    """A titled patch grid (or one grid per head) for `attn heatmap --terminal`."""
    from attncli.views.maps import HeadPanels, describe_top

    values = amap.values
    vmin, vmax = amap.vmin, amap.vmax
    scale, unit = _unit(float(values.max()) if values.size else 1.0)
    numbers = {"%": "weights in percent", "‰": "weights in per mille (‰)"}.get(unit, f"values in units of {unit[1:]}")
    parts: list = [Text(amap.title, style="bold")]
    if amap.facts.cropped:
        parts.append(line(f"{amap.facts.name}: {amap.facts.cropped}", "dim"))
    marks = amap.sink_cells
    if isinstance(amap, HeadPanels):
        for h in range(values.shape[0]):
            parts += [Text(f"head {h}", style="bold"), grid_text(values[h], vmax, width, vmin, marks)]
    else:
        parts.append(grid_text(values, vmax, width, vmin, marks))
    quantity = view_quantity(amap.method)
    span = f"colours {vmin:.3f}–{vmax:.3f} ({amap.scale.value})"
    note = f"{numbers}; darker = more {quantity}; {span}"
    if amap.outside is not None:
        prefix = "/".join(amap.grid.prefix_labels)
        note += f"; {amap.outside:.0%} of it went to {prefix or 'non-patch tokens'}"
    parts.append(Text(note, style="dim"))
    if not isinstance(amap, HeadPanels):
        parts.append(line(f"top patches (row,col): {describe_top(amap)}"))
    parts += [line(text, "yellow") for text in amap.notes]
    return Group(*parts)


def predictions_table(source: str, model_id: str, predictions: "list[Prediction]", width: int = 80) -> Group:
    """One image's top-k labels with confidences and a bar that takes what they leave of ``width`` (≤ 20)."""
    longest = max([5, *(len(p.label) for p in predictions)])
    bar = min(20, width - (len(str(len(predictions))) + 4 + 3 + longest + 3 + 10 + 3 + 1) - 3)
    table = Table()
    table.add_column("rank", justify="right", style="dim")
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("", no_wrap=True)
    for rank, pred in enumerate(predictions, start=1):
        table.add_row(str(rank), Text(pred.label, style="bold" if rank == 1 else ""), f"{pred.score:.1%}",
                      Text("█" * round(pred.score * max(bar, 0)), style="cyan"))
    return titled(f"{Path(source).name} · {model_id}", table)


def batch_table(rows: "list[ClassifiedImage]", model_id: str, k: int, cls_phrase: str = "") -> Group:
    """One row per image: its top-k labels and where CLS looks."""
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("image", no_wrap=True, overflow="ellipsis")
    for n in range(1, k + 1):
        table.add_column(ordinal(n), no_wrap=True)
    table.add_column("CLS → (row,col)", no_wrap=True)
    for row in rows:
        cells = [Text.assemble((p.label, "bold" if n == 0 else ""), " ", (f"{p.score:.1%}", "cyan"))
                 for n, p in enumerate(row.predictions[:k])]
        cells += [""] * (k - len(cells))
        table.add_row(Path(row.source).name, *cells, " ".join(f"({r},{c})" for r, c, _ in row.cls_top[:2]))
    return titled(f"{len(rows)} images · {model_id}\nCLS → (row,col): {cls_phrase}", table)


def row_table(amap: "TokenRow", width: int = 80) -> Group:
    """One text token's attention over every token, shaded, with a bar (heatmap --text --token --terminal); the
    bar takes what the numbers and labels leave of ``width`` (20 characters at most)."""
    from rich.cells import cell_len

    vmin, vmax = amap.vmin, amap.vmax
    numbers = len(str(len(amap.labels))) + 3 + max([5, *(cell_len(lab) for lab in amap.labels)]) + 3 + 6 + 3 + 1
    bar = min(20, width - numbers - 3)
    bar = bar if bar >= 5 else 0
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("weight", justify="right")
    if bar:
        table.add_column("", no_wrap=True)
    top = float(amap.values.max()) if amap.values.size else 1.0
    for i, (label, special) in enumerate(zip(amap.labels, amap.special)):
        w = float(amap.values[i])
        table.add_row(str(i), Text(label, style="dim italic" if special else "bold"),
                      Text(f"{w:.3f}", style=shade(w, vmax, vmin)),
                      *([Text("█" * round(w / (top or 1.0) * bar), style="cyan")] if bar else []))
    return titled(amap.title, LongTable(table))


def classify_output(view: "ClassifyResult", width: int = 80) -> Group:
    """One image: its labels, the prediction line and where [CLS] looks; several: one row per image."""
    if len(view.rows) > 1:
        # as many label columns as fit: --json has them all
        k = min(max((len(r.predictions) for r in view.rows), default=1), 3 if width >= 100 else 2)
        return Group(batch_table(view.rows, view.model_id, k, view.cls_phrase),
                     *[line(note, "yellow") for note in view.notes])
    row = view.rows[0]
    parts: list = [predictions_table(row.source, view.model_id, row.predictions, width)]
    if row.predictions:
        best = row.predictions[0]
        parts.append(line(f"Prediction: {best.label} (Confidence: {best.score:.1%})"))
    marks = view.first.sink_cells if view.first is not None else set()
    parts.append(line(f"[CLS] ({view.method_note}) looks most at patches (row,col): "
                      + ", ".join(f"({r},{c}){SINK_MARK if (r, c) in marks else ''} {w:.3f}"
                                  for r, c, w in row.cls_top)))
    parts += [line(note, "yellow") for note in view.notes]
    if view.first is not None:  # the map's patch sinks and what --drop-sinks did (its domain note is above)
        parts += [line(note, "yellow") for note in view.first.notes if note not in view.notes]
    return Group(*parts)
