"""Cross-attention figures: the target × source matrix of `attn align`, one overlay per word for `attn caption`,
tokens against time over the spectrogram for `attn align AUDIO`."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from attncli.render.figures import OVERLAY_CMAP, label_axis, new_figure, panel_axes, printable, suptitle

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from attncli.views.cross import AlignView, CaptionView
    from attncli.views.speech import SpeechView


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


def speech_figure(view: "SpeechView") -> "Figure":
    """The spectrogram the model saw on top; below it each token's cross-attention against time, on one time axis."""
    n_t = len(view.target_labels)
    end = view.audio_seconds or len(view.frame_times) * view.frame_seconds
    fig = new_figure(min(16.0, max(7.0, 0.02 * len(view.frame_times) + 6)), min(14.0, 2.4 + 0.28 * n_t + 1.8))
    spec_ax, att_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1.4, max(1.6, 0.28 * n_t)])
    if view.spectrogram is not None and view.spectrogram.size:
        spec_ax.imshow(view.spectrogram, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                       extent=(0.0, end, 0, view.spectrogram.shape[0]))
    spec_ax.set_ylabel("input features", fontsize=8)
    for word in view.words:  # word spans (DTW, then set to the sound), drawn over the spectrogram
        spec_ax.axvspan(word["start"], word["end"], color="white", alpha=0.12, linewidth=0)
        spec_ax.text((word["start"] + word["end"]) / 2, 0.92, printable(word["word"]), color="white", fontsize=7,
                     ha="center", va="top", transform=spec_ax.get_xaxis_transform())
    last = view.frame_times[-1] + view.frame_seconds if view.frame_times else end
    shown = att_ax.imshow(view.matrix, cmap="Blues", vmin=0.0, vmax=view.vmax, aspect="auto",
                          interpolation="nearest", extent=(0.0, last, n_t - 0.5, -0.5))
    y_note = label_axis(att_ax, "y", view.target_labels, view.target_special)
    for t, (_, start, _w) in enumerate(view.peaks()):
        att_ax.plot(start + view.frame_seconds / 2, t, marker="o", markersize=3, color="orange")
        if view.times[t] is not None:
            att_ax.plot(view.times[t], t, marker="|", markersize=9, color="crimson")
    att_ax.set_xlim(0.0, end)
    att_ax.set_xlabel(f"time (s) · one encoder frame = {view.frame_seconds * 1000:g} ms", fontsize=8)
    att_ax.set_ylabel("output token" + (f" · {y_note}" if y_note else ""), fontsize=8)
    bar = fig.colorbar(shown, ax=[spec_ax, att_ax], fraction=0.03, pad=0.01)
    bar.set_label("cross-attention", fontsize=8)
    notes = [part for note in view.notes for part in textwrap.wrap(note, 100)]  # suptitle shows no newlines
    suptitle(fig, view.title, [*notes, "orange: attention peak of this layer · red: DTW token start · shaded: word spans"])
    return fig
