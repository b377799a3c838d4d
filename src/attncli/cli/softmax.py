"""`attn softmax`: the softmax step of attention, on numbers you type."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from attncli.cli.common import out, print_json
from attncli.cli.options import JsonOpt
from attncli.errors import UsageError


def softmax(
    scores: Annotated[list[str], typer.Argument(help="Attention scores, e.g. 1 2 3 (negative numbers work).")],
    scale: Annotated[
        Optional[int], typer.Option("--scale", help="Divide scores by √D first, as attention does with key size D.")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", "-T", help="Divide scores by T (>1 flattens).")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Turn scores into attention weights: softmax([1, 2, 3]) → 0.09 0.24 0.67."""
    from attncli.methods.softmax import softmax as compute

    values = []
    for raw in scores:
        try:
            values.append(float(raw))
        except ValueError:
            raise UsageError(f"{raw!r} is not a number", "give scores like: attn softmax 1 2 3") from None
    result = compute(values, scale, temperature)
    if as_json:
        print_json(result.to_dict())
    else:
        from attncli.render.terminal import softmax_table

        out().print(softmax_table(result))
