"""Run a model and keep what it attended to: the Capture every view and method reads.

Index bookkeeping is the biggest footgun in attention tools, so there is exactly one layout:
``attentions[layer, head, query, key]``, float32 on the CPU, no batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import Fuse, Kind
from attncli.errors import CaptureError, NotSupportedError
from attncli.grid import PatchGrid
from attncli.methods.heads import layer_map, resolve_index

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Prediction:
    """One class score of a classifier."""

    index: int
    label: str
    score: float


@dataclass
class Capture:
    """Attention weights of one input through one model, with everything needed to label them.

    Shapes:
        attentions: ``(layers, heads, query, key)`` float32; for text ``query == key == len(tokens)``,
            for images ``len(tokens) == grid.n_tokens`` (prefix tokens first, then patches row-major).
        image: ``(height, width, 3)`` uint8, the image as the model saw it after preprocessing (or None).
        source: the absolute path of the input file (image, or text file) when there was one.

    Encoder-decoder captures (``attn align``, ``attn caption``; ``cross_attentions is not None``):
        attentions: the ENCODER's self-attention over the source, so ``tokens``/``special``/``grid`` label the
            source exactly as for an encoder-only capture (text tokens, or the image's patch grid).
        cross_attentions: ``(decoder layers, heads, target, source)``: row ``t`` is the decoder step that
            produced ``target_tokens[t]`` (its input is the token before it, or the start token).
        decoder_attentions: ``(decoder layers, heads, target, target)``, the decoder's causal self-attention
            over the same steps.
        target_tokens/target_special/target_scores: one label, special flag and model probability per target
            token; ``decoding`` says whether the target was generated or given, and with which settings.
    Layers and heads are 0-based; -1 is the last.
    """

    attentions: "np.ndarray"
    tokens: list[str]
    special: list[bool]
    model_id: str
    kind: Kind = Kind.text
    arch: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    grid: PatchGrid | None = None
    image: "np.ndarray | None" = None
    source: str | None = None
    predictions: list[Prediction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cross_attentions: "np.ndarray | None" = None
    decoder_attentions: "np.ndarray | None" = None
    target_tokens: list[str] = field(default_factory=list)
    target_special: list[bool] = field(default_factory=list)
    target_scores: list[float] = field(default_factory=list)
    target_text: str | None = None
    decoding: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None  # absolute folder (or hub id) the model was loaded from: grad-rollout reloads it
    input_size: tuple[int, int] | None = None  # (width, height) of the image file before preprocessing
    words: list[int | None] = field(default_factory=list)  # word index of each text token (None: special); [] unknown

    def __post_init__(self) -> None:
        self.kind = Kind(self.kind)

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        """Heads per layer."""
        return int(self.attentions.shape[1])

    @property
    def n_tokens(self) -> int:
        """Sequence length (query and key)."""
        return int(self.attentions.shape[-1])

    def layer_index(self, layer: int) -> int:
        """Resolve a 0-based layer number (-1 = last) or raise naming the range."""
        return resolve_index(layer, self.n_layers, "layer")

    def head_index(self, head: int) -> int:
        """Resolve a 0-based head number (-1 = last) or raise naming the range."""
        return resolve_index(head, self.n_heads, "head")

    def map(self, layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
        """(query, key) attention of one layer: a single head, or the heads fused."""
        return layer_map(self.attentions, layer, head, fuse)

    def cross_map(self, layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
        """(target, source) cross-attention of one decoder layer: a single head, or the heads fused."""
        if self.cross_attentions is None:
            raise NotSupportedError(f"this capture of {self.model_id} has no cross-attention",
                                    "capture one with attn align or attn caption")
        return layer_map(self.cross_attentions, layer, head, fuse)


def architecture(config: Any) -> dict[str, Any]:
    """Facts about a model worth showing next to its attention."""
    keys = {
        "model_type": "model_type",
        "num_hidden_layers": "layers",
        "num_attention_heads": "heads",
        "hidden_size": "hidden_size",
        "max_position_embeddings": "max_positions",
        "image_size": "image_size",
        "patch_size": "patch_size",
    }
    facts = {short: getattr(config, name) for name, short in keys.items() if getattr(config, name, None) is not None}
    facts["attn_implementation"] = getattr(config, "_attn_implementation", None)
    return facts


def stack_attentions(attentions: Any, what: str = "attention", item: int | None = 0) -> "np.ndarray":
    """Tuple of per-layer (batch, heads, q, k) tensors → (layers, heads, q, k) float32 for one batch item.

    ``item=None`` keeps the whole batch: (batch, layers, heads, q, k).
    """
    if attentions is None or len(attentions) == 0 or any(a is None for a in attentions):
        raise CaptureError(
            f"the model returned no {what} weights",
            "it likely computes attention in a fused kernel; attncli loads models with eager attention, "
            "so this architecture does not support returning them yet",
        )
    import torch

    if item is None:
        stacked = torch.stack(tuple(attentions), dim=1)  # (B, L, H, Q, K)
    else:
        stacked = torch.stack([a[item] for a in attentions])  # (L, H, Q, K)
    return stacked.detach().to(torch.float32).cpu().numpy()
