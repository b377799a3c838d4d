"""Figures as files (PNG, SVG, PDF): attention over an image, per-head panels, token matrices, the patch grid.

matplotlib is imported inside the functions, without pyplot (no GUI backend, no global state); each
figure is rendered into memory and written atomically, so a failed render never leaves a partial file.
Long inputs stay readable: figures are capped in size and, past ``MAX_LABELS`` tokens, only every n-th
token is labelled (the axis label says so).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from attncli.errors import AttnError, UsageError
from attncli.outputs import FIGURE_SUFFIXES

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from attncli.views.explain import LayerMatrix, TokenProfile
    from attncli.views.maps import HeadPanels, ImageFacts, PatchMap, TokenRow
    from attncli.views.patches import PatchesView

DPI = 150
OVERLAY_CMAP = "inferno"
MAX_INCHES = 12.0  # 1800 px at DPI: a long input gets thinner labels, not a bigger image
MAX_LABELS = 60  # tokens labelled along one axis before labels are thinned


def figure_format(path: Path) -> str:
    """matplotlib format name from the file suffix; anything but .png/.svg/.pdf is a usage error."""
    fmt = FIGURE_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"-o {path}: unknown figure format {Path(path).suffix or '(no suffix)'}",
                         "end the file name with .png, .svg or .pdf")
    return fmt


def write_bytes(path: Path, data: bytes) -> Path:
    """Write a rendered file atomically, as a one-line error when the disk refuses."""
    from attncli.cache import write_atomic

    try:
        return write_atomic(Path(path), data)
    except OSError as exc:
        raise AttnError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable folder") from None


def save_figure(fig: "Figure", path: Path) -> Path:
    """Render a figure in memory and write it atomically; the format follows the suffix."""
    import warnings

    path = Path(path)
    fmt = figure_format(path)
    buf = io.BytesIO()
    # No creation date: the same capture renders to the same SVG/PDF bytes run to run.
    metadata = {"png": {"Software": "attncli"}, "svg": {"Creator": "attncli", "Date": None},
                "pdf": {"Creator": "attncli", "CreationDate": None}}[fmt]
    # zlib level 1: half the encoding time of the default for ~25% more bytes (it dominates a re-render)
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # drawn as a box
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata, **extra)
    return write_bytes(path, buf.getvalue())


def new_figure(width: float, height: float, layout: str | None = "constrained") -> "Figure":
    """A pyplot-free figure."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def panel_axes(fig: "Figure", n: int, cols: int) -> tuple[list, "np.ndarray"]:
    """A rows × cols grid of tick-less panels: the first n axes to draw in, and the whole grid (extras hidden)."""
    rows = math.ceil(n / cols)
    grid = fig.subplots(rows, cols, squeeze=False)
    panels = []
    for i, ax in enumerate(grid.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < n:
            panels.append(ax)
        else:
            ax.set_axis_off()
    return panels, grid


def printable(text: str) -> str:
    """Control characters (bytes of a half-decoded token) as U+FFFD, so matplotlib has a glyph for everything."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def label_axis(ax, axis: str, labels: Sequence[str], special: Sequence[bool]) -> str:
    """Token labels along an axis, every n-th one past MAX_LABELS; returns a note when labels were thinned."""
    import numpy as np

    n = len(labels)
    step = max(1, math.ceil(n / MAX_LABELS))
    where = np.arange(0, n, step)
    font = 9 if n <= 24 else 7
    texts = [printable(labels[i]) for i in where]
    if axis == "x":
        ax.set_xticks(where, texts, rotation=90, fontsize=font)
        ticks = ax.get_xticklabels()
    else:
        ax.set_yticks(where, texts, fontsize=font)
        ticks = ax.get_yticklabels()
    for tick, i in zip(ticks, where):
        tick.set_color("grey" if special[i] else "black")
    return f"1 token in {step} labelled" if step > 1 else ""


def suptitle(fig: "Figure", title: str, notes: Sequence[str] = ()) -> None:
    """The view's title and notes on top of the figure."""
    fig.suptitle("\n".join(printable(line) for line in [title, *notes]), fontsize=9)


def _matrix_size(n_rows: int, n_cols: int) -> tuple[float, float]:
    """Figure size for a matrix: grows with the tokens up to MAX_INCHES."""
    width = min(MAX_INCHES, max(6.0, 0.28 * n_cols + 2.5))
    height = min(MAX_INCHES, max(2.6, 0.28 * n_rows + 2.5)) if n_rows > 1 else 2.8
    return width, height


def matrix_figure(view: "LayerMatrix") -> "Figure":
    """Token × token map with token labels on both axes (rows: query, columns: key)."""
    values = view.matrix  # (Q, K)
    return _matrix(values, view.labels, view.special, view.labels, view.special, view.vmin, view.vmax, view.title,
                   view.notes, "query (attending)", _bar_label(view.method.value, rows=True, sinks=getattr(view, "sinks", False)))


def row_figure(view: "TokenRow") -> "Figure":
    """One query token's row over every token."""
    return _matrix(view.values[None, :], view.labels, view.special, [view.query_label],
                   [view.special[view.query]], view.vmin, view.vmax, view.title, [], "query",
                   _bar_label(view.method.value, rows=True, sinks=getattr(view, "sinks", False)))


def profile_figure(view: "TokenProfile") -> "Figure":
    """One token's row at every layer: layers down, tokens across."""
    layers = [str(i) for i in view.layer_numbers]
    vmax = float(view.rows.max()) or 1.0
    return _matrix(view.rows, view.labels, view.special, layers, [False] * len(layers), 0.0, vmax, view.title,
                   view.notes, "layer", _bar_label(view.method.value, rows=True, sinks=getattr(view, "sinks", False)))


def _bar_label(method: str, rows: bool, sinks: bool = False) -> str:
    """Colour bar label: the method's quantity when its rows do not sum to 1 (relevance, norm), else attention weight."""
    from attncli.methods.registry import info

    m = info(method)
    if not m.sums_to_one:
        return f"{m.quantity} (rows do not sum to 1)" if rows else m.quantity
    if sinks and m.raw:
        return "attention weight (rows sum to at most 1: learned sinks)" if rows else "attention weight"
    return "attention weight (rows sum to 1)" if rows else "attention weight"


def _matrix(values: "np.ndarray", x_labels: Sequence[str], x_special: Sequence[bool], y_labels: Sequence[str],
            y_special: Sequence[bool], vmin: float, vmax: float, title: str, notes: Sequence[str], y_name: str,
            bar_label: str) -> "Figure":
    """A labelled heatmap of a (rows, cols) array."""
    n_q, n_k = values.shape
    fig = new_figure(*_matrix_size(n_q, n_k))
    ax = fig.subplots()
    shown = ax.imshow(values, cmap="Blues", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    x_note = label_axis(ax, "x", x_labels, x_special)
    y_note = label_axis(ax, "y", y_labels, y_special)
    ax.set_xlabel("key (attended to)" + (f" · {x_note}" if x_note else ""), fontsize=8)
    ax.set_ylabel(y_name + (f" · {y_note}" if y_note else ""), fontsize=8)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label(bar_label, fontsize=8)
    suptitle(fig, title, notes)
    return fig


def map_caption(amap: "PatchMap | HeadPanels") -> str:
    """'attention of [CLS] over the patches (12% went to [CLS])'."""
    line = f"{amap.quantity} of {amap.who} over the patches"
    if amap.outside is not None:
        line += f" ({amap.outside:.0%} went to {'/'.join(amap.grid.prefix_labels) or 'other tokens'})"
    return line


HEADING_CHARS = 130  # characters per heading line of a map figure (10 pt on a 9.6 in figure)


def map_heading(amap: "PatchMap | HeadPanels", wrap: bool = True) -> str:
    """The title, the caption, how the file was resized or cropped, the view's notes (patch sinks), one per line.

    ``wrap``: lines longer than HEADING_CHARS are broken at spaces (the Pillow PNG wraps by pixels instead).
    """
    import textwrap

    framing = [f"{amap.facts.name}: {amap.facts.cropped}"] if amap.facts.cropped else []
    lines = [amap.title, map_caption(amap), *framing, *amap.notes]
    pieces = [piece for line in lines for piece in (textwrap.wrap(line, HEADING_CHARS) or [""])] if wrap else lines
    return "\n".join(printable(piece) for piece in pieces)


def overlay_captions(facts: "ImageFacts") -> tuple[str, str]:
    """Captions of the two overlay panels: the input as the model saw it (sizes), the grid with the top prediction.

    A crop or a changed aspect ratio is a line of the heading (map_heading): it can be long.
    """
    height, width = facts.image.shape[:2]
    pred = f" · predicted: {facts.prediction.label} ({facts.prediction.score:.1%})" if facts.prediction else ""
    return (f"{facts.name} as the model sees it ({facts.sizes or f'{width}×{height}'})",
            f"{facts.grid.rows}×{facts.grid.cols} patch grid{pred}")


def overlay_figure(amap: "PatchMap") -> "Figure":
    """The image as the model saw it, and the same image with the map upsampled over it and a colour bar."""
    from attncli.render.raster import upsample

    image = amap.facts.image
    height, width = image.shape[:2]
    heading = map_heading(amap)
    # Fixed axes instead of a layout engine (constrained layout doubles the render time); the figure grows by
    # one text line (0.17 in) per heading line, so notes never run into the panels.
    panels, below, above = 3.72, 0.15, 0.45 + 0.17 * (heading.count("\n") + 1)
    total = panels + below + above
    fig = new_figure(9.6, total, layout=None)
    left = fig.add_axes((0.01, below / total, 0.43, panels / total))
    right = fig.add_axes((0.46, below / total, 0.43, panels / total))
    left_title, right_title = overlay_captions(amap.facts)
    left.imshow(image)
    left.set_title(left_title, fontsize=9)
    right.imshow(image)
    shown = right.imshow(upsample(amap.values, height, width), cmap=OVERLAY_CMAP, alpha=0.6, vmin=amap.vmin,
                         vmax=amap.vmax, interpolation="nearest")
    _mark_grid(right, amap, width, height)
    if amap.cell is not None:
        _mark_patch(right, *amap.cell, amap.grid, width, height)
    right.set_title(right_title, fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, cax=fig.add_axes((0.905, (below + 0.25) / total, 0.015, (panels - 0.5) / total)))
    bar.set_label(_bar_label(amap.method.value, rows=False), fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(heading, fontsize=10, y=1 - 0.1 / total, va="top")
    return fig


def write_overlay(amap: "PatchMap", path: Path) -> Path:
    """The heatmap overlay: PNG drawn with Pillow alone (fast), SVG/PDF via matplotlib."""
    if figure_format(path) == "png":
        from attncli.render.raster import overlay_png

        return write_bytes(path, overlay_png(amap, map_heading(amap, wrap=False), *overlay_captions(amap.facts)))
    return save_figure(overlay_figure(amap), path)


def _mark_grid(ax, amap: "PatchMap | HeadPanels", width: int, height: int) -> None:
    """Thin white patch borders over the smoothed map, and a green diamond on each patch sink."""
    from matplotlib.patches import Polygon

    from attncli.render.raster import GRID_ALPHA, SINK_COLOUR, diamond

    grid = amap.grid
    pw, ph = width / grid.cols, height / grid.rows
    for c in range(1, grid.cols):
        ax.axvline(c * pw - 0.5, color="white", alpha=GRID_ALPHA, linewidth=0.5)
    for r in range(1, grid.rows):
        ax.axhline(r * ph - 0.5, color="white", alpha=GRID_ALPHA, linewidth=0.5)
    for row, col in sorted(amap.sink_cells):
        corners = diamond(col * pw - 0.5, row * ph - 0.5, pw, ph)
        ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor=SINK_COLOUR, linewidth=1.5))


def _mark_patch(ax, row: int, col: int, grid, width: int, height: int) -> None:
    """Outline the query patch."""
    from matplotlib.patches import Rectangle

    pw, ph = width / grid.cols, height / grid.rows
    ax.add_patch(Rectangle((col * pw, row * ph), pw, ph, fill=False, edgecolor="cyan", linewidth=1.5))


def heads_figure(amap: "HeadPanels") -> "Figure":
    """One overlay panel per head of a layer, on one shared colour scale."""
    from attncli.render.raster import upsample

    image = amap.facts.image
    height, width = image.shape[:2]
    n = amap.values.shape[0]
    cols = min(n, 4 if n <= 8 else 6)
    rows = math.ceil(n / cols)
    fig = new_figure(max(6.5, 2.4 * cols + 0.8), 2.4 * rows + 1.0)
    panels, axes = panel_axes(fig, n, cols)
    shown = None
    for h, ax in enumerate(panels):
        ax.imshow(image)
        shown = ax.imshow(upsample(amap.values[h], height, width), cmap=OVERLAY_CMAP, alpha=0.6, vmin=amap.vmin,
                          vmax=amap.vmax, interpolation="nearest")
        _mark_grid(ax, amap, width, height)
        ax.set_title(f"head {h} · max {amap.values[h].max():.2f}", fontsize=8)
    bar = fig.colorbar(shown, ax=axes, fraction=0.03, pad=0.01)
    bar.set_label("attention weight (shared scale)", fontsize=8)
    fig.suptitle(map_heading(amap), fontsize=10)
    return fig


def patches_figure(view: "PatchesView") -> "Figure":
    """Left: the preprocessed image cut into its patch grid with indices. Right: position-embedding similarity."""
    import matplotlib.patheffects as effects

    image, grid = view.facts.image, view.grid
    height, width = image.shape[:2]
    fig = new_figure(11.0, 5.6)
    left, right = fig.subplots(1, 2)
    left.imshow(image, extent=(0, width, height, 0))
    for c in range(1, grid.cols):
        left.axvline(c * grid.patch_width, color="white", linewidth=0.6)
    for r in range(1, grid.rows):
        left.axhline(r * grid.patch_height, color="white", linewidth=0.6)
    if grid.n_patches <= 1024:
        font = max(3.0, min(9.0, 180.0 / max(grid.rows, grid.cols)))
        outline = [effects.withStroke(linewidth=1.2, foreground="black")]
        for r in range(grid.rows):
            for c in range(grid.cols):
                left.text((c + 0.5) * grid.patch_width, (r + 0.5) * grid.patch_height, str(r * grid.cols + c),
                          ha="center", va="center", fontsize=font, color="white", path_effects=outline)
    left.set_xticks([])
    left.set_yticks([])
    prefix = ", ".join(grid.prefix_labels)
    size = f" (from {view.facts.resized.split(' → ')[0]})" if view.facts.resized else ""
    left.set_title(f"{view.facts.name} after preprocessing: {width}×{height} px{size} →\n"
                   f"{grid.rows}×{grid.cols} patches of {grid.patch_height}×{grid.patch_width} px; tokens = "
                   f"{grid.prefix} prefix ({prefix}) + {grid.n_patches} patches = {grid.n_tokens}\n"
                   "patch index = row × cols + col", fontsize=9)
    right.set_xticks([])
    right.set_yticks([])
    if view.positions is None or view.position_grid is None:
        right.set_axis_off()
        right.text(0.5, 0.5, "this model has no learned absolute position embeddings\n"
                   "(e.g. BEiT uses a relative position bias inside attention)",
                   ha="center", va="center", fontsize=10, transform=right.transAxes)
    else:
        pgrid = view.position_grid
        mosaic = similarity_mosaic(view.positions, pgrid.rows, pgrid.cols)
        shown = right.imshow(mosaic, cmap="viridis", vmin=-1.0, vmax=1.0, interpolation="nearest")
        bar = fig.colorbar(shown, ax=right, fraction=0.046, pad=0.02)
        bar.set_label("cosine similarity", fontsize=8)
        note = "" if (pgrid.rows, pgrid.cols) == (grid.rows, grid.cols) else \
            f"\n(learned for {pgrid.rows}×{pgrid.cols}; interpolated for this input)"
        right.set_title("position embedding similarity: tile (row, col) compares that patch's\n"
                        f"embedding with every other patch's{note}", fontsize=9)
    fig.suptitle(view.model_id, fontsize=10)
    return fig


def similarity_mosaic(positions: "np.ndarray", rows: int, cols: int) -> "np.ndarray":
    """(patches, dim) embeddings → a (rows, cols) mosaic of (rows, cols) cosine-similarity tiles, NaN gaps."""
    import numpy as np

    norms = np.linalg.norm(positions, axis=-1, keepdims=True)  # keepdims: each row by its own norm
    unit = positions / np.where(norms > 0, norms, 1.0)
    sims = unit @ unit.T  # (P, P)
    gap = 1
    out = np.full((rows * (rows + gap) - gap, cols * (cols + gap) - gap), np.nan, dtype=np.float32)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        top, left = r * (rows + gap), c * (cols + gap)
        out[top:top + rows, left:left + cols] = sims[i].reshape(rows, cols)
    return out
