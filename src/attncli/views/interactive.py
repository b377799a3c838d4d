"""The interactive view: everything the standalone HTML page needs, built once from a Capture (numpy only).

Weights travel compactly. Every stored ``(query, key)`` matrix ``m`` is quantised to 8 bits with its own
affine scale: ``q = round((m - low) / scale)`` with ``low = min(0, m.min())`` and
``scale = (m.max() - low) / 255``; the page reads ``low + q * scale``, so every number it shows is within
``scale / 2`` of the capture (at most 1/510 ≈ 0.00196 for attention weights, whose largest value is at most 1).
One stored layer (all its heads) is one zlib stream, base64 in the page, inflated there by the browser's own
``DecompressionStream`` (no library, works from ``file://`` with the network off).

Size: the page's data is bounded by ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 25 MB). When the
layers would not fit, the earliest layers are dropped (the last ones asked for are kept) and the view says so
in ``dropped`` and ``warnings``. A ViT-B/16 capture (12 × 12 × 197 × 197) stays under 5 MB without dropping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from attncli.choices import Fuse, Kind, Method
from attncli.errors import NotSupportedError, UsageError
from attncli.methods.heads import resolve_index

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

# The default size limit of the page, in bytes (decimal MB): a 512-token BERT-base capture's attention.
DEFAULT_MAX_BYTES = 25_000_000
# What the page costs besides the weights: its JS and CSS (~40 kB) with room to spare.
PAGE_ALLOWANCE = 80_000
LEVELS = 255  # 8 bits per weight

PRECISION = ("weights stored as 8 bits per (query, key) matrix with a per-matrix scale: "
             "shown value = low + q × scale, max abs error ≤ scale/2")


@dataclass(frozen=True)
class PackedArray:
    """A ``(layers, heads, query, key)`` array as 8-bit matrices, one zlib+base64 chunk per stored layer.

    ``value[l, h] = lows[l][h] + q[l, h] * scales[l][h]``; ``layers`` are the model's layer numbers of the
    stored layers; ``queries`` the token index of each stored query row (None: every token, in order).
    """

    shape: tuple[int, int, int, int]
    layers: tuple[int, ...]
    scales: list[list[float]]
    lows: list[list[float]]
    chunks: list[str]
    queries: tuple[int, ...] | None = None

    @property
    def nbytes(self) -> int:
        """Characters of base64 this array adds to the page."""
        return sum(len(c) for c in self.chunks)

    def layer_bytes(self, layer: int) -> int:
        """Base64 characters of one stored model layer."""
        return len(self.chunks[self.layers.index(layer)])

    def max_error(self) -> float:
        """The largest error bound (scale/2) over the stored matrices."""
        return max((s / 2 for row in self.scales for s in row), default=0.0)

    def keep(self, layers: Sequence[int]) -> "PackedArray":
        """The same array restricted to some of its stored layers."""
        idx = [self.layers.index(l) for l in layers]
        return PackedArray((len(idx), *self.shape[1:]), tuple(layers), [self.scales[i] for i in idx],
                           [self.lows[i] for i in idx], [self.chunks[i] for i in idx], self.queries)

    def unpack(self) -> "np.ndarray":
        """Decode back to float64 ``(layers, heads, query, key)``: exactly what the page computes."""
        import base64
        import zlib

        import numpy as np

        _, heads, q, k = self.shape
        out = []
        for chunk, scales, lows in zip(self.chunks, self.scales, self.lows):
            codes = np.frombuffer(zlib.decompress(base64.b64decode(chunk)), dtype=np.uint8).reshape(heads, q, k)
            out.append(np.asarray(lows)[:, None, None] + codes * np.asarray(scales)[:, None, None])
        return np.stack(out)

    def to_dict(self) -> dict:
        """Plain dict for the page's JSON."""
        d = asdict(self)
        d["shape"], d["layers"] = list(self.shape), list(self.layers)
        d["queries"] = None if self.queries is None else list(self.queries)
        return d


def pack(array: "np.ndarray", layers: Sequence[int], queries: Sequence[int] | None = None,
         level: int = 6) -> PackedArray:
    """Quantise ``(layers, heads, query, key)`` weights to 8 bits per matrix and compress each layer."""
    import base64

    import numpy as np

    if array.ndim != 4 or array.shape[0] != len(layers):
        raise ValueError(f"expected (layers={len(layers)}, heads, query, key), got {array.shape}")
    scales, lows, chunks = [], [], []
    for layer in array:  # one layer at a time: float64 copies of a 512-token layer are 25 MB, not 300
        m = layer.astype(np.float64)  # (H, Q, K)
        low = np.minimum(m.min(axis=(1, 2)), 0.0)  # (H,)
        scale = (m.max(axis=(1, 2)) - low) / LEVELS  # (H,)
        safe = np.where(scale > 0, scale, 1.0)
        codes = np.rint((m - low[:, None, None]) / safe[:, None, None]).clip(0, LEVELS).astype(np.uint8)
        scales.append([float(s) for s in scale])
        lows.append([float(v) for v in low])
        chunks.append(base64.b64encode(_deflate(codes.tobytes(), level)).decode("ascii"))
    return PackedArray(tuple(int(n) for n in array.shape), tuple(int(l) for l in layers), scales, lows, chunks,
                       None if queries is None else tuple(int(q) for q in queries))


def _deflate(data: bytes, level: int) -> bytes:
    """The smaller of two zlib streams: ordinary deflate, or Huffman coding alone.

    Diffuse attention (near-uniform rows) has few repeats for LZ77 to find, and Huffman-only coding beats it
    (46% vs 53% of the 8-bit codes for softmaxed noise over 512 keys) at a tenth of the time; peaked
    attention, full of zero runs, is where ordinary deflate wins.
    """
    import zlib

    huffman = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    candidates = [huffman.compress(data) + huffman.flush(), zlib.compress(data, level)]
    return min(candidates, key=len)


@dataclass
class InteractiveView:
    """What the interactive page shows: labels, the picture, and the packed weights of each method.

    ``kind``: "text" or "image" (self-attention: queries and keys are ``tokens``), "align" (cross-attention:
    queries are ``target_tokens``, keys the source ``tokens``) or "caption" (queries are the caption's words,
    keys the image tokens). ``arrays`` maps a name to packed ``(stored layers, heads, query, key)`` weights:
    "attention" (all heads), "rollout-mean"/"rollout-max"/"rollout-min", "flow" and "grad-rollout" (one
    "head": the method's map after each stored layer). Layers and heads are 0-based model numbers.
    """

    kind: str
    model_id: str
    input: str
    tokens: list[str]
    special: list[bool]
    n_layers: int
    n_heads: int
    layers: list[int]
    methods: list[str]
    arrays: dict[str, PackedArray]
    focus: int = 0
    grid: dict | None = None
    image_uri: str | None = None
    target_tokens: list[str] = field(default_factory=list)
    target_special: list[bool] = field(default_factory=list)
    target_scores: list[float] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    target_label: str | None = None
    discard_ratio: float = 0.0
    precision: str = PRECISION
    max_error: float = 0.0
    max_bytes: int = DEFAULT_MAX_BYTES
    dropped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Estimated size of the page in bytes: weights, picture, labels and the page's own code."""
        labels = sum(len(t.encode()) + 8 for t in self.tokens + self.target_tokens)
        return (sum(a.nbytes for a in self.arrays.values()) + len(self.image_uri or "") + labels
                + len(self.input.encode()) + PAGE_ALLOWANCE)

    def to_dict(self) -> dict:
        """Plain, JSON-ready dict: the page's data."""
        d = {k: v for k, v in asdict(self).items() if k != "arrays"}
        d["arrays"] = {name: a.to_dict() for name, a in self.arrays.items()}
        return d


def interactive_view(
    capture: "Capture",
    *,
    methods: Sequence[Method | str] = (Method.attention,),
    layers: Sequence[int] | None = None,
    gradients: "np.ndarray | None" = None,
    target_label: str | None = None,
    discard_ratio: float = 0.0,
    max_bytes: int | None = None,
) -> InteractiveView:
    """Build the interactive page's view of a capture: packed weights of the chosen layers and methods."""
    import numpy as np

    if capture.kind is Kind.audio:
        raise UsageError("the interactive page does not draw audio yet", "write a figure (-o FILE.png) or --json")
    capture.check_heads("the interactive page")
    budget = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    asked = [Method(m) for m in methods] or [Method.attention]
    cross = capture.cross_attentions is not None
    partial = not cross and capture.layer_ids is not None  # some layers: named by their model numbers
    if not cross:  # every query row and head: the page draws whole matrices
        from attncli.views.common import require_whole

        require_whole(capture, "the interactive page", layers=False, heads=True)
    weights = capture.cross_attentions if cross else capture.attentions  # (L, H, Q, K)
    weights = np.asarray(weights, dtype=np.float32)
    n_layers, n_heads = int(weights.shape[0]), int(weights.shape[1])
    if partial and layers is not None:
        kept = sorted({capture.layer_index(int(l)) for l in layers})
    else:
        kept = _resolve_layers(layers, n_layers)
    numbers = capture.layer_ids if partial else list(range(n_layers))
    warnings = list(capture.warnings)
    arrays = {"attention": pack(weights[kept], [numbers[i] for i in kept])}
    if partial and any(m is not Method.attention for m in asked):
        warnings.append(f"rollout, flow and grad-rollout combine every layer, but this capture kept layers "
                        f"{_spans(numbers)} of {capture.total_layers}: the page shows attention only (capture "
                        "again with --layers all for the rest)")
        asked, discard_ratio = [Method.attention], 0.0
    if cross:
        if any(m is not Method.attention for m in asked):
            warnings.append("rollout, flow and grad-rollout apply to self-attention; the page shows the "
                            "cross-attention itself")
        asked = [Method.attention]
    else:
        arrays.update(_method_arrays(capture, weights, asked, kept, gradients, discard_ratio))
    view = InteractiveView(
        kind=_kind(capture), model_id=capture.model_id, input=_input_words(capture),
        tokens=list(capture.tokens), special=[bool(s) for s in capture.special],
        n_layers=capture.total_layers if partial else n_layers, n_heads=n_heads, layers=[numbers[i] for i in kept],
        methods=[m.value for m in dict.fromkeys([*asked, Method.attention])], arrays=arrays,
        grid=capture.grid.to_dict() if capture.grid is not None else None,
        image_uri=png_data_uri(capture.image) if capture.image is not None else None,
        target_tokens=list(capture.target_tokens), target_special=[bool(s) for s in capture.target_special],
        target_scores=[float(s) for s in capture.target_scores],
        predictions=[{"label": p.label, "score": float(p.score)} for p in capture.predictions],
        target_label=target_label, discard_ratio=float(discard_ratio), max_bytes=budget, warnings=warnings,
    )
    view.focus = _focus(view)
    _fit(view, explicit=layers is not None)
    view.max_error = max(a.max_error() for a in view.arrays.values())
    return view


def _resolve_layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    """Sorted, unique 0-based layer numbers (-1 = last); all when None."""
    if layers is None:
        return list(range(n_layers))
    kept = sorted({resolve_index(int(l), n_layers, "layer") for l in layers})
    if not kept:
        raise UsageError("no layers asked for", f"give layer numbers in 0..{n_layers - 1}")
    return kept


def _method_arrays(capture: "Capture", weights: "np.ndarray", asked: list[Method], kept: list[int],
                   gradients: "np.ndarray | None", discard_ratio: float) -> dict[str, PackedArray]:
    """Packed maps of rollout (each fusion), flow and grad-rollout after each kept layer."""
    import numpy as np

    from attncli.methods.rollout import rollout_layers

    prefix = capture.grid.prefix if capture.grid is not None else 1
    protect = tuple(range(prefix))
    out: dict[str, PackedArray] = {}
    if discard_ratio and Method.rollout not in asked:
        raise UsageError("discard_ratio applies to the rollout method only")
    if Method.rollout in asked:
        for fuse in Fuse:
            rolled = rollout_layers(weights[: kept[-1] + 1], fuse, discard_ratio, protect)  # (L', Q, K)
            out[f"rollout-{fuse.value}"] = pack(rolled[kept][:, None], kept)
    if Method.flow in asked:
        out["flow"] = _flow(capture, weights, kept)
    if Method.grad_rollout in asked:
        if gradients is None:
            raise UsageError("grad-rollout needs the attention gradients of a classifier",
                             "compute them with attncli.gradcapture.gradients_for(capture)")
        grads = np.asarray(getattr(gradients, "gradients", gradients), dtype=np.float32)
        if grads.shape != weights.shape:
            raise UsageError(f"attention {weights.shape} and gradient {grads.shape} shapes differ")
        out["grad-rollout"] = pack(_grad_rollout_layers(weights, grads)[kept][:, None], kept)
    return out


def _grad_rollout_layers(attentions: "np.ndarray", gradients: "np.ndarray") -> "np.ndarray":
    """Gradient rollout after every layer, (layers, Q, K): the running R of methods.gradients.gradient_rollout."""
    import numpy as np

    relevance = np.eye(attentions.shape[-1])  # (Q, K)
    steps = []
    for att, grad in zip(attentions, gradients):
        cam = np.clip(grad.astype(np.float64) * att, 0.0, None).mean(axis=0)  # (Q, K), heads averaged
        relevance = relevance + cam @ relevance
        steps.append(relevance)
    return np.stack(steps).astype(np.float32)


def _flow(capture: "Capture", weights: "np.ndarray", kept: list[int]) -> PackedArray:
    """Attention flow (mean fusion) after each kept layer: every row for text, the prefix rows for images."""
    import numpy as np

    from attncli.methods.flow import MAX_WORK, attention_flow, flow_work

    n = weights.shape[-1]
    rows = list(range(capture.grid.prefix)) if capture.grid is not None else list(range(n))
    work = sum(flow_work(n, layer + 1, len(rows)) for layer in kept)
    if work > MAX_WORK:
        raise NotSupportedError(
            f"attention flow for {len(rows)} rows at {len(kept)} layers over {n} tokens is too large to solve "
            f"exactly here (work {work:.2g} > limit {MAX_WORK:.2g})",
            "keep fewer layers (e.g. --layers -1), use a shorter input, or use the rollout method")
    maps = np.stack([attention_flow(weights, layer, Fuse.mean, rows) for layer in kept])  # (L', R, K)
    return pack(maps[:, None], kept, queries=rows)


def _fit(view: InteractiveView, explicit: bool) -> None:
    """Drop the earliest layers until the page fits ``view.max_bytes``; record what went and how to keep it."""
    if view.nbytes <= view.max_bytes:
        return
    before = view.nbytes
    per_layer = {l: sum(a.layer_bytes(l) for a in view.arrays.values()) for l in view.layers}
    keep = list(view.layers)
    total = before
    while len(keep) > 1 and total > view.max_bytes:
        total -= per_layer[keep.pop(0)]
    dropped = [l for l in view.layers if l not in keep]
    view.arrays = {name: a.keep(keep) for name, a in view.arrays.items()}
    view.layers, view.dropped = keep, dropped
    mb = 1e6
    what = "the layers asked for" if explicit else "all layers"
    first = keep[0]
    hint = (f"to see the dropped layers, ask for them alone (e.g. --layers 0-{max(first - 1, 0)}) "
            f"or allow a bigger file (max_bytes)")
    if view.nbytes > view.max_bytes:
        view.warnings.append(f"even one layer needs {view.nbytes / mb:.1f} MB, above the {view.max_bytes / mb:g} MB "
                             "limit: the page keeps it anyway")
    view.warnings.append(f"{what} would make a {before / mb:.1f} MB page, above the {view.max_bytes / mb:g} MB "
                         f"limit: dropped layer{'s' if len(dropped) > 1 else ''} {_spans(dropped)}, kept "
                         f"{_spans(keep)} ({view.nbytes / mb:.1f} MB); {hint}")


def _spans(numbers: Sequence[int]) -> str:
    """[0, 1, 2, 5] → '0–2, 5'."""
    out: list[str] = []
    for n in numbers:
        if out and n == int(out[-1].split("–")[-1]) + 1:
            out[-1] = f"{out[-1].split('–')[0]}–{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def _kind(capture: "Capture") -> str:
    """text, image, align or caption."""
    if capture.cross_attentions is not None:
        return "caption" if capture.kind == "image" else "align"
    return "image" if capture.kind == "image" else "text"


def _input_words(capture: "Capture") -> str:
    """What went in, as the page's title says it."""
    source = capture.source or capture.text or ""
    if capture.cross_attentions is not None and capture.target_text is not None:
        return f"{source or 'image'} → {capture.target_text}"
    return source


def _focus(view: InteractiveView) -> int:
    """The query shown first: the first prefix token for images, the first ordinary token otherwise."""
    if view.kind == "image":
        return 0
    special = view.target_special if view.kind in ("align", "caption") else view.special
    return next((i for i, s in enumerate(special) if not s), 0)


def png_data_uri(image: "np.ndarray") -> str:
    """An (H, W, 3) uint8 image as a ``data:image/png;base64,…`` URI (Pillow)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
