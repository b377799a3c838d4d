"""Rich renderables for the terminal: top-k tables, per-layer profiles, shaded matrices, softmax steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from attncli.views.explain import LayerView, TokenProfile
    from attncli.methods.softmax import SoftmaxResult

_ORDINALS = ["1st", "2nd", "3rd"]


def ordinal(n: int) -> str:
    """1 → 1st, 4 → 4th."""
    return _ORDINALS[n - 1] if n <= 3 else f"{n}th"


def shade(weight: float, vmax: float) -> Style:
    """White→blue background for a weight in [0, vmax], with readable text on top."""
    t = 0.0 if vmax <= 0 else max(0.0, min(1.0, weight / vmax))
    r, g, b = (int(255 + (c - 255) * t) for c in (8, 48, 107))  # towards matplotlib's Blues end
    return Style(bgcolor=f"rgb({r},{g},{b})", color="white" if t > 0.5 else "black")


def token_text(label: str, special: bool) -> Text:
    """A token label; special tokens are dimmed so the eye skips them."""
    return Text(label, style="dim italic" if special else "bold")


def how(head: int | None, fuse: str, n_heads: int | None = None) -> str:
    """'head 3' or 'mean of 12 heads'."""
    if head is not None:
        return f"head {head}"
    if not n_heads:
        return f"heads fused by {fuse}"
    return f"{fuse} of {n_heads} heads" if n_heads > 1 else "its only head"


def view_title(view: "LayerView", n_heads: int | None = None) -> str:
    """Title line naming layer, head/fusion and model, plus the --skip-special note."""
    title = f"Layer {view.layer} · {view.method_note or how(view.head, view.fuse, n_heads)} · {view.model_id}"
    if view.skip_special:
        title += "\nspecial tokens hidden; each row renormalised over the remaining tokens"
    return title


def _weight_cell(label: str, weight: float) -> Text:
    """'cat 0.172' with the weight dimmed."""
    return Text.assemble((label, "bold"), " ", (f"{weight:.3f}", "cyan"))


def titled(title: str, *renderables) -> Group:
    """A title line above a table; unlike Table(title=…), it is not wrapped to the table's width."""
    return Group(Text(title, style="bold"), *renderables)


def top_table(view: "LayerView", k: int, n_heads: int | None = None) -> Group:
    """Each token with the k tokens it attends to most."""
    table = Table()
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    k = min(k, len(view.indices))
    for n in range(1, k + 1):
        table.add_column(ordinal(n))
    for pos, row in enumerate(view.top(k)):
        table.add_row(str(view.indices[pos]), token_text(view.labels[pos], view.special[pos]),
                      *(_weight_cell(view.labels[j], w) for j, w in row))
    return titled(view_title(view, n_heads), table)


def profile_table(profile: "TokenProfile", k: int, n_heads: int | None = None) -> Group:
    """One token's top-k attended tokens at every layer, and which token wins most layers."""
    title = (f'What "{profile.label}" (token {profile.token}) attends to, layer by layer · '
             f"{profile.method_note or how(profile.head, profile.fuse, n_heads)} · {profile.model_id}")
    if profile.skip_special:
        title += "\nspecial tokens hidden; each row renormalised over the remaining tokens"
    table = Table()
    table.add_column("layer", justify="right")
    k = min(k, len(profile.indices))
    for n in range(1, k + 1):
        table.add_column(ordinal(n))
    tops = profile.top(k)
    for layer, row in enumerate(tops):
        table.add_row(str(layer), *(_weight_cell(profile.labels[j], w) for j, w in row))
    return titled(title, table, Text(profile_summary(profile)))


def profile_summary(profile: "TokenProfile") -> str:
    """One sentence: the ordinary token (not itself, not special) that is on top in the most layers."""
    import numpy as np

    others = [j for j, i in enumerate(profile.indices) if i != profile.token and not profile.special[j]]
    if not others:
        return f'"{profile.label}" has no other ordinary token to attend to.'
    sub = profile.rows[:, others]  # (layers, other tokens)
    winners = sub.argmax(axis=1)  # per layer, the best other token
    wins = np.bincount(winners, minlength=len(others))
    # Most layer wins first; ties go to the larger mean weight.
    best = max(range(len(others)), key=lambda c: (wins[c], sub[:, c].mean()))
    layers = ", ".join(str(n) for n in np.flatnonzero(winners == best))
    return (f'Besides itself and special tokens, "{profile.label}" attends most to "{profile.labels[others[best]]}" '
            f"(token {profile.indices[others[best]]}): the top such token in {wins[best]} of {sub.shape[0]} layers "
            f"({layers}), mean weight {sub[:, best].mean():.3f}.")


def matrix_table(view: "LayerView", n_heads: int | None = None) -> Group:
    """The full token × token table, each cell shaded by its weight (rows: query, columns: key)."""
    table = Table(padding=(0, 0), show_lines=False)
    table.add_column("query ↓ key →", no_wrap=True)
    for label, special in zip(view.labels, view.special):
        table.add_column(token_text(label, special), justify="right", no_wrap=True)
    vmax = float(view.matrix.max()) if view.matrix.size else 1.0
    for i, row in enumerate(view.matrix):
        cells = [Text(f"{w:.2f}".lstrip("0") if w < 1 else "1.0", style=shade(float(w), vmax)) for w in row]
        table.add_row(token_text(view.labels[i], view.special[i]), *cells)
    rows_note = ("rows attend to columns; each row sums to 1" if view.method != "grad-rollout" or view.skip_special
                 else "rows: each column token's relevance to the row token (rows do not sum to 1)")
    return titled(view_title(view, n_heads) + "\n" + rows_note, table)


def softmax_table(result: "SoftmaxResult") -> Group:
    """The seed's walkthrough: scores → (scaled) logits → exp → weights, and who wins."""
    import math

    table = Table()
    table.add_column("element", justify="right")
    table.add_column("score", justify="right")
    scaled = result.dim is not None or result.temperature != 1.0
    if scaled:
        table.add_column(_divisor_label(result), justify="right")
    table.add_column("exp", justify="right")
    table.add_column("weight", justify="right")
    table.add_column("", no_wrap=True)
    top = max(result.logits)
    exps = [math.exp(x - top) for x in result.logits]
    total = sum(exps)
    for i, (score, logit, weight) in enumerate(zip(result.scores, result.logits, result.weights)):
        cells = [str(i), f"{score:g}"]
        if scaled:
            cells.append(f"{logit:.4g}")
        cells += [f"{math.exp(logit):.4g}" if logit < 700 else f"e^{logit:.4g}", f"{weight:.2f}",
                  "█" * round(weight * 20)]
        table.add_row(*cells, style="bold" if i == result.winner else None)
    sum_exp = f"{total * math.exp(top):.4g}" if top < 700 else f"e^{top:.4g} × {total:.4g}"
    note = Text(f"weights = exp / Σexp (Σexp = {sum_exp}); they sum to 1.\n"
                f"Element {result.winner} (score {result.scores[result.winner]:g}) gets the most attention: "
                f"{result.weights[result.winner]:.0%}.")
    return titled("softmax(scores)", table, note)


def _divisor_label(result: "SoftmaxResult") -> str:
    """Column header for scaled logits, e.g. 'score/√64/T'."""
    parts = ["score"]
    if result.dim is not None:
        parts.append(f"√{result.dim}")
    if result.temperature != 1.0:
        parts.append(f"{result.temperature:g}")
    return "/".join(parts)
