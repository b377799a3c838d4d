"""Cross-attention figures: the target × source matrix of `attn align`, one overlay per word for `attn caption`."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from attncli.render.figures import OVERLAY_CMAP, label_axis, new_figure, panel_axes, printable, suptitle

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from attncli.views.cross import AlignView, CaptionView


def align_figure(view: "AlignView") -> "Figure":
    """Target tokens (rows) × source tokens (columns), shaded by cross-attention, best source outlined."""
    from matplotlib.patches import Rectangle

    from attncli.render.figures import MAX_INCHES

    n_t, n_s = view.matrix.shape
    fig = new_figure(min(MAX_INCHES, max(4.5, 0.32 * n_s + 2.5)), min(MAX_INCHES, max(3.0, 0.32 * n_t + 2.6)))
    ax = fig.subplots()
    shown = ax.imshow(view.matrix, cmap="Blues", vmin=view.vmin, vmax=view.vmax, aspect="auto",
                      interpolation="nearest")
    x_note = label_axis(ax, "x", view.source_labels, view.source_special)
    y_note = label_axis(ax, "y", view.target_labels, view.target_special)
    for t, best in enumerate(view.best()):
        if best is not None:
            ax.add_patch(Rectangle((best[0] - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="orange", linewidth=1.2))
    ax.set_xlabel("source token (encoder)" + (f" · {x_note}" if x_note else ""), fontsize=8)
    ax.set_ylabel("target token (decoder)" + (f" · {y_note}" if y_note else ""), fontsize=8)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("cross-attention (rows sum to 1)", fontsize=8)
    suptitle(fig, view.title, ["orange: best ordinary source token per target token"])
    return fig


def caption_figure(view: "CaptionView") -> "Figure":
    """The image as the model saw it, then one overlay per word, the caption on top."""
    from attncli.render.raster import upsample

    image = view.image
    height, width = image.shape[:2]
    n = len(view.words) + 1
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig = new_figure(2.3 * cols + 0.4, 2.5 * rows + 1.1)
    panels, _ = panel_axes(fig, n, cols)
    resized = ""
    if view.input_size is not None and tuple(view.input_size) != (width, height):
        resized = f"{view.input_size[0]}×{view.input_size[1]} → "
    for i, ax in enumerate(panels):
        ax.imshow(image)
        if i == 0:
            ax.set_title(f"input ({resized}{width}×{height})", fontsize=8)
            continue
        w = i - 1
        values = view.maps[w]  # (rows, cols) raw weights on the patches
        vmax = float(values.max()) or 1.0
        # Each word on its own scale: small words would otherwise vanish next to the strongest one. Upsampled to
        # the image's pixels first, so the overlay covers the image edge to edge.
        ax.imshow(upsample(values, height, width), cmap=OVERLAY_CMAP, alpha=0.6, vmin=0.0, vmax=vmax,
                  interpolation="nearest")
        style = "italic" if view.word_special[w] else "normal"
        ax.set_title(f"{printable(view.words[w])} · max {vmax:.2f}", fontsize=8, fontstyle=style)
    caption = textwrap.fill(printable(view.caption or "(empty caption)"), 90)
    fig.suptitle(f"{caption}\n{printable(view.title)} · each word scaled to its own max", fontsize=9)
    return fig
