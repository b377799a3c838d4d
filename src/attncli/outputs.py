"""Output files: which format a file name asks for, and whether it may be written (checked before any work)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from attncli.choices import Format
from attncli.errors import UsageError

FIGURE_SUFFIXES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
HTML_SUFFIXES = {".html", ".htm"}


def output_format(path: Path | str, allowed: Iterable[Format] = (Format.figure, Format.html),
                  option: str = "-o") -> Format:
    """The format a file name asks for (by suffix); an unknown or unavailable suffix is a usage error."""
    suffix = Path(path).suffix.lower()
    allowed = set(allowed)
    fmt = Format.figure if suffix in FIGURE_SUFFIXES else Format.html if suffix in HTML_SUFFIXES else None
    if fmt is None or fmt not in allowed:
        kinds = (".png, .svg or .pdf" if Format.figure in allowed else "") + \
            (" or .html" if Format.html in allowed and Format.figure in allowed else ".html" if Format.html in allowed
             else "")
        raise UsageError(f"{option} {path}: unknown figure format {suffix or '(no suffix)'}",
                         f"end the file name with {kinds}")
    return fmt


def check_output(path: Path, inputs: Iterable[Path | str] = (), option: str = "-o") -> Path:
    """Refuse an output path before any work: a folder, one of the inputs, an unwritable folder or file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder", "give a file name such as heatmap.png")
    for item in inputs:
        item = Path(item)
        if item.exists() and path.exists() and path.resolve() == item.resolve():
            raise UsageError(f"{option} {path} is one of the inputs",
                             "choose another file name; inputs are never overwritten")
    parent = path.parent  # as typed, so errors name what the user wrote
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder", "choose a file name in a folder")
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {existing or parent}{_why(existing)}",
                         "choose a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file is read-only{_why(path)}", "choose another file name")
    return path


def _why(path: Path | None) -> str:
    """': a read-only file system' or ': permission denied' for a path that cannot be written."""
    if path is None:
        return ""
    try:
        readonly = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return ""
    return ": a read-only file system" if readonly else ": permission denied"
