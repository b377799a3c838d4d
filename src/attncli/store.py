"""Save and load Captures as .npz files (numpy only: re-rendering never imports torch)."""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
import tempfile
import time
import zipfile
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
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


STALE_AFTER_S = 3600  # a temp file without a live writer's pid is stale at once; any temp file after an hour


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temp files a killed write of ``path`` left behind (its writer's pid is gone, or it is an hour old)."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        try:
            age = time.time() - tmp.stat().st_mtime
        except OSError:
            continue
        if (pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))) or age > STALE_AFTER_S:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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

    last = path is None or Path(path) == last_capture_path()
    path = Path(path) if path is not None else last_capture_path()
    if not path.is_file():
        if last:
            raise StoreError("there is no last capture yet", 'run a command first, e.g. attn explain "some text"')
        raise UsageError(f"no such capture file: {path}")
    if not zipfile.is_zipfile(path):
        raise _not_whole(path, "it is not a zip archive (an .npz file is one)", last)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise _not_whole(path, "it has no __meta__ record", last)
            meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _not_whole(path, f"it cannot be read ({_reason(exc)})", last) from None
    if not isinstance(meta, dict):
        raise _not_whole(path, "its __meta__ record is not a JSON object", last)
    if meta.pop("format", None) != FORMAT:
        raise StoreError(f"{path} was saved by an incompatible attncli version", "capture it again")
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
