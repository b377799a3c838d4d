"""CSV renderer: one header line and one line per row (per-head statistics)."""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from attncli.choices import Format
from attncli.views.stats import StatsReport


@singledispatch
def render(view: Any, **options: Any) -> str:
    """Views without rows have no CSV."""
    from attncli.render import unsupported

    raise unsupported(view, Format.csv)


@render.register
def _(view: StatsReport, **options: Any) -> str:
    return view.to_csv()
