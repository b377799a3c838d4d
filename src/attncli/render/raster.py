"""The default heatmap PNG drawn with Pillow alone: re-rendering a capture imports neither torch nor matplotlib.

Same content as the matplotlib overlay (title, the image as the model saw it, the map over it, a colour bar);
matplotlib is still used for SVG/PDF and the other figures. Importing matplotlib costs about as much as the
rest of a re-render together, which is why this path exists.
"""

from __future__ import annotations

import base64
import io
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image, ImageFont

    from attncli.views.maps import PatchMap

# matplotlib's "inferno" colour map (Nathaniel J. Smith & Stefan van der Walt, CC0), 256 RGB entries.
_INFERNO = "AAAEAQAFAQEGAQEIAgEKAgIMAgIOAwIQBAMSBAMUBQQXBgQZBwUbCAUdCQYfCgciCwckDAgmDQgpDgkrEAktEQowEgoyFAs0FQs3Fgs5GAw8GQw+GwxBHAxDHgxFHwxIIQxKIwxMJAxPJgxRKAtTKQtVKwtXLQtZLwpbMQpcMgpeNApfNglhOAliOQljOwlkPQllPglmQApnQgpoRApoRQppRwtqSQtqSgxrTAxrTQ1sTw1sUQ5sUg5tVA9tVQ9tVxBuWRBuWhFuXBJuXRJuXxNuYRNuYhRuZBVuZRVuZxZuaRZuahdubBhubRhubxlucRluchpudBpudRtudxxteBxteh1tfB1tfR5tfx5sgB9sgiBshCBrhSFrhyFriCJqiiJqjCNpjSNpjyRpkCVokiVokyZnlSZnlydmmCdmmihlmylknSlknypjoCpjoitioyxhpSxgpi1gqC5fqS5eqy9erTBdrjBcsDFbsTJaszJatDNZtjRYtzVXuTVWujZVvDdUvThTvzlSwDpRwTpQwztPxDxOxj1Nxz5MyD9LykBKy0FJzEJIzkNHz0RG0EVF0kZE00dD1EhC1UpB10s/2Ew+2U092k4821A73VE63lI431M34FU24VY14lc041kz5Fox5Vww5l0v514u6GAt6WEr6mMq62Qp62Yo7Gcm7Wkl7mok72wj724h8G8g8XEf8XMd8nQc83Yb83gZ9HkY9XsX9X0V9n4U9oAT94IS94QQ+IUP+IcO+IkM+YsL+YwK+Y4J+pAI+pIH+pQH+5YG+5cG+5kG+5sG+50H/J8H/KEI/KMJ/KUK/KYM/KgN/KoP/KwR/K4S/LAU/LIW/LQY+7Ya+7gd+7of+7wh+74j+sAm+sIo+sQq+sYt+ccv+cky+cs1+M03+M8699E999NA9tVD9tdG9dlJ9dtM9N1P9N9T9OFW8+Na8+Vd8uZh8uhl8upp8ext8e1x8e918fF58vJ98vSC8/WG8/aK9PiO9fmS9vqW+Pua+fyd+v2h/P+k"

PANEL = 600  # longest side of each image panel, pixels
ALPHA = 0.6  # weight of the colour map over the image, as in the matplotlib overlay
GRID_ALPHA = 0.25  # weight of the white patch-grid lines over a smoothed map
SINK_COLOUR = "#00ff00"  # patch sinks: a diamond in this colour (the query patch is outlined in cyan)


def grid_lines(pixels: "np.ndarray", rows: int, cols: int, alpha: float = GRID_ALPHA) -> "np.ndarray":
    """(H, W, 3) float pixels with one-pixel white lines at the patch borders (the map is smoothed between them)."""
    import numpy as np

    out = np.array(pixels, dtype=np.float32, copy=True)
    height, width = out.shape[:2]
    for c in range(1, cols):
        x = min(width - 1, round(c * width / cols))
        out[:, x] = out[:, x] * (1 - alpha) + 255.0 * alpha
    for r in range(1, rows):
        y = min(height - 1, round(r * height / rows))
        out[y, :] = out[y, :] * (1 - alpha) + 255.0 * alpha
    return out


def diamond(x: float, y: float, cw: float, ch: float) -> list[tuple[float, float]]:
    """The corners of a diamond inside the cell whose top-left corner is (x, y): the patch-sink mark."""
    return [(x + cw / 2, y + 1), (x + cw - 1, y + ch / 2), (x + cw / 2, y + ch - 1), (x + 1, y + ch / 2)]


def inferno(values: "np.ndarray", vmax: float) -> "np.ndarray":
    """Map weights in [0, vmax] to (..., 3) uint8 colours."""
    import numpy as np

    lut = np.frombuffer(base64.b64decode(_INFERNO), dtype=np.uint8).reshape(256, 3)
    idx = np.clip(np.rint(values / (vmax or 1.0) * 255), 0, 255).astype(np.intp)
    return lut[idx]


@lru_cache(maxsize=8)
def font(size: int) -> "ImageFont.FreeTypeFont":
    """DejaVu Sans from matplotlib's data folder (found without importing it), else Pillow's own font."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def nice_ticks(vmax: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to vmax (steps of 1, 2, 2.5 or 5 × a power of ten)."""
    if vmax <= 0:
        return [0.0]
    raw = vmax / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(vmax / step + 1e-9) + 1)]


def _tick_label(value: float, step: float) -> str:
    """Enough decimals to tell ticks apart."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if step > 0 and round(step, decimals) != step:
        decimals += 1
    return f"{value:.{decimals}f}"


def upsample(values: "np.ndarray", height: int, width: int) -> "np.ndarray":
    """(rows, cols) map → (height, width) by bilinear interpolation between patch centres, edges clamped."""
    import numpy as np
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)  # (height, width)


def overlay_png(amap: "PatchMap", title: str, left_title: str, right_title: str) -> bytes:
    """PNG bytes: title lines, the image as the model saw it, the map blended over it, a colour bar."""
    import numpy as np
    from PIL import Image, ImageDraw

    image = amap.facts.image  # (H, W, 3) uint8
    height, width = image.shape[:2]
    scale = PANEL / max(height, width)
    pw, ph = max(1, round(width * scale)), max(1, round(height * scale))
    base = Image.fromarray(image).resize((pw, ph), Image.Resampling.BICUBIC)
    vmin, vmax = amap.vmin, amap.vmax
    heat = inferno(upsample(amap.values, ph, pw) - vmin, vmax - vmin)  # (ph, pw, 3)
    blended = np.asarray(base, dtype=np.float32) * (1 - ALPHA) + heat.astype(np.float32) * ALPHA
    blended = grid_lines(blended, amap.grid.rows, amap.grid.cols)  # the map is smoothed: show where patches are
    over = Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))

    big, mid, small = font(22), font(17), font(15)
    margin, gap, bar_w = 30, 40, 22
    canvas_w = margin + pw + gap + pw + 30 + bar_w + 110
    lines = [piece for text in title.split("\n") for piece in wrap(text, big, canvas_w - 2 * margin)]
    top = margin + len(lines) * 30 + 16 + 26  # title block, then a panel title line
    canvas = Image.new("RGB", (canvas_w, top + ph + margin), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((canvas_w / 2, margin + i * 30), line, font=big, fill="black", anchor="mt")
    x_left, x_right = margin, margin + pw + gap
    for x, panel, caption in ((x_left, base, left_title), (x_right, over, right_title)):
        canvas.paste(panel, (x, top))
        draw.rectangle((x - 1, top - 1, x + pw, top + ph), outline="#333333")
        draw.text((x + pw / 2, top - 10), caption, font=mid, fill="black", anchor="mb")
    grid = amap.grid
    cw, ch = pw / grid.cols, ph / grid.rows
    for row, col in sorted(amap.sink_cells):
        draw.polygon(diamond(x_right + col * cw, top + row * ch, cw, ch), outline=SINK_COLOUR, width=3)
    if amap.cell is not None:
        row, col = amap.cell
        draw.rectangle((x_right + col * cw, top + row * ch, x_right + (col + 1) * cw, top + (row + 1) * ch),
                       outline="cyan", width=3)
    bar_label = "attention weight" if amap.quantity == "attention" else amap.quantity  # not weights
    _colour_bar(canvas, draw, x_right + pw + 30, top + ph // 10, bar_w, ph * 8 // 10, vmax, small, bar_label, vmin)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=1, dpi=(150, 150), pnginfo=_info())
    return buf.getvalue()


def wrap(text: str, face: "ImageFont.FreeTypeFont", width: float) -> list[str]:
    """A line broken at spaces into pieces no wider than ``width`` pixels (a longer word stays whole)."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        trial = f"{current} {word}" if current else word
        if current and face.getlength(trial) > width:
            pieces.append(current)
            current = word
        else:
            current = trial
    return pieces + [current]


def _colour_bar(canvas: "Image.Image", draw, x: int, y: int, w: int, h: int, vmax: float, small,
                label_text: str = "attention weight", vmin: float = 0.0) -> None:
    """A vertical colour bar for [vmin, vmax] with ticks, labels and its name."""
    import numpy as np
    from PIL import Image

    span = (vmax - vmin) or 1.0
    ramp = np.linspace(span, 0.0, h, dtype=np.float32)[:, None].repeat(w, axis=1)  # top = vmax
    white = np.full((h, w, 3), 255.0, dtype=np.float32)  # the bar shows the blend as it looks on a white image
    colours = white * (1 - ALPHA) + inferno(ramp, span).astype(np.float32) * ALPHA
    canvas.paste(Image.fromarray(np.clip(np.rint(colours), 0, 255).astype(np.uint8)), (x, y))
    draw.rectangle((x - 1, y - 1, x + w, y + h), outline="#333333")
    offsets = nice_ticks(span)
    step = offsets[1] - offsets[0] if len(offsets) > 1 else span
    start = math.ceil(vmin / step - 1e-9) * step if step > 0 else vmin  # ticks at round values inside the range
    ticks = [start + i * step for i in range(len(offsets) + 1) if start + i * step <= vmax + 1e-12]
    for value in ticks:
        ty = y + h - round((value - vmin) / span * h)
        draw.line((x + w, ty, x + w + 5, ty), fill="black", width=1)
        draw.text((x + w + 8, ty), _tick_label(value, step), font=small, fill="black", anchor="lm")
    label = Image.new("L", (h, 22), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(label).text((h / 2, 11), label_text, font=small, fill=255, anchor="mm")
    rotated = label.rotate(90, expand=True)
    canvas.paste((0, 0, 0), (x + w + 70, y), mask=rotated)


def _info():
    """PNG text chunk naming the software, like the matplotlib path."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "attncli")
    return info
