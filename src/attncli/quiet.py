"""Keep the libraries attncli drives (transformers, tokenizers, torch, huggingface_hub) off stderr.

Their logging, warnings and progress bars are not attncli's to show: a piped stderr must carry one line per
message, and a LOAD REPORT table with colour codes is not one. While :func:`libraries_quiet` is active those
messages are dropped (``ATTN_DEBUG=1`` lets them through); everything attncli means to say is raised or returned.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

LOGGERS = ("transformers", "huggingface_hub", "torch", "tokenizers", "safetensors", "accelerate", "PIL", "filelock")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def one_line(text: str) -> str:
    """A message as one plain line: colour codes removed, newlines and runs of spaces folded."""
    return " ".join(_ANSI.sub("", text).split())


def wrapped(text: str, width: int | None = None, isatty: bool | None = None) -> str:
    """A message as one line (see one_line), wrapped at spaces to the terminal's width when stderr is one.

    Continuation lines are indented two spaces so a wrapped message still reads as one; a word longer than the
    width (a path, a URL) is kept whole. Piped, a message stays one line: scripts and logs read one per line.
    """
    text = one_line(text)
    if width is None:
        if not (sys.stderr.isatty() if isatty is None else isatty):
            return text
        env = os.environ.get("COLUMNS", "").strip()
        if env.isdigit() and int(env) > 0:
            width = int(env)
        else:
            import shutil

            width = shutil.get_terminal_size().columns
    import textwrap

    return textwrap.fill(text, max(width, 20), subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def debugging() -> bool:
    """Whether ATTN_DEBUG asks for library messages and tracebacks."""
    return os.environ.get("ATTN_DEBUG", "") not in ("", "0")


@contextmanager
def libraries_quiet() -> Iterator[None]:
    """Silence library logging, warnings and progress bars for the duration (nothing of attncli's is hidden)."""
    if debugging():
        yield
        return
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warning from the Rust tokenizers
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "critical")  # read when transformers is first imported
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    restore = _quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        restore()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _quiet_transformers():
    """Turn transformers' own verbosity and progress bars off if it is already imported; return the undo."""
    if "transformers" not in sys.modules:
        return lambda: None
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.CRITICAL + 1)
    hf_logging.disable_progress_bar()

    def undo() -> None:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()

    return undo
