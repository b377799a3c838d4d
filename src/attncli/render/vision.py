"""Image results in the terminal with rich: classification tables and patch grids shaded by attention."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from attncli.render.terminal import ordinal, shade, titled

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Prediction
    from attncli.views.classify import ClassifiedImage
    from attncli.views.maps import AttentionMap


def _unit(vmax: float) -> tuple[float, str]:
    """Scale for the printed numbers: percent when the largest weight is ≥ 0.1, else per mille."""
    return (100.0, "%") if vmax >= 0.1 else (1000.0, "‰")


def grid_text(values: "np.ndarray", vmax: float | None = None, width: int = 80) -> Text:
    """(rows, cols) weights as lines of shaded cells, row and column numbers at the edges.

    Cells show the weight in % (or ‰ when all weights are small) when the grid fits ``width``
    at three characters a cell, else plain two-character blocks.
    """
    rows, cols = values.shape
    vmax = float(values.max()) if vmax is None else vmax
    scale, _ = _unit(vmax)
    margin = len(str(rows - 1)) + 1
    cell = 3 if margin + cols * 3 <= width else 2
    numbers = cell == 3
    text = Text(no_wrap=True, overflow="ignore")
    text.append(" " * margin)
    for c in range(cols):
        text.append(f"{c:>{cell}}"[-cell:] if numbers or c % 2 == 0 else " " * cell, style="dim")
    text.append("\n")
    for r in range(rows):
        text.append(f"{r:>{margin - 1}} ", style="dim")
        for c in range(cols):
            w = float(values[r, c])
            label = f"{round(w * scale):>{cell}}" if numbers else " " * cell
            text.append(label, style=shade(w, vmax))
        if r < rows - 1:
            text.append("\n")
    return text


def grid_view(amap: "AttentionMap", n_heads: int, width: int = 80) -> Group:
    """A titled patch grid (or one grid per head) for `attn heatmap --terminal`."""
    from attncli.views.maps import describe_top

    values = amap.values
    vmax = float(values.max()) if values.size else 1.0
    scale, unit = _unit(vmax)
    numbers = "weights in " + ("percent" if unit == "%" else "per mille (‰)")
    title = Text(f"Layer {amap.layer} · {amap.how(n_heads)} · {amap.who} → patches · {amap.model_id}",
                 style="bold")
    parts: list = [title]
    if amap.kind == "heads":
        for h in range(values.shape[0]):
            parts += [Text(f"head {h}", style="bold"), grid_text(values[h], vmax, width)]
    else:
        parts.append(grid_text(values, vmax, width))
    quantity = "relevance" if amap.method == "grad-rollout" else "attention"
    note = f"{numbers}; darker = more {quantity} (max {vmax:.3f})"
    if amap.outside is not None:
        prefix = "/".join(label for label, special in zip(amap.labels, amap.special) if special)
        note += f"; {amap.outside:.0%} of it went to {prefix or 'non-patch tokens'}"
    parts.append(Text(note, style="dim"))
    if amap.kind == "grid":
        parts.append(Text(f"top patches (row,col): {describe_top(amap)}"))
    return Group(*parts)


def predictions_table(source: str, model_id: str, predictions: "list[Prediction]") -> Group:
    """One image's top-k labels with confidences and a bar."""
    table = Table()
    table.add_column("rank", justify="right", style="dim")
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("", no_wrap=True)
    for rank, pred in enumerate(predictions, start=1):
        table.add_row(str(rank), Text(pred.label, style="bold" if rank == 1 else ""), f"{pred.score:.1%}",
                      Text("█" * round(pred.score * 20), style="cyan"))
    return titled(f"{Path(source).name} · {model_id}", table)


def batch_table(rows: "list[ClassifiedImage]", model_id: str, k: int) -> Group:
    """One row per image: its top-k labels and where CLS looks at the last layer."""
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
    return titled(f"{len(rows)} images · {model_id}\nCLS → (row,col): where [CLS] looks most at the last layer "
                  "(heads averaged)", table)


def row_table(amap: "AttentionMap", n_heads: int) -> Group:
    """One text token's attention over every token, shaded, with a bar (heatmap --text --query --terminal)."""
    vmax = float(amap.values.max()) if amap.values.size else 1.0
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("weight", justify="right")
    table.add_column("", no_wrap=True)
    for i, (label, special) in enumerate(zip(amap.labels, amap.special)):
        w = float(amap.values[i])
        table.add_row(str(i), Text(label, style="dim italic" if special else "bold"),
                      Text(f"{w:.3f}", style=shade(w, vmax)), Text("█" * round(w / (vmax or 1.0) * 20), style="cyan"))
    return titled(f"Layer {amap.layer} · {amap.how(n_heads)} · what \"{amap.query_label}\" (token {amap.query}) "
                  f"attends to · {amap.model_id}", table)
