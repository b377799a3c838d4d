"""Renderers for `attn stats` and `attn evaluate`: rich tables and the attention-distance figure."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

    from attncli.views.evaluation import EvalReport
    from attncli.views.stats import StatsReport

_ROLE_STYLE = {"sink": "dim", "previous-token": "magenta", "next-token": "magenta", "self": "yellow",
               "local": "green", "global": "cyan"}


def _num(value: float, digits: int = 3) -> str:
    """A number for a table cell; undefined (NaN) as an en dash."""
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def stats_table(report: "StatsReport", width: int = 80) -> "RenderableType":
    """One row per (layer, head) with every statistic and the role; in blocks of columns when narrower than that.

    A terminal too narrow for every column gets them in blocks one under the other, each starting with layer and
    head, so every number is shown whole (rich would cut them to "2.…").
    """
    from rich.table import Table
    from rich.text import Text

    from attncli.render.tables import line, titled

    digits = 1 if report.unit == "px" else 2
    names = ("layer", "head", "H", "H/max", "dist", "d/unif", "sink", "self", "prev", "next", "role")
    columns = list(zip(names, zip(*[(str(h.layer), str(h.head), _num(h.entropy, 2), _num(h.entropy_norm, 2),
                                      _num(h.distance, digits), _num(h.distance_rel, 2), _num(h.sink, 2),
                                      _num(h.self_, 2), _num(h.prev, 2), _num(h.next, 2),
                                      Text(h.role, style=_ROLE_STYLE.get(h.role, ""))) for h in report.heads])))
    if not report.heads:
        columns = [(name, ()) for name in names]
    widths = [max([len(name), *(Text(c).cell_len if isinstance(c, str) else c.cell_len for c in cells)])
              for name, cells in columns]
    blocks = _column_blocks(widths, keys=2, width=width)
    tables = []
    for block in blocks:
        table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
        for i in block:
            table.add_column(names[i], justify="left" if names[i] == "role" else "right", no_wrap=True)
        for r in range(len(report.heads)):
            table.add_row(*(columns[i][1][r] for i in block))
        tables.append(table)
    unit = "pixels" if report.unit == "px" else "tokens"
    note = (f"H: entropy (nats); H/max: H / log(visible keys); dist: mean attention distance ({unit}); "
            f"d/unif: dist / uniform attention's; role: a score ≥ {report.thresholds['score']:g}, "
            f"else local if d/unif ≤ {report.thresholds['local_distance_rel']:g}, else global")
    return titled(report.title, *tables, line(note, "dim"),
                  *[line(text, "yellow" if report.patch_sinks else "dim") for text in report.notes])


def _column_blocks(widths: list[int], keys: int, width: int) -> list[list[int]]:
    """Column indices in blocks that fit ``width`` (two spaces between columns), each block led by the ``keys``
    first columns; one block when everything fits."""
    def span(cols: list[int]) -> int:
        return sum(widths[i] for i in cols) + 2 * (len(cols) - 1)

    every = list(range(len(widths)))
    if span(every) <= width:
        return [every]
    blocks: list[list[int]] = []
    block = list(range(keys))
    for i in range(keys, len(widths)):
        if len(block) > keys and span(block + [i]) > width:
            blocks.append(block)
            block = list(range(keys))
        block.append(i)
    blocks.append(block)
    return blocks


def distance_figure(report: "StatsReport"):
    """Mean attention distance of every head against its layer (ViT paper, Fig. 7), layer means joined."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    layers = np.array([h.layer for h in report.heads])
    dist = np.array([h.distance for h in report.heads])
    ok = np.isfinite(dist)
    n_heads = max(h.head for h in report.heads) + 1
    jitter = np.array([(h.head - (n_heads - 1) / 2) * 0.3 / max(n_heads, 1) for h in report.heads])
    ax.scatter(layers[ok] + jitter[ok], dist[ok], s=18, alpha=0.75, label="one head")
    shown = sorted(set(layers.tolist()))
    means = [np.nanmean(np.where(layers == layer, dist, np.nan)) if ok[layers == layer].any() else np.nan
             for layer in shown]
    ax.plot(shown, means, color="black", linewidth=1.2, label="layer mean")
    unit = "pixels" if report.unit == "px" else "tokens"
    ax.set_xlabel("layer")
    ax.set_ylabel(f"mean attention distance ({unit})")
    ax.set_xticks(shown)
    ax.set_title(f"{report.model_id}: attention distance per head", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def evaluate_table(report: "EvalReport") -> "RenderableType":
    """One row per method and the random baseline: pointing game, IoU, deletion and insertion AUC."""
    from rich.table import Table
    from rich.text import Text

    from attncli.render.tables import titled

    s = report.settings
    has_masks = any(m.pointing is not None for m in report.scores)
    has_auc = any(m.deletion is not None for m in report.scores)
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("method", no_wrap=True)
    if has_masks:
        table.add_column("pointing ↑", justify="right")
        table.add_column(f"IoU@{s['top_percent']:g}% ↑", justify="right")
    if has_auc:
        table.add_column("deletion AUC ↓", justify="right")
        table.add_column("insertion AUC ↑", justify="right")
    table.add_column("ms/map", justify="right")
    for m in report.scores:
        cells = [Text(m.method, style="dim" if m.method == "random" else "bold")]
        if has_masks:
            cells += [f"{m.pointing:.1%}", f"{m.iou:.3f}"]
        if has_auc:
            cells += [f"{m.deletion:.3f}", f"{m.insertion:.3f}"]
        cells.append(f"{m.seconds * 1000:.1f}")
        table.add_row(*cells)
    what = (f"shapes set: {report.n} fresh images (seed {report.seed})" if report.dataset == "shapes"
            else f"{report.n} image{'s' if report.n != 1 else ''}")
    title = f"Faithfulness · {report.model_id} · {what}"
    if report.accuracy is not None:
        title += f" · accuracy {report.accuracy:.1%}"
    notes = [f"CLS maps on the {s['grid']} patch grid; layer {s['layer']}, heads fused by {s['fuse']}; "
             f"target: {s['target']}; random = uniform noise maps"]
    if has_masks:
        notes.append(f"pointing: top patch centre within {s['tolerance_px']:g} px of the object (tied tops: the "
                     f"share that hit); IoU of the top {s['top_percent']:g}% patches with the mask; "
                     "other ties broken at random (seeded)")
    if has_auc:
        notes.append(f"deletion/insertion: target probability as patches change in map order "
                     f"({s['patches_per_step']} per step, baseline {s['baseline']})")
    return titled(title, table, Text("\n".join(notes), style="dim"))
