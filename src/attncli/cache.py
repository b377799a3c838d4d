"""attncli's files: the cache folder, atomic writes of files and folders, file digests.

Everything attncli writes goes through here — saved captures and the last capture (store), figures and pages
(render), corpus checkpoints and tables, the models converted on first use (dinov2, whisperct2) — so a reader
never sees half a file or half a folder, and a killed writer's temp files are cleaned up by the next one.
Imports nothing heavy: it sits at the bottom of the import contract.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

# What a slow first use (a model converted into the cache) reports; the CLI sets it to a line on stderr.
Progress = Callable[[str], None]
progress_hook: Progress | None = None

STALE_AFTER_S = 3600  # a temp file without a live writer's pid is stale at once; any temp file after an hour


def cache_dir() -> Path:
    """Where attncli keeps the last capture and converted models: $ATTN_CACHE_DIR, else the user cache dir."""
    env = os.environ.get("ATTN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("attncli", appauthor=False))


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomic(path: Path, data: "bytes | Callable[[BinaryIO], None]") -> Path:
    """Write bytes (or whatever a writer puts in the open file) via a temp file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file should look like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


@contextmanager
def atomic_folder(folder: Path, finished: Callable[[Path], bool]) -> Iterator[Path]:
    """Build a folder in a temp folder beside it; when the block ends without error it replaces ``folder``.

    ``finished(folder)`` says whether a folder already holds the finished result: a stale one is removed first,
    and one a concurrent writer finished while this one worked wins. The temp folder never outlives the block.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the cache folder should look like any other
        if folder.exists():
            if finished(folder):
                return  # another process finished the same folder first
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not finished(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
