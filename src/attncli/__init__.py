"""attncli: see what a transformer attends to, from the terminal or from Python.

The public API is imported lazily so that ``import attncli`` stays cheap::

    from attncli import capture_text
    cap = capture_text("The cat sat on the mat because it was tired.")
    cap.attentions.shape   # (layers, heads, query, key)
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Capture": "attncli.capture",
    "capture": "attncli.sources",
    "capture_text": "attncli.sources",
    "capture_image": "attncli.sources",
    "capture_images": "attncli.sources",
    "capture_align": "attncli.sources",
    "capture_caption": "attncli.sources",
    "load_capture": "attncli.store",
    "save_capture": "attncli.store",
    "AttnError": "attncli.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Import public names on first use (keeps `attn --help` fast)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attncli' has no attribute {name!r}")
