"""`attn softmax`: the softmax step of attention, on numbers you type."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from attncli.cli.common import outputs, show
from attncli.cli.options import JsonOpt, WidthOpt, finite
from attncli.errors import UsageError


def softmax(
    scores: Annotated[list[str], typer.Argument(metavar="SCORE", show_default=False,
                                                help="Attention scores, e.g. 1 2 3 (negative numbers work).")],
    scale: Annotated[
        Optional[int], typer.Option("--key-size", "-d", metavar="D",
                                    help="Divide scores by √D first, as attention does with key size D.")
    ] = None,
    old_scale: Annotated[Optional[int], typer.Option("--scale", hidden=True,
                                                     help="The old name of --key-size (kept for one release).")] = None,
    temperature: Annotated[float, typer.Option("--temperature", "-T", metavar="T", callback=finite,
                                               help="Divide scores by T (>1 flattens).")] = 1.0,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
) -> None:
    """Turn scores into attention weights: softmax([1, 2, 3]) → 0.09 0.24 0.67.

    \b
    Examples:
      attn softmax 1 2 3                 weights 0.09 0.24 0.67
      attn softmax 1 2 3 --key-size 64   divided by √64 = 8 first: flatter
      attn softmax -1 0 1 --json         negative scores; the numbers as JSON
    """
    from attncli.methods.softmax import softmax as compute

    if scale is not None and old_scale is not None:
        raise UsageError("--scale is the old name of --key-size", "give --key-size only")
    scale = scale if scale is not None else old_scale

    values = []
    for raw in scores:
        try:
            values.append(float(raw))
        except ValueError:
            raise UsageError(f"{raw!r} is not a number", "give scores like: attn softmax 1 2 3") from None
    show(compute(values, scale, temperature), outputs(as_json=as_json, width=width))
