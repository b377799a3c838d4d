"""Corpus statistics (attncli.corpus.report) on the terminal, as a per-head figure and as one static HTML page."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attncli.corpus.report import CorpusReport

FIGURE_STATS = ("cls", "sep", "punct", "prev", "self", "next", "distance_rel", "entropy_norm")
LABELS = {"cls": "→ [CLS]/BOS", "sep": "→ [SEP]/EOS", "punct": "→ punctuation", "prev": "→ previous token",
          "self": "→ itself", "next": "→ next token", "distance_rel": "distance / uniform's",
          "entropy_norm": "entropy / max", "sink": "→ sink tokens", "sinkfreq": "inputs with a sink token"}


def _cell(mean: float, half: float) -> str:
    """'0.412±0.013', '–' when undefined."""
    if not math.isfinite(mean):
        return "–"
    digits = 1 if abs(mean) >= 1 else 2
    return f"{mean:.{digits}f}" + (f"±{half:.{digits}f}" if math.isfinite(half) else "")


def corpus_table(view: "CorpusReport", width: int = 80) -> Any:
    """One row per head: role (share of inputs), then input-weighted means ±95% of the main statistics."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from attncli.corpus.report import TABLE_STATS

    image = view.run.modality == "image"
    stats = [s for s in TABLE_STATS if not (image and s in ("sep", "punct"))]
    table = Table(title=view.title, title_justify="left", box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for name in ("layer", "head", "role (inputs)", *stats):  # input-weighted means ±95%
        table.add_column(name, justify="left" if name.startswith("role") else "right", no_wrap=True)
    freq = view.sink_frequency()
    if freq is not None:
        table.add_column("sink in", justify="right", no_wrap=True)
    layers, heads = view.run.running.a["n"].shape[1:]
    for layer in range(layers):
        for head in range(heads):
            role, share = view.role(layer, head)
            cells = [str(layer), str(head), f"{role} {share:.0%}"]
            cells += [_cell(float(view.value(s)[layer, head]), float(view.interval(s)[layer, head])) for s in stats]
            if freq is not None:
                cells.append(f"{freq[layer, head]:.0%}")
            table.add_row(*cells)
    notes = ["input-weighted means ±95% interval over inputs; token-weighted means, counts and every statistic: "
             "--json or --save FILE.parquet"] + view.all_notes()
    if image:
        sinks = view.run.running.a.get("sink_any")
        if sinks is not None:
            notes.append("inputs with a patch sink, by layer: " + ", ".join(
                f"{i}: {v / max(view.inputs, 1):.0%}" for i, v in enumerate(sinks)))
    return Group(table, *(Text(n) for n in notes))


def corpus_figure(view: "CorpusReport") -> Any:
    """Layers × heads grid of each statistic (input-weighted means), in the manner of Clark et al. (2019)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    image = view.run.modality == "image"
    panels = [(s, view.value(s)) for s in FIGURE_STATS if not (image and s in ("sep", "punct"))]
    freq = view.sink_frequency()
    if freq is not None:
        panels.append(("sinkfreq", freq))
    cls = view.cls_map()
    extra = [] if cls is None else [("cls map", cls[i]) for i in range(cls.shape[0])]
    cols = 4
    rows = math.ceil(len(panels) / cols) + math.ceil(len(extra) / cols)
    layers, heads = view.run.running.a["n"].shape[1:]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * max(2.6, heads * 0.35 + 1.2), rows * max(2.4, layers * 0.3 + 1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, grid) in zip(axes.flat, panels):
        ax.axis("on")
        data = np.asarray(grid, dtype=float)
        top = 1.0 if name not in ("distance_rel",) else max(1.0, float(np.nanmax(data)) if np.isfinite(data).any() else 1)
        im = ax.imshow(data, cmap="viridis", vmin=0, vmax=top, aspect="auto", interpolation="nearest")
        ax.set_title(LABELS.get(name, name), fontsize=9)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.set_xticks(range(heads))
        ax.set_yticks(range(layers))
        ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    start = math.ceil(len(panels) / cols) * cols
    for i, (_name, grid) in enumerate(extra):
        ax = axes.flat[start + i]
        ax.axis("on")
        ax.imshow(grid, cmap="inferno", interpolation="nearest")
        ax.set_title(f"layer {i}: mean [CLS] map", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(view.title + "\ninput-weighted means over the corpus", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))  # room for the two-line title
    return fig


def write_figure(view: "CorpusReport", path: Path) -> Path:
    """The figure, written atomically (format from the suffix)."""
    import matplotlib.pyplot as plt

    from attncli.render.figures import save_figure

    fig = corpus_figure(view)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def write_page(view: "CorpusReport", path: Path) -> Path:
    """One self-contained page: the figure (inline PNG), the table of heads, the notes and the definitions."""
    import io

    import matplotlib.pyplot as plt

    from attncli.corpus.report import DEFINITIONS, TABLE_STATS
    from attncli.render.figures import write_bytes

    fig = corpus_figure(view)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    head_rows = []
    layers, heads = view.run.running.a["n"].shape[1:]
    for layer in range(layers):
        for head in range(heads):
            role, share = view.role(layer, head)
            cells = "".join(f"<td>{html.escape(_cell(float(view.value(s)[layer, head]), float(view.interval(s)[layer, head])))}</td>"
                            for s in TABLE_STATS)
            head_rows.append(f"<tr><td>{layer}</td><td>{head}</td><td>{html.escape(role)} ({share:.0%})</td>{cells}</tr>")
    header = "".join(f"<th>{html.escape(s)}</th>" for s in ("layer", "head", "role (inputs)", *TABLE_STATS))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in view.all_notes())
    defs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in DEFINITIONS.items())
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">\n"
        f"<title>{html.escape(view.title)}</title>\n<style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;font-variant-numeric:tabular-nums}"
        "img{max-width:100%}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(view.title)}</h1>\n<p>Input-weighted means ±95% interval over inputs (token-weighted "
        "means: the JSON output).</p>\n"
        f"<img alt=\"per-head statistics\" src=\"data:image/png;base64,{png}\">\n<ul>{notes}</ul>\n"
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(head_rows)}</tbody></table>\n"
        f"<h2>Definitions</h2><dl>{defs}</dl>\n</body>\n</html>\n")
    return write_bytes(Path(path), page.encode("utf-8"))
