"""JSON renderer: every view's stable document (its ``to_dict``), as text for stdout."""

from __future__ import annotations

import json
from functools import singledispatch
from typing import Any

from attncli.choices import Format


@singledispatch
def render(view: Any, **options: Any) -> str:
    """The view's JSON document, indented, with a final newline."""
    to_dict = getattr(view, "to_dict", None)
    if to_dict is None:
        from attncli.render import unsupported

        raise unsupported(view, Format.json)
    return json.dumps(to_dict(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"
