"""Converted model folders in the cache (dinov2-small, whisper-tiny.en): the marker that says a folder is finished.

The folder is built beside its place and moved in whole by attncli.cache.atomic_folder, which asks is_current
whether a folder already there (a stale one, or one a concurrent process finished) is the finished result."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "attncli-conversion.json"


def read_marker(folder: Path) -> dict | None:
    """The conversion marker of a folder, or None if it is missing or unreadable."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_current(folder: Path, source_sha256: str, fmt: int) -> bool:
    """True when folder holds a finished conversion of the source with this digest, in conversion format fmt."""
    marker = read_marker(folder)
    if marker is None or marker.get("format") != fmt or marker.get("source_sha256") != source_sha256:
        return False
    weights = Path(folder) / "model.safetensors"
    return (Path(folder) / "config.json").is_file() and weights.is_file() and \
        weights.stat().st_size == marker.get("weights_bytes")
