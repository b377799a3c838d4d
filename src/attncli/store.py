"""Save and load Captures as .npz files (numpy only: re-rendering never imports torch)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from attncli.capture import Capture, Prediction
from attncli.errors import StoreError, UsageError
from attncli.grid import PatchGrid

FORMAT = "attncli.capture/1"


def cache_dir() -> Path:
    """Where attncli keeps the last capture: $ATTN_CACHE_DIR, else the user cache dir."""
    env = os.environ.get("ATTN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("attncli", appauthor=False))


def last_capture_path() -> Path:
    """The file every command writes its capture to, so later commands can re-render it."""
    return cache_dir() / "last.npz"


def write_atomic(path: Path, data: bytes) -> Path:
    """Write bytes to path via a temp file in the same folder and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved file should look like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _encode(capture: Capture) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a Capture into numpy arrays and a JSON-able metadata dict."""
    import numpy as np

    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"format": FORMAT}
    for f in dataclasses.fields(capture):
        value = getattr(capture, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif isinstance(value, PatchGrid):
            meta[f.name] = value.to_dict()
        elif f.name == "predictions":
            meta[f.name] = [dataclasses.asdict(p) for p in value]
        else:
            meta[f.name] = value
    return arrays, meta


def save_capture(capture: Capture, path: Path | str) -> Path:
    """Write a Capture to an .npz file atomically and return the path."""
    import numpy as np

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise UsageError(f"--save {path}: a capture is saved as .npz", "give a file name ending in .npz")
    arrays, meta = _encode(capture)
    buf = io.BytesIO()
    np.savez_compressed(buf, __meta__=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
    try:
        return write_atomic(path, buf.getvalue())
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable folder") from exc


def load_capture(path: Path | str | None = None) -> Capture:
    """Read a Capture saved by save_capture (default: the last capture)."""
    import numpy as np

    path = Path(path) if path is not None else last_capture_path()
    if not path.is_file():
        if path == last_capture_path():
            raise StoreError("there is no last capture yet", 'run a command first, e.g. attn explain "some text"')
        raise UsageError(f"no such capture file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path} is not a capture saved by attncli ({exc.__class__.__name__})") from None
    if meta.pop("format", None) != FORMAT:
        raise StoreError(f"{path} was saved by an incompatible attncli version", "capture it again")
    if meta.get("grid") is not None:
        meta["grid"] = PatchGrid.from_dict(meta["grid"])
    meta["predictions"] = [Prediction(**p) for p in meta.get("predictions", [])]
    known = {f.name for f in dataclasses.fields(Capture)}
    return Capture(**{k: v for k, v in {**meta, **arrays}.items() if k in known})
