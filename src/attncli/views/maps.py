"""Attention maps to draw, computed from a Capture with numpy only (no torch, no model).

``query_map`` gets the (query, key) rows of the chosen method from ``attncli.methods.dispatch`` (raw
attention of one layer, one head or fused heads; rollout; flow; gradient rollout) and lays the query's row
out on the patch grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncli.choices import Fuse, Method
from attncli.errors import UsageError
from attncli.methods.heads import resolve_index, top_k

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture


@dataclass
class AttentionMap:
    """What one figure or terminal grid shows.

    ``values`` is ``(rows, cols)`` for an image query over its patches, ``(heads, rows, cols)`` for all heads,
    ``(tokens, tokens)`` for a text matrix, or ``(tokens,)`` for one text query.
    """

    values: "np.ndarray"
    kind: str  # "grid", "heads", "matrix" or "row"
    layer: int
    head: int | None
    fuse: str
    query: int | None  # token index of the query, None for a whole matrix
    query_label: str | None
    model_id: str
    labels: list[str]
    special: list[bool]
    outside: float | None = None  # for grids: share of the query's attention that went to prefix tokens
    method: str = "attention"  # attncli.choices.Method value
    method_note: str | None = None  # how a non-attention map was made, e.g. "rollout of layers 0–5 (mean)"

    @property
    def who(self) -> str:
        """The query as a reader would name it: '[CLS]', 'patch (3,4)' or a token."""
        if self.query is None:
            return "every token"
        if self.kind in ("grid", "heads") and not self.special[self.query]:
            return f"patch {self.query_label}"
        return str(self.query_label)

    def how(self, n_heads: int) -> str:
        """'head 3', 'mean of 12 heads' or 'all 12 heads'."""
        if self.method_note:
            return self.method_note
        if self.kind == "heads":
            return f"all {n_heads} heads"
        return f"head {self.head}" if self.head is not None else f"{self.fuse} of {n_heads} heads"


def parse_query(capture: "Capture", query: str | None) -> int | None:
    """Token index of --query: 'ROW,COL' or a prefix name like [CLS] for images; an index or word for text."""
    if query is None:
        return None
    text = query.strip()
    if capture.kind == "image" and capture.grid is not None:
        grid = capture.grid
        for i, label in enumerate(grid.prefix_labels):
            if text.lower() in (label.lower(), label.strip("[]").lower()):
                return i
        parts = text.replace("(", "").replace(")", "").split(",")
        try:
            row, col = (int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--query {query!r}: give a patch as ROW,COL (e.g. 3,4) or a prefix token "
                             f"({', '.join(grid.prefix_labels)})") from None
        row = resolve_index(row, grid.rows, "row", "the patch grid")
        col = resolve_index(col, grid.cols, "column", "the patch grid")
        return grid.token_of(row, col)
    from attncli.views.explain import find_token

    try:
        return find_token(capture, text)
    except UsageError as exc:  # same lookup as explain --token; name the option the user typed
        hint = exc.hint and exc.hint.replace("--token", "--query")
        raise UsageError(exc.message.replace("--token", "--query"), hint) from None


def query_map(
    capture: "Capture",
    layer: int = -1,
    head: int | None = None,
    fuse: Fuse | str = Fuse.mean,
    query: int | None = None,
    method: Method | str = Method.attention,
    discard_ratio: float = 0.0,
    gradients: "np.ndarray | None" = None,
    target_label: str | None = None,
) -> AttentionMap:
    """Image: the query token's attention (default CLS) over the patch grid. Text: the matrix, or one query's row.

    ``method`` picks the map (attncli.methods.dispatch); grad-rollout needs ``gradients`` (attncli.gradcapture).
    """
    from attncli.methods.dispatch import check_method_options, describe, method_rows

    method = check_method_options(method, head, discard_ratio)
    layer_i = capture.layer_index(layer)
    head_i = capture.head_index(head) if head is not None else None
    fuse_name = Fuse(fuse).value
    is_grid = capture.kind == "image" and capture.grid is not None
    q = (0 if query is None else query) if is_grid else query
    protect = range(capture.grid.prefix) if is_grid else (0,)  # rollout never discards the CLS-like column(s)
    matrix = method_rows(capture.attentions, method, layer_i, head=head_i, fuse=fuse, discard_ratio=discard_ratio,
                         gradients=gradients, protect=protect, queries=None if q is None else [q])  # (Q or 1, K)
    note = None if method is Method.attention else describe(method, layer_i, head_i, fuse_name, capture.n_heads,
                                                            discard_ratio, target_label)
    common = dict(layer=layer_i, head=head_i, fuse=fuse_name, model_id=capture.model_id,
                  labels=list(capture.tokens), special=list(capture.special), method=method.value, method_note=note)
    if is_grid:
        values, outside = _on_grid(matrix[0], capture)
        if method is Method.grad_rollout:
            outside = None  # relevance rows do not sum to 1: there is no "share" left on the prefix
        return AttentionMap(values=values, kind="grid", query=q, query_label=capture.tokens[q], outside=outside,
                            **common)
    if query is None:
        return AttentionMap(values=matrix, kind="matrix", query=None, query_label=None, **common)
    return AttentionMap(values=matrix[0], kind="row", query=query, query_label=capture.tokens[query], **common)


def head_maps(capture: "Capture", layer: int = -1, query: int | None = None) -> AttentionMap:
    """Every head of one layer as its own grid: values (heads, rows, cols) (images only)."""
    import numpy as np

    if capture.kind != "image" or capture.grid is None:
        raise UsageError("--all-heads draws one patch-grid panel per head: it needs an image capture",
                         "for text, pick one head with --head")
    layer_i = capture.layer_index(layer)
    q = 0 if query is None else query
    panels = [_on_grid(capture.attentions[layer_i, h, q], capture)[0] for h in range(capture.n_heads)]
    outside = float(1.0 - np.mean([p.sum() for p in panels]))
    return AttentionMap(values=np.stack(panels), kind="heads", layer=layer_i, head=None, fuse="none", query=q,
                        query_label=capture.tokens[q], model_id=capture.model_id, labels=list(capture.tokens),
                        special=list(capture.special), outside=outside)


def _on_grid(row: "np.ndarray", capture: "Capture") -> "tuple[np.ndarray, float]":
    """A (tokens,) attention row → its patch part as (rows, cols), and the share left on prefix tokens."""
    grid = capture.grid
    patches = row[grid.prefix:grid.prefix + grid.n_patches]  # (rows*cols,)
    # Not renormalised: the colours show real weights; what the prefix tokens took is reported instead.
    return patches.reshape(grid.rows, grid.cols), float(1.0 - patches.sum())


def top_patches(amap: AttentionMap, k: int = 3) -> list[tuple[int, int, float]]:
    """The k highest cells of a grid map as (row, col, weight), highest first."""
    rows, cols = amap.values.shape
    return [(i // cols, i % cols, w) for i, w in top_k(amap.values.reshape(-1), k)]


def describe_top(amap: AttentionMap, k: int = 3) -> str:
    """'(3,4) 0.081, (3,5) 0.062, (4,4) 0.050'."""
    return ", ".join(f"({r},{c}) {w:.3f}" for r, c, w in top_patches(amap, k))
