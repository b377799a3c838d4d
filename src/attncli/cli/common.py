"""Small helpers the commands share: consoles, warnings, saving captures, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from attncli.errors import AttnError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from attncli.capture import Capture


def out() -> "Console":
    """Console for data (stdout)."""
    from rich.console import Console

    return Console(soft_wrap=False)


def err() -> "Console":
    """Console for progress, warnings and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True)


def warn(messages: Iterable[str]) -> None:
    """Print warnings on stderr, one line each."""
    console = err()
    for message in messages:
        console.print(f"[yellow]warning:[/] {message}", highlight=False)


def print_json(doc: Any) -> None:
    """Write a JSON document to stdout (plain, no colour codes)."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def check_save_path(save: Path | None, inputs: Iterable[Path] = ()) -> None:
    """Refuse a --save target before any work: wrong suffix, or the name of an input."""
    if save is None:
        return
    if save.suffix.lower() != ".npz":
        raise UsageError(f"--save {save}: a capture is saved as .npz", "give a file name ending in .npz")
    for path in inputs:
        if path.exists() and save.exists() and save.resolve() == path.resolve():
            raise UsageError(f"--save {save} is one of the inputs", "choose another file name; inputs are never overwritten")
    if save.is_dir():
        raise UsageError(f"--save {save} is a folder", "give a file name ending in .npz")


def keep_capture(capture: "Capture", save: Path | None) -> None:
    """Store the capture as the last capture (best effort) and, when asked, to --save."""
    from attncli.store import last_capture_path, save_capture

    try:
        save_capture(capture, last_capture_path())
    except AttnError as exc:
        warn([f"could not store the last capture: {exc.message}"])
    if save is not None:
        path = save_capture(capture, save)
        err().print(f"saved capture to {path}", highlight=False)
