"""Figures as files (PNG, SVG, PDF): attention over an image, per-head panels, token matrices, the patch grid.

matplotlib is imported inside the functions, without pyplot (no GUI backend, no global state); each
figure is rendered into memory and written atomically, so a failed render never leaves a partial file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from attncli.errors import AttnError, UsageError

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from attncli.capture import Capture
    from attncli.grid import PatchGrid
    from attncli.views.maps import AttentionMap

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DPI = 150
OVERLAY_CMAP = "inferno"


def figure_format(path: Path) -> str:
    """matplotlib format name from the file suffix; anything but .png/.svg/.pdf is a usage error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"-o {path}: unknown figure format {Path(path).suffix or '(no suffix)'}",
                         "end the file name with .png, .svg or .pdf")
    return fmt


def check_output(path: Path, inputs: Iterable[Path | str] = ()) -> Path:
    """Refuse an output path before any work: bad suffix, a folder, one of the inputs, or an unwritable folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder", "give a file name such as heatmap.png")
    figure_format(path)
    for item in inputs:
        item = Path(item)
        if item.exists() and path.exists() and path.resolve() == item.resolve():
            raise UsageError(f"-o {path} is one of the inputs",
                             "choose another file name; inputs are never overwritten")
    parent = path.parent  # as typed, so errors name what the user wrote
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"-o {path}: {existing} is a file, not a folder", "choose a file name in a folder")
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"-o {path}: cannot write in {existing or parent}", "choose a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"-o {path}: the file is read-only", "choose another file name")
    return path


def save_figure(fig: "Figure", path: Path) -> Path:
    """Render a figure in memory and write it atomically; the format follows the suffix."""
    from attncli.store import write_atomic

    path = Path(path)
    fmt = figure_format(path)
    buf = io.BytesIO()
    # No creation date: the same capture renders to the same SVG/PDF bytes run to run.
    metadata = {"png": {"Software": "attncli"}, "svg": {"Creator": "attncli", "Date": None},
                "pdf": {"Creator": "attncli", "CreationDate": None}}[fmt]
    # zlib level 1: half the encoding time of the default for ~25% more bytes (it dominates a re-render)
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata, **extra)
    try:
        return write_atomic(path, buf.getvalue())
    except OSError as exc:
        raise AttnError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable folder") from None


def new_figure(width: float, height: float) -> "Figure":
    """A pyplot-free figure."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def panel_axes(fig: "Figure", n: int, cols: int) -> tuple[list, "np.ndarray"]:
    """A rows × cols grid of tick-less panels: the first n axes to draw in, and the whole grid (extras hidden)."""
    import math

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


def _title(capture: "Capture", amap: "AttentionMap") -> str:
    """'model · layer 6 · mean of 12 heads' plus what the map shows."""
    head = amap.how(capture.n_heads)
    line = f"{capture.model_id}\nlayer {amap.layer} · {head}"
    if amap.kind in ("grid", "heads"):
        prefix = "/".join(t for t, s in zip(amap.labels, amap.special) if s)
        noun = "relevance" if amap.method == "grad-rollout" else "attention"  # gradient rollout is not a weight
        line += f"\n{noun} of {amap.who} over the patches"
        if amap.outside is not None:
            line += f" ({amap.outside:.0%} went to {prefix or 'other tokens'})"
    return line


def _image_name(capture: "Capture") -> str:
    """Short name of the captured image for panel titles."""
    return Path(capture.source).name if capture.source else "input"


def overlay_figure(capture: "Capture", amap: "AttentionMap") -> "Figure":
    """The image as the model saw it, and the same image with the map upsampled over it and a colour bar."""
    image = capture.image
    grid = capture.grid
    height, width = image.shape[:2]
    # Fixed axes instead of a layout engine: this is the figure `attn heatmap` draws by default, and
    # constrained layout doubles its render time.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 4.9))
    left = fig.add_axes((0.01, 0.03, 0.43, 0.76))
    right = fig.add_axes((0.46, 0.03, 0.43, 0.76))
    left_title, right_title = _overlay_captions(capture)
    left.imshow(image)
    left.set_title(left_title, fontsize=9)
    right.imshow(image)
    vmax = float(amap.values.max()) or 1.0
    shown = right.imshow(upsample(amap.values, height, width), cmap=OVERLAY_CMAP, alpha=0.6, vmin=0.0, vmax=vmax,
                         interpolation="nearest")
    if amap.query is not None and amap.query >= grid.prefix:
        row, col = grid.cell_of(amap.query)
        _mark_patch(right, row, col, grid, width, height)
    right.set_title(right_title, fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, cax=fig.add_axes((0.905, 0.08, 0.015, 0.66)))
    bar.set_label("relevance" if amap.method == "grad-rollout" else "attention weight", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(_title(capture, amap), fontsize=10, y=0.975)
    return fig


def upsample(values: "np.ndarray", height: int, width: int) -> "np.ndarray":
    """(rows, cols) map → (height, width) by bilinear interpolation between patch centres, edges clamped."""
    import numpy as np
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)  # (height, width)


def _overlay_captions(capture: "Capture") -> tuple[str, str]:
    """Captions of the two overlay panels: the input, and the grid with the top prediction."""
    height, width = capture.image.shape[:2]
    grid = capture.grid
    pred = f" · predicted: {capture.predictions[0].label} ({capture.predictions[0].score:.1%})" \
        if capture.predictions else ""
    return (f"{_image_name(capture)} as the model sees it ({width}×{height})",
            f"{grid.rows}×{grid.cols} patch grid{pred}")


def render_heatmap(capture: "Capture", amap: "AttentionMap", path: Path) -> Path:
    """Write the heatmap figure to path: the overlay PNG with Pillow alone (fast), anything else via matplotlib."""
    if amap.kind == "grid" and figure_format(path) == "png":
        from attncli.render.raster import overlay_png
        from attncli.store import write_atomic

        data = overlay_png(capture, amap, _title(capture, amap), *_overlay_captions(capture))
        try:
            return write_atomic(Path(path), data)
        except OSError as exc:
            raise AttnError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable folder") from None
    return save_figure(heatmap_figure(capture, amap), path)


def _mark_patch(ax, row: int, col: int, grid: "PatchGrid", width: int, height: int) -> None:
    """Outline the query patch."""
    from matplotlib.patches import Rectangle

    pw, ph = width / grid.cols, height / grid.rows
    ax.add_patch(Rectangle((col * pw, row * ph), pw, ph, fill=False, edgecolor="cyan", linewidth=1.5))


def heads_figure(capture: "Capture", amap: "AttentionMap") -> "Figure":
    """One overlay panel per head of a layer, on one shared colour scale."""
    import math

    image = capture.image
    height, width = image.shape[:2]
    n = amap.values.shape[0]
    cols = min(n, 4 if n <= 8 else 6)
    rows = math.ceil(n / cols)
    fig = new_figure(max(6.5, 2.4 * cols + 0.8), 2.4 * rows + 1.0)
    panels, axes = panel_axes(fig, n, cols)
    vmax = float(amap.values.max()) or 1.0
    shown = None
    for h, ax in enumerate(panels):
        ax.imshow(image)
        shown = ax.imshow(upsample(amap.values[h], height, width), cmap=OVERLAY_CMAP, alpha=0.6, vmin=0.0,
                          vmax=vmax, interpolation="nearest")
        ax.set_title(f"head {h} · max {amap.values[h].max():.2f}", fontsize=8)
    bar = fig.colorbar(shown, ax=axes, fraction=0.03, pad=0.01)
    bar.set_label("attention weight (shared scale)", fontsize=8)
    fig.suptitle(_title(capture, amap), fontsize=10)
    return fig


def matrix_figure(capture: "Capture", amap: "AttentionMap") -> "Figure":
    """Token × token attention (or one query's row) with token labels on both axes."""
    import numpy as np

    values = amap.values if amap.values.ndim == 2 else amap.values[None, :]  # (Q, K)
    n_q, n_k = values.shape
    size = min(18.0, max(6.0, 0.28 * n_k + 2.0))
    fig = new_figure(size, min(18.0, max(2.2, 0.28 * n_q + 2.0)) if n_q > 1 else 2.6)
    ax = fig.subplots()
    shown = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=float(values.max()) or 1.0, aspect="auto")
    font = 9 if n_k <= 24 else max(4, int(9 - (n_k - 24) / 10))
    ax.set_xticks(np.arange(n_k), amap.labels, rotation=90, fontsize=font)
    q_labels = amap.labels if amap.kind == "matrix" else [amap.query_label]
    ax.set_yticks(np.arange(n_q), q_labels, fontsize=font)
    ax.set_xlabel("key (attended to)", fontsize=8)
    ax.set_ylabel("query (attending)", fontsize=8)
    q_special = amap.special if amap.kind == "matrix" else [amap.special[amap.query]]
    for ticks, flags in ((ax.get_xticklabels(), amap.special), (ax.get_yticklabels(), q_special)):
        for tick, special in zip(ticks, flags):
            tick.set_color("grey" if special else "black")
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("relevance (rows do not sum to 1)" if amap.method == "grad-rollout"
                  else "attention weight (rows sum to 1)", fontsize=8)
    fig.suptitle(_title(capture, amap), fontsize=10)
    return fig


def heatmap_figure(capture: "Capture", amap: "AttentionMap") -> "Figure":
    """The figure that fits the map: overlay, per-head panels, or token matrix."""
    if amap.kind == "heads":
        return heads_figure(capture, amap)
    if amap.kind == "grid":
        return overlay_figure(capture, amap)
    return matrix_figure(capture, amap)


def patches_figure(
    image: "np.ndarray",
    grid: "PatchGrid",
    model_id: str,
    positions: "np.ndarray | None" = None,
    position_grid: "PatchGrid | None" = None,
    source: str | None = None,
) -> "Figure":
    """Left: the preprocessed image cut into its patch grid with indices. Right: position-embedding similarity."""
    import matplotlib.patheffects as effects

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
    left.set_title(f"{Path(source).name if source else 'input'} after preprocessing: {width}×{height} px →\n"
                   f"{grid.rows}×{grid.cols} patches of {grid.patch_height}×{grid.patch_width} px; tokens = "
                   f"{grid.prefix} prefix ({prefix}) + {grid.n_patches} patches = {grid.n_tokens}", fontsize=9)
    right.set_xticks([])
    right.set_yticks([])
    if positions is None or position_grid is None:
        right.set_axis_off()
        right.text(0.5, 0.5, "this model has no learned absolute position embeddings\n"
                   "(e.g. BEiT uses a relative position bias inside attention)",
                   ha="center", va="center", fontsize=10, transform=right.transAxes)
    else:
        mosaic = similarity_mosaic(positions, position_grid.rows, position_grid.cols)
        shown = right.imshow(mosaic, cmap="viridis", vmin=-1.0, vmax=1.0, interpolation="nearest")
        bar = fig.colorbar(shown, ax=right, fraction=0.046, pad=0.02)
        bar.set_label("cosine similarity", fontsize=8)
        note = "" if (position_grid.rows, position_grid.cols) == (grid.rows, grid.cols) else \
            f"\n(learned for {position_grid.rows}×{position_grid.cols}; interpolated for this input)"
        right.set_title("position embedding similarity: tile (row, col) compares that patch's\n"
                        f"embedding with every other patch's{note}", fontsize=9)
    fig.suptitle(model_id, fontsize=10)
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
