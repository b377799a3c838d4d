"""LongTable draws long tables exactly as rich's Table does, only faster."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attncli.render.longtable import LONG_ROWS, LongTable

LABELS = ["The", "cat", "🙂[1/4]", "猫", "[CLS]", "a-longer-token", "␣", "it"]


def _table(rows: int) -> Table:
    """A top-k table as `attn explain` builds it: right-justified dim index, styled tokens, two-style cells."""
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    for name in ("1st", "2nd"):
        table.add_column(name)
    for i in range(rows):
        label = LABELS[i % len(LABELS)]
        table.add_row(str(i), Text(label, style="dim italic" if label == "[CLS]" else "bold"),
                      *(Text.assemble((LABELS[(i + k) % len(LABELS)], "bold"), " ", (f"{1 / (i + k + 1):.3f}", "cyan"))
                        for k in (1, 2)))
    return table


def _printed(renderable, colour: bool, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=colour, color_system="truecolor" if colour else None,
                      soft_wrap=False, highlight=False)
    console.print(renderable, crop=False)
    return console.file.getvalue()


def _styled(ansi: str) -> list[tuple[str, str]]:
    """Each character with the style it is drawn in (how the ANSI codes are grouped does not matter)."""
    text = Text.from_ansi(ansi)
    return [(ch, str(text.get_style_at_offset(Console(), i))) for i, ch in enumerate(text.plain)]


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_a_long_table_is_drawn_as_rich_draws_it(colour):
    ours, theirs = _printed(LongTable(_table(LONG_ROWS + 5)), colour), _printed(_table(LONG_ROWS + 5), colour)
    assert LongTable(_table(LONG_ROWS)).lines(Console(width=80), 80) is not None  # the line-by-line path ran
    if colour:
        assert _styled(ours) == _styled(theirs)
    else:
        assert ours == theirs


def test_short_wide_or_multi_line_tables_are_left_to_rich():
    console = Console(width=80)
    assert LongTable(_table(LONG_ROWS)).lines(console, 30) is None  # too wide: rich wraps it
    multi = _table(LONG_ROWS)
    multi.add_row("1", "two\nlines", "x", "y")
    assert LongTable(multi).lines(console, 80) is None
    assert _printed(LongTable(_table(3)), False) == _printed(_table(3), False)
    assert _printed(LongTable(_table(LONG_ROWS)), False, width=30) == _printed(_table(LONG_ROWS), False, width=30)
