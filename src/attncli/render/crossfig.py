"""Cross-attention figures: the align heatmap (target × source) and one small overlay per caption word.

matplotlib without pyplot, like render/figures.py; save the result with figures.save_figure (atomic).
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from attncli.render.figures import OVERLAY_CMAP, new_figure, panel_axes
from attncli.render.terminal import how

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from attncli.views.cross import AlignView, CaptionView


def _printable(text: str) -> str:
    """Control characters (bytes of a half-decoded token) as U+FFFD, so matplotlib has a glyph for everything."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def align_figure(view: "AlignView") -> "Figure":
    """Target tokens (rows) × source tokens (columns), shaded by cross-attention, best source outlined."""
    import numpy as np
    from matplotlib.patches import Rectangle

    n_t, n_s = view.matrix.shape
    fig = new_figure(min(18.0, max(4.5, 0.32 * n_s + 2.5)), min(18.0, max(3.0, 0.32 * n_t + 2.2)))
    ax = fig.subplots()
    shown = ax.imshow(view.matrix, cmap="Blues", vmin=0.0, vmax=float(view.matrix.max()) or 1.0, aspect="auto")
    font = 9 if max(n_s, n_t) <= 24 else max(4, int(9 - (max(n_s, n_t) - 24) / 10))
    ax.set_xticks(np.arange(n_s), [_printable(t) for t in view.source_labels], rotation=90, fontsize=font)
    ax.set_yticks(np.arange(n_t), [_printable(t) for t in view.target_labels], fontsize=font)
    for tick, special in zip(ax.get_xticklabels(), view.source_special):
        tick.set_color("grey" if special else "black")
    for tick, special in zip(ax.get_yticklabels(), view.target_special):
        tick.set_color("grey" if special else "black")
    for t, best in enumerate(view.best()):
        if best is not None:
            ax.add_patch(Rectangle((best[0] - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="orange", linewidth=1.2))
    ax.set_xlabel("source token (encoder)", fontsize=8)
    ax.set_ylabel("target token (decoder)", fontsize=8)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("cross-attention (rows sum to 1)", fontsize=8)
    title = f"{view.model_id} · decoder layer {view.layer} · {how(view.head, view.fuse, view.n_heads)}"
    ax.set_title(title + "\norange: best ordinary source token per target token", fontsize=9)
    return fig


def caption_figure(view: "CaptionView", image: "np.ndarray") -> "Figure":
    """The image as the model saw it, then one overlay per word, the caption on top."""
    height, width = image.shape[:2]
    n = len(view.words) + 1
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig = new_figure(2.3 * cols + 0.4, 2.5 * rows + 0.9)
    panels, _ = panel_axes(fig, n, cols)
    for i, ax in enumerate(panels):
        ax.imshow(image)
        if i == 0:
            ax.set_title(f"input ({width}×{height})", fontsize=8)
            continue
        w = i - 1
        values = view.maps[w]  # (rows, cols) raw weights on the patches
        vmax = float(values.max()) or 1.0
        # Each word on its own scale: small words would otherwise vanish next to the strongest one.
        ax.imshow(values, cmap=OVERLAY_CMAP, alpha=0.6, vmin=0.0, vmax=vmax, extent=(0, width, height, 0),
                  interpolation="bilinear")
        style = "italic" if view.word_special[w] else "normal"
        ax.set_title(f"{_printable(view.words[w])} · max {vmax:.2f}", fontsize=8, fontstyle=style)
    caption = textwrap.fill(_printable(view.caption or "(empty caption)"), 90)
    fig.suptitle(f"{caption}\n{view.model_id} · decoder layer {view.layer} · "
                 f"{how(view.head, view.fuse, view.n_heads)} · each word scaled to its own max", fontsize=9)
    return fig
