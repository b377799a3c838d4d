"""Save and load Captures as .npz files (numpy only: re-rendering never imports torch)."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from attncli.cache import cache_dir, write_atomic
from attncli.capture import Capture, Prediction, _spans
from attncli.choices import StoreDtype
from attncli.errors import StoreError, UsageError
from attncli.grid import PatchGrid

FORMAT = "attncli.capture/2"  # /2: uncompressed, one array per layer, weights stored as float16 or float32
LAYERED = ("attentions", "cross_attentions", "decoder_attentions")
EXTRA = "extra__"  # the prefix of Capture.extras' arrays in a saved capture
MB = 1 << 20
FLOAT16_ABOVE_MB = 64  # weights above this (as float32) are stored as float16 unless --dtype says otherwise
LAST_BUDGET_MB = 1024  # the last capture never holds more weights than this (ATTN_LAST_BUDGET_MB overrides)


def last_capture_path() -> Path:
    """The file every command writes its capture to, so later commands can re-render it."""
    return cache_dir() / "last.npz"


def _encode(capture: Capture) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a Capture into numpy arrays and a JSON-able metadata dict."""
    import numpy as np

    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"format": FORMAT}
    for f in dataclasses.fields(capture):
        value = getattr(capture, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif f.name == "extras":  # named arrays, stored beside the others as extra__NAME
            arrays.update({f"{EXTRA}{k}": np.asarray(v) for k, v in value.items()})
        elif isinstance(value, PatchGrid):
            meta[f.name] = value.to_dict()
        elif f.name == "predictions":
            meta[f.name] = [dataclasses.asdict(p) for p in value]
        else:
            meta[f.name] = value
    return arrays, meta


def last_budget() -> int:
    """Most bytes of weights the last capture keeps: $ATTN_LAST_BUDGET_MB megabytes, else LAST_BUDGET_MB."""
    env = os.environ.get("ATTN_LAST_BUDGET_MB", "").strip()
    return int(float(env) * MB) if env.replace(".", "", 1).isdigit() else LAST_BUDGET_MB * MB


def stored_dtype(capture: Capture, dtype: StoreDtype | str | None = None) -> StoreDtype:
    """The dtype weights are stored in: the asked one, else float16 when float32 would pass FLOAT16_ABOVE_MB."""
    if dtype is not None:
        return StoreDtype(dtype)
    return StoreDtype.float16 if weight_bytes(capture, StoreDtype.float32) > FLOAT16_ABOVE_MB * MB \
        else StoreDtype.float32


def weight_bytes(capture: Capture, dtype: StoreDtype | str) -> int:
    """Bytes the capture's attention arrays take when stored as dtype."""
    size = 2 if StoreDtype(dtype) is StoreDtype.float16 else 4
    arrays = (capture.attentions, capture.cross_attentions, capture.decoder_attentions)
    return sum(int(a.size) * size for a in arrays if a is not None)


def fit_budget(capture: Capture, budget: int, dtype: StoreDtype) -> tuple[Capture, str | None]:
    """The capture cut to the layers that fit the budget (first layers first), and a note saying what was kept."""
    per_layer = weight_bytes(capture, dtype) / max(capture.n_layers, 1)
    if capture.cross_attentions is not None or per_layer * capture.n_layers <= budget:
        return capture, None
    keep = max(1, int(budget // per_layer))
    ids = capture.layer_ids or list(range(capture.n_layers))
    extras = {k: v[:keep] if k in ("query", "key", "scaling", "value_gram") else v for k, v in capture.extras.items()}
    trimmed = dataclasses.replace(capture, attentions=capture.attentions[:keep], layer_ids=ids[:keep],
                                  total_layers=capture.total_layers or capture.n_layers, extras=extras)
    note = (f"the last capture kept {_spans(ids[:keep], 'layer')} of the {len(ids)} captured "
            f"({per_layer * keep / MB:.0f} MB in {dtype.value}; budget {budget / MB:.0f} MB): keep them all "
            "with --save FILE.npz, or raise ATTN_LAST_BUDGET_MB")
    return trimmed, note


def save_capture(capture: Capture, path: Path | str, dtype: StoreDtype | str | None = None) -> Path:
    """Write a Capture to an uncompressed .npz atomically (one array per layer, so one layer loads alone)."""
    import numpy as np

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise UsageError(f"--save {path}: a capture is saved as .npz", "give a file name ending in .npz")
    arrays, meta = _encode(capture)
    kind = stored_dtype(capture, dtype)
    meta["stored_dtype"] = kind.value
    split: dict[str, Any] = {}
    for name, value in arrays.items():
        if name in LAYERED:
            meta[f"{name}_layers"] = int(value.shape[0])
            split.update({f"{name}.{i}": value[i].astype(kind.value) for i in range(value.shape[0])})
        else:
            split[name] = value
    header = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    try:
        return write_atomic(path, lambda fh: np.savez(fh, __meta__=header, **split))
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable folder") from exc


def _open(path: Path | str | None) -> tuple[Path, Any, dict[str, Any], bool]:
    """(path, open NpzFile, metadata, whether it is the last capture) of a saved capture; the caller closes it."""
    import numpy as np

    last = path is None or Path(path) == last_capture_path()
    path = Path(path) if path is not None else last_capture_path()
    if not path.is_file():
        if last:
            raise StoreError("there is no last capture yet", 'run a command first, e.g. attn explain "some text"')
        raise UsageError(f"no such capture file: {path}")
    if not zipfile.is_zipfile(path):
        raise _not_whole(path, "it is not a zip archive (an .npz file is one)", last)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_whole(path, f"it cannot be read ({_reason(exc)})", last) from None
    try:
        if "__meta__" not in data.files:
            raise _not_whole(path, "it has no __meta__ record", last)
        meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        data.close()
        raise _not_whole(path, f"it cannot be read ({_reason(exc)})", last) from None
    except BaseException:
        data.close()
        raise
    if not isinstance(meta, dict):
        data.close()
        raise _not_whole(path, "its __meta__ record is not a JSON object", last)
    if meta.pop("format", None) != FORMAT:
        data.close()
        raise StoreError(f"{path} was saved by an incompatible attncli version", "capture it again")
    return path, data, meta, last


def load_layer(layer: int, path: Path | str | None = None) -> "Any":
    """One model layer's (heads, query, key) float32 weights, read without reading the other layers."""
    from attncli.methods.heads import resolve_index

    path, data, meta, last = _open(path)
    with data:
        try:
            ids = meta.get("layer_ids") or list(range(meta["attentions_layers"]))
            number = resolve_index(layer, meta.get("total_layers") or len(ids), "layer")
            if number not in ids:
                raise StoreError(f"{path} kept layers {ids}, not layer {number}",
                                 f"capture it again with --layers {number} (or --layers all)")
            return data[f"attentions.{ids.index(number)}"].astype("float32")
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise _not_whole(path, f"its layers cannot be read ({_reason(exc)})", last) from None


def load_capture(path: Path | str | None = None) -> Capture:
    """Read a Capture saved by save_capture (default: the last capture); weights come back as float32."""
    import numpy as np

    path, data, meta, last = _open(path)
    with data:
        try:
            arrays = {k: data[k] for k in data.files if k != "__meta__" and "." not in k}
            for name in LAYERED:
                count = meta.pop(f"{name}_layers", None)
                if count is not None:
                    arrays[name] = np.stack([data[f"{name}.{i}"] for i in range(int(count))]).astype(np.float32)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise _not_whole(path, f"its arrays cannot be read ({_reason(exc)})", last) from None
    meta.pop("stored_dtype", None)
    arrays["extras"] = {k[len(EXTRA):]: arrays.pop(k) for k in list(arrays) if k.startswith(EXTRA)}
    known = {f.name for f in dataclasses.fields(Capture)}
    if "attentions" not in arrays:
        raise _not_whole(path, "it has no attentions array", last)
    try:
        if meta.get("grid") is not None:
            meta["grid"] = PatchGrid.from_dict(meta["grid"])
        meta["predictions"] = [Prediction(**p) for p in meta.get("predictions", [])]
        capture = Capture(**{k: v for k, v in {**meta, **arrays}.items() if k in known})
    except (TypeError, ValueError, AttributeError) as exc:
        raise _not_whole(path, f"its metadata is malformed ({_reason(exc)})", last) from None
    from attncli.wholeness import problem

    found = problem(capture)
    if found:
        raise _not_whole(path, found, last)
    return capture


def _reason(exc: BaseException) -> str:
    """An exception as a short reason: its first line, or its type when it has no message."""
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else exc.__class__.__name__


def _not_whole(path: Path, what: str, last: bool) -> StoreError | UsageError:
    """'PATH is not a whole attncli capture: WHAT': a runtime error for the last capture, bad input for a file."""
    message = f"{path} is not a whole attncli capture: {what}"
    if last:
        return StoreError(message, 'run a command again to replace it, e.g. attn explain "some text"')
    return UsageError(message, "capture it again and save it with --save FILE.npz")
