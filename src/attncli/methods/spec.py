"""What a method module declares (its ``METHOD``) and what its functions receive; see attncli.methods.registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from attncli.choices import Fuse

if TYPE_CHECKING:
    import numpy as np

ONE = "layer"  # Span: the method reads the layer asked only
UPTO = "upto"  # Span: the method combines every layer from the first up to the one asked


@dataclass
class Inputs:
    """What a method's ``rows`` function receives: stored arrays and the stored positions to read.

    ``attentions`` is ``(stored layers, heads, query rows, key)``; ``layer`` and ``head`` are stored positions
    (``head`` None: the heads fused by ``fuse``); ``queries`` the stored query rows wanted (None: every row);
    ``extras`` the capture's named arrays (layers first, aligned with ``attentions``); ``gradients`` the
    attention gradients (same shape as ``attentions``) when the method declares it needs them.
    """

    attentions: "np.ndarray"
    layer: int
    head: int | None = None
    fuse: Fuse = Fuse.mean
    queries: list[int] | None = None
    discard_ratio: float = 0.0
    protect: Sequence[int] = (0,)
    drop: Sequence[Sequence[int]] | None = None
    gradients: "np.ndarray | None" = None
    extras: dict[str, "np.ndarray"] = field(default_factory=dict)
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class Words:
    """The pieces of a map's description: ``span`` ('layer 5', 'layers 0–5'), ``heads`` ('head 3', 'mean of 12
    heads'), ``fuse``, and the options that change the map."""

    span: str
    heads: str
    fuse: str
    discard_ratio: float = 0.0
    target: str | None = None
    drop_sinks: bool = False
    head: int | None = None  # the model head shown (None: the heads fused)
    n_heads: int | None = None  # heads of the layer


@dataclass(frozen=True)
class MethodInfo:
    """A method's declaration (see the module docstring); ``rows(Inputs) -> (queries, key)`` computes its map."""

    name: str  # the --method value
    summary: str  # one line for --help and the docs
    span: str  # ONE or UPTO
    rows: Callable[[Inputs], "np.ndarray"]
    words: Callable[[Words], str]  # how a map was made, for titles
    one_head: bool = False  # --head picks a single head
    fuses: bool = False  # --fuse max|min changes the map (mean is always accepted)
    raw: bool = False  # the model's own weights: a capture of fused heads serves it, and so does cross-attention
    each_head: bool = False  # its map of fused heads reads every head's weights (the capture must keep them all)
    sums_to_one: bool = True  # every row is a distribution over the keys
    quantity: str = "attention"  # what the numbers are, for titles and JSON
    minmax: bool = False  # colours stretched over min..max by default (else 0..max)
    extras: tuple[str, ...] = ()  # Capture.extras it reads
    gradients: bool = False  # reads the attention gradients of a classifier (a second pass with autograd)
    options: frozenset[str] = frozenset()  # of "discard_ratio", "drop_sinks", "target"
    few_rows: bool = False  # slow per row: the page computes an image's prefix rows only
    work: Callable[[int, int, int], float] | None = None  # cost estimate (tokens, layers, rows), refused above max_work
    max_work: float = float("inf")
    every_layer: Callable[[Inputs], "np.ndarray"] | None = None  # (layers, queries, key) in one pass, when cheaper
    missing: str = ""  # why a capture may lack the extras, and which models supply them

    def all_layers(self, inputs: Inputs) -> "np.ndarray":
        """(stored layers, queries, key): the method's map at every stored layer (up to each, for UPTO)."""
        import dataclasses

        import numpy as np

        if self.every_layer is not None:
            return self.every_layer(inputs)
        return np.stack([self.rows(dataclasses.replace(inputs, layer=slot)) for slot in range(inputs.attentions.shape[0])])


