"""Renderers: one module per output format, each registering one function per view type.

``render(view, Format.terminal)`` returns a rich renderable, ``Format.json``/``Format.csv`` a string, and
``Format.figure``/``Format.html`` write the file they are given and return its path. Adding a format is one
module with a ``render`` singledispatch function and one line in ``MODULES``.
"""

from __future__ import annotations

import importlib
from typing import Any

from attncli.choices import Format

MODULES = {
    Format.terminal: "attncli.render.terminal",
    Format.json: "attncli.render.json",
    Format.csv: "attncli.render.csv",
    Format.figure: "attncli.render.figure",
    Format.html: "attncli.render.html",
}


def render(view: Any, fmt: Format, **options: Any) -> Any:
    """Render a view in a format (options: ``width`` for the terminal, ``path`` for files)."""
    return importlib.import_module(MODULES[Format(fmt)]).render(view, **options)


def unsupported(view: Any, fmt: Format) -> Exception:
    """The error for a view a format cannot show."""
    from attncli.errors import UsageError

    names = {Format.terminal: "the terminal", Format.json: "--json", Format.csv: "--csv", Format.figure: "a figure",
             Format.html: "an HTML page"}
    return UsageError(f"{names[fmt]} is not available for this output ({type(view).__name__})",
                      "choose another output")
