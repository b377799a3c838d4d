"""Images in: read files safely, find them in folders, preprocess like the model does.

Pillow and numpy only at import time; transformers/torch are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from attncli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# 64 megapixels: larger than any camera photo a person would classify, far below what exhausts memory.
DEFAULT_MAX_PIXELS = 64_000_000

def max_pixels() -> int:
    """Largest image (width × height) attncli decodes: $ATTN_MAX_IMAGE_PIXELS, else 64 megapixels."""
    raw = os.environ.get("ATTN_MAX_IMAGE_PIXELS", "").strip()
    try:
        return int(raw) if raw else DEFAULT_MAX_PIXELS
    except ValueError:
        raise UsageError(f"ATTN_MAX_IMAGE_PIXELS={raw!r} is not a whole number") from None


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn Pillow's ways of failing on a file into one-line UsageErrors that name it."""
    from PIL import Image, UnidentifiedImageError

    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # One limit, attncli's, checked from the header right after open (_check_size): Pillow's own check
            # (~89.5 MP) would otherwise refuse what ATTN_MAX_IMAGE_PIXELS allows, in its own words.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None
            yield
    except UsageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UsageError(f"{path}: refused as a decompression bomb ({_one_line(exc)})",
                         "shrink it first, or raise ATTN_MAX_IMAGE_PIXELS if you trust the file") from None
    except UnidentifiedImageError:
        raise UsageError(f"{path} is not an image Pillow can read") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError with a short message.
        raise UsageError(f"{path}: truncated or corrupt image ({_one_line(exc)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _check_file(path: Path) -> None:
    """A missing path or a folder where an image file is expected."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a folder", "give an image file")


def _check_size(path: Path, width: int, height: int) -> None:
    """Refuse images over the pixel limit before decoding them."""
    limit = max_pixels()
    if width * height > limit:
        raise UsageError(f"{path}: {width}×{height} pixels is over the limit of {limit:,} "
                         "(a decompression bomb, or a very large image)",
                         "shrink it first, or raise ATTN_MAX_IMAGE_PIXELS if you trust the file")


def probe_image(path: Path | str) -> tuple[int, int]:
    """Read only the header: (width, height), or the one-line errors of load_image (cheap, before a model loads)."""
    from PIL import Image

    path = Path(path)
    _check_file(path)
    with _reading(path), Image.open(path) as im:
        _check_size(path, *im.size)
        return im.size


def load_image(path: Path | str) -> "Image.Image":
    """Open an image file as RGB with EXIF orientation applied; bad files raise a one-line UsageError."""
    from PIL import Image, ImageOps

    path = Path(path)
    _check_file(path)
    with _reading(path), Image.open(path) as im:
        _check_size(path, *im.size)  # from the header, before any pixel is decoded
        im.load()
        return to_rgb(ImageOps.exif_transpose(im))


def to_rgb(im: "Image.Image") -> "Image.Image":
    """Convert any Pillow mode to 8-bit RGB: alpha over white, 16-bit and float scaled, CMYK and palette mapped."""
    import numpy as np
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)  # (H, W); 16-bit or 32-bit values
        if im.mode.startswith("I;16"):
            arr = arr / 257.0  # 65535 → 255
        elif arr.size and (arr.min() < 0 or arr.max() > 255):
            top = 65535.0 if arr.min() >= 0 and arr.max() <= 65535 and im.mode != "F" else None
            if top is not None:
                arr = arr / 257.0
            else:  # floats or other ranges: stretch what is there
                lo, hi = float(arr.min()), float(arr.max())
                arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        elif im.mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    try:
        return im.convert("RGB")
    except ValueError as exc:
        raise UsageError(f"cannot convert a {im.mode} image to RGB ({exc})") from None


def image_extensions() -> set[str]:
    """File suffixes Pillow can open (lower case, with the dot)."""
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def collect_images(paths: Iterable[Path | str]) -> list[Path]:
    """Expand files and folders into image files: folders sorted by name, arguments kept in order, no duplicates."""
    exts = image_extensions()
    found: list[Path] = []
    for raw in paths:
        if not str(raw).strip():  # Path("") is ".": an empty name would read the current folder
            raise UsageError("an empty image name", "name an image file or a folder")
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)
            if not inside:
                raise UsageError(f"{path}: no images in this folder",
                                 "put .png/.jpg/.webp/... files in it, or name the image files directly")
            found.extend(inside)
        else:
            found.append(path)  # named explicitly: tried whatever its suffix, so a wrong file gets a clear error
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise UsageError("no images given", "name image files or folders")
    return unique


def processed_pixels(images: Sequence["Image.Image"], processor: Any) -> tuple[Any, list["np.ndarray"]]:
    """Run the model's own image processor: (pixel_values (B, C, H, W), each image as the model sees it)."""
    batch = processor(images=list(images), return_tensors="pt")
    pixel_values = batch["pixel_values"]  # (B, C, H, W)
    arr = pixel_values.detach().float().cpu().numpy()  # (B, C, H, W)
    return pixel_values, [seen_image(a, processor) for a in arr]


def framing(input_size: tuple[int, int], processor: Any, output_size: tuple[int, int]) -> dict | None:
    """How the processor framed a (width, height) file into the (width, height) it output; None when not known.

    Follows the processors that resize (to a shortest edge, or to a fixed height × width) and then maybe crop the
    centre (ViT, DeiT, BEiT, DINOv2, CLIP). Returns ``{"input": [w, h], "resized": [w, h], "crop": [left, top,
    right, bottom], "output": [w, h]}``: ``crop`` is the part of the file that was kept, in the file's pixels
    (fractions where the resize was not whole); ``resized`` is the size before the crop. Processors with other
    steps (crop_pct, longest_edge, padding) give None: nothing is claimed about them.
    """
    w, h = (int(v) for v in input_size)
    out_w, out_h = (int(v) for v in output_size)
    if w <= 0 or h <= 0:
        return None
    if getattr(processor, "crop_pct", None) is not None or getattr(processor, "do_pad", False):
        return None
    size = _size_dict(getattr(processor, "size", None)) if getattr(processor, "do_resize", False) else {}
    if size is None:
        return None
    if size.get("shortest_edge") and not size.get("height"):
        short = int(size["shortest_edge"])
        # transformers' get_resize_output_image_size(default_to_square=False): the long side is truncated.
        rw, rh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    elif size.get("height") and size.get("width") and not size.get("shortest_edge"):
        rw, rh = int(size["width"]), int(size["height"])
    elif not size:
        rw, rh = w, h
    else:
        return None
    cw, ch = rw, rh
    if getattr(processor, "do_center_crop", False):
        crop = _size_dict(getattr(processor, "crop_size", None))
        if not crop or not crop.get("height") or not crop.get("width"):
            return None
        cw, ch = min(int(crop["width"]), rw), min(int(crop["height"]), rh)
    if (cw, ch) != (out_w, out_h):
        return None  # the pixels say otherwise: claim nothing
    sx, sy = w / rw, h / rh  # file pixels per resized pixel
    left, top = (rw - cw) / 2, (rh - ch) / 2  # centred; off by at most half a resized pixel from the processor's
    return {"input": [w, h], "resized": [rw, rh],
            "crop": [round(left * sx, 2), round(top * sy, 2), round((left + cw) * sx, 2), round((top + ch) * sy, 2)],
            "output": [out_w, out_h]}


def framing_phrase(frame: dict | None) -> str | None:
    """In words: '741×500 → crop 501×500 → 224×224, 32% of the width cut', '451×300 → 224×224, aspect not kept'.

    None when the file went in at its own size, or when the framing is not known.
    """
    if not frame:
        return None
    (w, h), (left, top, right, bottom), (ow, oh) = frame["input"], frame["crop"], frame["output"]
    if (w, h) == (ow, oh):
        return None
    cut_w, cut_h = 1 - (right - left) / w, 1 - (bottom - top) / h
    if cut_w <= 0 and cut_h <= 0:
        aspect = "" if abs(w / h - ow / oh) < 0.01 else ", aspect not kept"
        return f"{w}×{h} → {ow}×{oh}{aspect}"
    cuts = [f"{cut:.0%} of the {side} cut" for cut, side in ((cut_w, "width"), (cut_h, "height")) if cut > 0]
    return f"{w}×{h} → crop {round(right - left)}×{round(bottom - top)} → {ow}×{oh}, " + " and ".join(cuts)


def _size_dict(value: Any) -> dict | None:
    """A processor's size/crop_size (dict, SizeDict or int) as a plain dict of the keys that are set."""
    if value is None:
        return {}
    if isinstance(value, int):
        return {"height": value, "width": value}
    items = value.items() if isinstance(value, dict) else vars(value).items() if hasattr(value, "__dict__") else None
    if items is None:
        keys = ("height", "width", "shortest_edge", "longest_edge", "max_height", "max_width")
        items = ((k, getattr(value, k, None)) for k in keys)
    known = {"height", "width", "shortest_edge"}
    out = {k: v for k, v in items if v is not None}
    return out if set(out) <= known else None


def seen_image(pixels: "np.ndarray", processor: Any) -> "np.ndarray":
    """(C, H, W) processed pixels → (H, W, 3) uint8 by undoing the processor's normalise and rescale steps."""
    import numpy as np

    x = np.asarray(pixels, dtype=np.float32)  # (C, H, W)
    channels = x.shape[0]
    if getattr(processor, "do_normalize", False):
        mean = np.asarray(_per_channel(getattr(processor, "image_mean", 0.0), channels), dtype=np.float32)
        std = np.asarray(_per_channel(getattr(processor, "image_std", 1.0), channels), dtype=np.float32)
        x = x * std[:, None, None] + mean[:, None, None]
    if getattr(processor, "do_rescale", False):
        x = x / float(getattr(processor, "rescale_factor", 1 / 255) or 1 / 255)
    elif x.size and x.max() <= 1.0:
        x = x * 255.0  # a processor that skips rescaling but feeds 0..1 values
    if channels == 1:
        x = np.repeat(x, 3, axis=0)
    return np.clip(np.rint(x[:3].transpose(1, 2, 0)), 0, 255).astype(np.uint8)  # (H, W, 3)


def _per_channel(value: Any, channels: int) -> list[float]:
    """A mean/std given as a number or a list, as one float per channel."""
    if isinstance(value, (int, float)):
        return [float(value)] * channels
    values = [float(v) for v in value]
    return values if len(values) == channels else (values * channels)[:channels]


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__
