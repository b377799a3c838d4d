"""The method registry: every map method is one module that declares what it reads and computes its rows.

A method module defines ``METHOD = MethodInfo(...)``. The declaration says what the method needs from a capture
(the layer asked, or every layer up to it; one head or the heads fused; extra arrays by name from
``Capture.extras``; attention gradients), what its rows mean (whether they sum to 1), which options apply
(``--head``, ``--fuse`` beyond mean, ``--discard-ratio``, ``--drop-sinks``, ``--target``), and the functions
that compute it. Capture selection, the views, the CLI's ``--method`` choices and help, the option checks and the
interactive page's method list all read :data:`METHODS`.

Adding a method: one module in ``attncli/methods/`` with its ``METHOD``, its tests, and one line in ``MODULES``.
"""

from __future__ import annotations

import importlib
from enum import Enum
from typing import TYPE_CHECKING, Any

from attncli.methods.spec import MethodInfo

# The registry's list, in the order --help and the page show the methods: one line per method module.
MODULES = (
    "attncli.methods.attention",
    "attncli.methods.rollout",
    "attncli.methods.flow",
    "attncli.methods.gradients",
    "attncli.methods.value_norm",
    "attncli.methods.value_norm_rollout",
)


def _load() -> dict[str, MethodInfo]:
    found = {}
    for name in MODULES:
        info = importlib.import_module(name).METHOD
        found[info.name] = info
    return found


METHODS: dict[str, MethodInfo] = _load()

# The CLI's --method choices (typer needs an Enum): built from the registry, member names with '_' for '-'.
if TYPE_CHECKING:  # what the type checker sees: the members the code names (a new method needs no line here)
    class Method(str, Enum):
        attention = "attention"
        rollout = "rollout"
        flow = "flow"
        grad_rollout = "grad-rollout"
        value_norm = "value-norm"
        value_norm_rollout = "value-norm-rollout"
else:
    Method = Enum("Method", [(n.replace("-", "_"), n) for n in METHODS], type=str, module=__name__,
                  qualname="Method")
Method.__doc__ = "How a map is computed from a capture (one member per registered method, attncli.methods.registry)."


def info(method: "Method | str") -> MethodInfo:
    """The declaration of a method, by member or name."""
    return METHODS[Method(method).value]


def names_with(option: str) -> str:
    """'rollout or flow': the methods that accept an option (discard_ratio, drop_sinks, target)."""
    names = [m.name for m in METHODS.values() if option in m.options]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def choices() -> str:
    """'attention|rollout|…' for a metavar."""
    return "|".join(METHODS)


def help_text() -> str:
    """The --method help: each method's name and summary."""
    return "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + "."


def page_info(discard_ratio: float = 0.0, target: str | None = None, n_heads: int | None = None,
              ) -> dict[str, dict[str, Any]]:
    """What the interactive page needs to know of each method: rows sum to 1, one head, the fusions it can switch
    (one array per fusion: methods computed in one pass), span, and its title words with {span}, {heads}, {fuse}."""
    from attncli.methods.spec import Words

    return {m.name: {"normalised": m.sums_to_one, "one_head": m.one_head, "span": m.span,
                     "fuses": m.fuses and (m.raw or m.every_layer is not None),
                     "words": m.words(Words("{span}", "{heads}", "{fuse}", discard_ratio, target, n_heads=n_heads))}
            for m in METHODS.values()}
