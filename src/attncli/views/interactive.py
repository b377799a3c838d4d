"""The interactive view: everything the standalone HTML page needs, built once from a Capture (numpy only).

Weights travel compactly (see attncli.views.packing: 8-bit codes per row, each row's top weights exact).
The view also carries what the command asked to see first (``initial``: layer, head or fusion, method, query,
hidden special tokens, colour scale), the patch sinks of an image capture, and the statistics of `attn stats`.

Size: the page's data is bounded by ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 25 MB). When the
layers would not fit, the earliest layers are dropped (the last ones asked for are kept) and the view says so
in ``dropped`` and ``warnings``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from attncli.choices import Fuse, Kind
from attncli.errors import AttnError, NotSupportedError, UsageError
from attncli.methods.heads import resolve_index
from attncli.methods.registry import Method, info, page_info
from attncli.views.packing import PRECISION, PackedArray, pack

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

# The default size limit of the page, in bytes (decimal MB): a 512-token BERT-base capture's attention.
DEFAULT_MAX_BYTES = 25_000_000
# What the page costs besides the weights: its JS and CSS (~60 kB) with room to spare.
PAGE_ALLOWANCE = 100_000


@dataclass
class InteractiveView:
    """What the interactive page shows: labels, the picture, and the packed weights of each method.

    ``kind``: "text" or "image" (self-attention: queries and keys are ``tokens``), "align" (cross-attention:
    queries are ``target_tokens``, keys the source ``tokens``) or "caption" (queries are the caption's words,
    keys the image tokens). ``arrays`` maps a name to packed ``(stored layers, heads, query, key)`` weights:
    "attention" (all heads), "rollout-mean"/"rollout-max"/"rollout-min", "flow" and "grad-rollout" (one
    "head": the method's map after each stored layer); for align and caption also "encoder" and "decoder"
    (their self-attention; a caption's encoder attends over the image tokens, drawn as patch maps). Layers and heads are 0-based model numbers. ``initial`` is the state the page opens
    on (keys layer, head (-1: fused), fuse, method, query, hide, scale); the URL fragment overrides it.
    ``sinks`` maps a model layer number to its patch-sink tokens; ``stats`` holds `attn stats`' rows.
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
    initial: dict = field(default_factory=dict)
    sinks: dict[str, list[int]] = field(default_factory=dict)
    stats: dict | None = None
    queries: list[str] = field(default_factory=list)
    qk: dict | None = None  # the query/key panel's data (views.qk), only when asked for
    method_info: dict = field(default_factory=dict)  # per method: rows sum to 1, one head, fusions, span (registry)

    @property
    def nbytes(self) -> int:
        """Estimated size of the page in bytes: weights, picture, labels and the page's own code."""
        labels = sum(len(t.encode()) + 8 for t in self.tokens + self.target_tokens)
        return (sum(a.nbytes for a in self.arrays.values()) + len(self.image_uri or "") + labels
                + len(self.input.encode()) + PAGE_ALLOWANCE
                + sum(len(s) for k in ("query", "key") for s in (self.qk or {}).get(k, [])))

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
    initial: "Initial | None" = None,
    stats: dict | None = None,
    qk: bool = False,
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
    if capture.grid is not None and capture.grid.prefix == 0 and not cross:
        warnings.append("this model has no [CLS] token: the page shows one query patch's row at a time (click a "
                        "patch), where attn heatmap's map is the mean of all query rows")
    arrays = {"attention": pack(weights[kept], [numbers[i] for i in kept])}
    if partial:  # said on the page and on stderr whether or not another method was asked: layers are missing
        warnings.append(f"this capture kept layers {_spans(numbers)} of {capture.total_layers}, and rollout, flow "
                        "and grad-rollout combine every layer: the page shows attention only (capture "
                        "again with --layers all for the rest)")
        asked, discard_ratio = [Method.attention], 0.0
    if cross:  # cross-attention, plus the encoder's and decoder's self-attention when kept
        asked = [Method.attention]
        for name, extra in (("encoder", capture.attentions), ("decoder", capture.decoder_attentions)):
            if extra is not None and np.ndim(extra) == 4 and capture.layer_ids is None:
                extra = np.asarray(extra, dtype=np.float32)
                arrays[name] = pack(extra, list(range(extra.shape[0])))
    else:
        arrays.update(_method_arrays(capture, weights, asked, kept, gradients, discard_ratio))
    view = InteractiveView(
        kind=_kind(capture), model_id=capture.model_id, input=_input_words(capture),
        tokens=list(capture.tokens), special=[bool(s) for s in capture.special],
        n_layers=capture.total_layers if partial else n_layers, n_heads=n_heads, layers=[numbers[i] for i in kept],
        methods=[m.value for m in dict.fromkeys([*asked, Method.attention])] + [n for n in ("encoder", "decoder")
                                                                                 if n in arrays], arrays=arrays,
        grid=capture.grid.to_dict() if capture.grid is not None else None,
        image_uri=png_data_uri(capture.image) if capture.image is not None else None,
        target_tokens=list(capture.target_tokens), target_special=[bool(s) for s in capture.target_special],
        target_scores=[float(s) for s in capture.target_scores],
        predictions=[{"label": p.label, "score": float(p.score)} for p in capture.predictions],
        target_label=target_label, discard_ratio=float(discard_ratio), max_bytes=budget, warnings=warnings,
        stats=stats,
    )
    view.focus = _focus(view)
    view.method_info = {name: facts for name, facts in page_info(discard_ratio, target_label, n_heads).items()
                        if name in view.methods}
    reserve = 0
    if qk and view.kind == "text":  # room for one layer's q/k: weights of the earliest layers go first
        from attncli.views.qk import layer_bytes

        reserve = layer_bytes(capture)
        view.max_bytes -= reserve
    _fit(view, explicit=layers is not None)
    view.max_bytes += reserve
    if reserve and view.dropped:
        view.warnings.append(f"{reserve / 1e6:.1f} MB of the {view.max_bytes / 1e6:g} MB were kept for one layer's "
                             "query and key vectors (--qk): the limit above is what the weights had")
    view.max_error = max(a.max_error() for a in view.arrays.values())
    view.sinks = _sinks(capture, view.layers) if view.kind == "image" else {}
    view.initial = (initial or Initial()).resolve(capture, view)
    if qk:  # the query/key panel: the opening layer first, then the latest, in what the size limit leaves
        from attncli.views.qk import qk_data

        if view.kind != "text":
            view.warnings.append(f"the query/key view is drawn for text pages only, not {view.kind} pages")
        else:
            first = view.layers[view.initial["layer"]]
            view.qk, notes = qk_data(capture, view.layers, [first, *reversed(view.layers)],
                                     view.max_bytes - view.nbytes)
            view.warnings.extend(notes)
    return view


@dataclass(frozen=True)
class Initial:
    """What the command asked to see first: layer (model number, -1 last), head (None: fused), fusion, method,
    query (a word, index or patch as the command took it), hidden special tokens and colour scale."""

    layer: int | None = None
    head: int | None = None
    fuse: Fuse | str = Fuse.mean
    method: Method | str | None = None  # None: the view's first method
    query: str | None = None
    skip_special: bool = False
    scale: str | None = None

    @classmethod
    def of(cls, spec: Any) -> "Initial":
        """From a views.common.MapSpec (or anything with some of its fields)."""
        scale = getattr(spec, "scale", None)
        return cls(getattr(spec, "layer", None), getattr(spec, "head", None), getattr(spec, "fuse", Fuse.mean),
                   getattr(spec, "method", None), getattr(spec, "query", None),
                   bool(getattr(spec, "skip_special", False)), None if scale is None else str(getattr(scale, "value", scale)))

    def resolve(self, capture: "Capture", view: InteractiveView) -> dict:
        """The page's opening state, checked against what the view holds (indices into the view's lists)."""
        from attncli.views.common import default_scale

        method = view.methods[0] if self.method is None else Method(self.method).value
        if method not in view.methods:
            method = view.methods[0]
        layer = view.layers[-1] if self.layer is None or self.layer == -1 else int(self.layer)
        if self.layer is not None and self.layer < -1:
            layer = resolve_index(int(self.layer), view.n_layers, "layer")
        layer_slot = view.layers.index(layer) if layer in view.layers else len(view.layers) - 1
        head = -1 if self.head is None else int(self.head)
        if head < -1:
            head = resolve_index(head, view.n_heads, "head")
        if method != "attention":
            head = -1
        query = view.focus
        if self.query is not None and view.kind in ("text", "image"):
            query = _query_token(capture, self.query)
        scale = self.scale or (default_scale(Method(method)).value if method in {m.value for m in Method} else "zero")
        return {"layer": layer_slot, "head": head, "fuse": Fuse(self.fuse).value, "method": method,
                "query": int(query), "hide": bool(self.skip_special), "scale": scale}


def _query_token(capture: "Capture", query: str) -> int:
    """The token index of a --token/--query, looked up as the command did."""
    if capture.kind is Kind.image and capture.grid is not None:
        return capture.grid.query_token(query)
    from attncli.views.explain import find_word

    return find_word(capture, query)[0]


def _sinks(capture: "Capture", layers: Sequence[int]) -> dict[str, list[int]]:
    """Patch-sink tokens of each shown layer (views.sinks' rule); {} when unknown."""
    from attncli.views.sinks import capture_sinks

    try:
        found = capture_sinks(capture, layers) or []
    except AttnError:  # a capture the rule cannot read (e.g. some query rows only): no marks, no page lost
        return {}
    out: dict[str, list[int]] = {}
    for sink in found:
        out.setdefault(str(sink.layer), []).append(sink.token)
    return out


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
    """Packed maps of each asked method but raw attention, after (or at) each kept layer: one "head", the fused map.

    A method whose fusion the page can switch (rollout) gets one array per fusion, named "METHOD-FUSE"; a method
    that declares few rows (flow) is computed for an image's prefix rows only.
    """
    import numpy as np

    from attncli.methods.dispatch import inputs

    prefix = capture.grid.prefix if capture.grid is not None else 1
    protect = tuple(range(prefix))
    out: dict[str, PackedArray] = {}
    if discard_ratio and not any("discard_ratio" in info(m).options for m in asked):
        raise UsageError("discard_ratio applies to the rollout method only")
    grads = None if gradients is None else np.asarray(getattr(gradients, "gradients", gradients),
                                                      dtype=np.float32)[: kept[-1] + 1]
    for method in asked:
        m = info(method)
        if m.raw:
            continue  # raw attention: the "attention" array, every head
        rows = list(range(capture.grid.prefix)) if m.few_rows and capture.grid is not None else None
        n = weights.shape[-1]
        work = 0.0 if m.work is None else sum(m.work(n, layer + 1, n if rows is None else len(rows)) for layer in kept)
        if work > m.max_work:
            raise NotSupportedError(
                f"{m.name} for {n if rows is None else len(rows)} rows at {len(kept)} layers over {n} tokens is too "
                f"large to solve exactly here (work {work:.2g} > limit {m.max_work:.2g})",
                "keep fewer layers (e.g. --layers -1), use a shorter input, or use the rollout method")
        fusions = list(Fuse) if m.fuses and m.every_layer is not None else [Fuse.mean]
        for fuse in fusions:
            ask = inputs(weights[: kept[-1] + 1], head=None, fuse=fuse, queries=rows, gradients=grads,
                         discard_ratio=discard_ratio if "discard_ratio" in m.options else 0.0, protect=protect,
                         extras={k: v[: kept[-1] + 1] for k, v in (capture.extras or {}).items()})
            maps = m.all_layers(ask)[kept]  # (L', Q, K)
            name = f"{m.name}-{fuse.value}" if len(fusions) > 1 else m.name
            out[name] = pack(maps[:, None], kept, queries=rows)
    return out


def _fit(view: InteractiveView, explicit: bool) -> None:
    """Drop the earliest layers until the page fits ``view.max_bytes``; record what went and how to keep it."""
    if view.nbytes <= view.max_bytes:
        return
    before = view.nbytes
    main = [n for n, a in view.arrays.items() if list(a.layers) == list(view.layers)]  # encoder/decoder stay whole
    per_layer = {l: sum(view.arrays[n].layer_bytes(l) for n in main) for l in view.layers}
    keep = list(view.layers)
    total = before
    while len(keep) > 1 and total > view.max_bytes:
        total -= per_layer[keep.pop(0)]
    dropped = [l for l in view.layers if l not in keep]
    view.arrays = {name: a.keep(keep) if name in main else a for name, a in view.arrays.items()}
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
    """[0, 1, 2, 5] → '0–2, 5' (views.common.number_spans, which the q/k panel's warnings use too)."""
    from attncli.views.common import number_spans

    return number_spans(list(numbers))


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
