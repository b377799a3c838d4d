"""Long tables drawn line by line: what rich's Table prints, without its per-cell layout cost.

rich lays out every cell of a Table as its own renderable (measure, pad, align, join), about 0.1 ms a cell: a
table of one row per token of a 4,000-token prompt takes seconds, longer than the model's forward. A table whose
cells are all single lines and whose columns fit at their natural width needs none of that: each row is one line
of known width. :class:`LongTable` draws such tables as rich would (same box, padding, justification and styles,
tested against rich's own output) and hands any other table, or a short one, to rich unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

LONG_ROWS = 200  # shorter tables go to rich as they are: the saving would not show


class LongTable:
    """A rich renderable around a Table: drawn line by line when it is long, fits, and has one-line cells."""

    def __init__(self, table: "Table") -> None:
        self.table = table

    def __rich_console__(self, console: "Console", options: "ConsoleOptions") -> "RenderResult":
        lines = self.lines(console, options.max_width) if self.table.row_count >= LONG_ROWS else None
        if lines is None:
            yield self.table
        elif console.color_system is None:  # no styles to draw (a pipe, a file, NO_COLOR): the characters alone
            for line in lines:
                yield Segment(line.plain + "\n")
        else:
            yield from lines

    def lines(self, console: "Console", max_width: int) -> list[Text] | None:
        """The table's lines, or None when rich must lay it out (a cell of several lines, or too wide)."""
        table = self.table
        if (table.box is None or not table.show_header or table.show_footer or not table.show_edge
                or table.padding != (0, 1, 0, 1) or table.title or table.caption or table.expand):
            return None
        columns = table.columns
        if any(c.justify not in ("left", "right") or c.width or c.min_width or c.max_width or c.ratio
               for c in columns):
            return None
        bodies = [[_text(cell) for cell in column.cells] for column in columns]
        if any("\n" in cell.plain for body in bodies for cell in body):
            return None
        widths = [max([cell_len(str(column.header)), *(cell.cell_len for cell in body)])
                  for column, body in zip(columns, bodies)]
        if sum(widths) + 3 * len(widths) + 1 > max_width:
            return None
        box = table.box.substitute(console.options, safe=table.safe_box)
        border = console.get_style(table.border_style or "")
        head = console.get_style(table.header_style or "")
        padded = [w + 2 for w in widths]
        out = [Text(box.get_top(padded), style=border)]
        out.append(_row([Text(str(c.header)) for c in columns], widths, columns,
                        [head + console.get_style(c.header_style or "") for c in columns], box.head_vertical,
                        box.head_left, box.head_right, border))
        out.append(Text(box.get_row(padded, "head"), style=border))
        styles = [console.get_style(c.style or "") for c in columns]
        for cells in zip(*bodies):
            out.append(_row(cells, widths, columns, styles, box.mid_vertical, box.mid_left, box.mid_right, border))
        out.append(Text(box.get_bottom(padded), style=border))
        for line in out:
            line.no_wrap, line.overflow, line.end = True, "ignore", "\n"
        return out


def _text(cell: object) -> Text:
    """A cell as Text (tables here hold str and Text)."""
    return cell if isinstance(cell, Text) else Text(str(cell))


def _row(cells: Iterable[Text], widths: list[int], columns: list, styles: list, vertical: str, left: str,
         right: str, border: object) -> Text:
    """One row: each cell padded by one space and justified in its column's width, with the column's style under it."""
    line = Text(left, style=border)
    for i, (cell, width, column, style) in enumerate(zip(cells, widths, columns, styles)):
        if i:
            line.append(vertical, style=border)
        gap = " " * (width - cell.cell_len)
        part = Text(" ", style=style)
        if column.justify == "right":  # the gap takes the cell's own style, as rich pads a Text
            part.append(gap, style=cell.style)
            part.append_text(cell)
        else:
            part.append_text(cell)
            part.append(gap, style=cell.style)
        part.append(" ")
        line.append_text(part)
    line.append(right, style=border)
    return line
