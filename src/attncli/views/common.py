"""What every view shares: the typed spec a command builds, title words, colour ranges, rounding for JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncli.choices import Fuse, Kind, Scale
from attncli.errors import CaptureError, KeptError, NotSupportedError
from attncli.methods.heads import heads_phrase  # noqa: F401 (public here: views name heads with it)
from attncli.methods.registry import Method, info
from attncli.methods.spec import ONE

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture

# Percentiles that bound the colours under Scale.percentile.
PERCENTILES = (1.0, 99.0)


@dataclass(frozen=True)
class MapSpec:
    """What the user asked to see of a capture: method, layer, head or fusion, query, hidden tokens, colours."""

    method: Method = Method.attention
    layer: int = -1
    head: int | None = None
    fuse: Fuse = Fuse.mean
    query: str | None = None
    skip_special: bool = False
    discard_ratio: float = 0.0
    scale: Scale | None = None  # None: the method's default (see default_scale)
    top_k: int = 3
    target: str | None = None  # grad-rollout: the class to explain
    drop_sinks: bool = False  # rollout/flow on an image: remove each layer's patch sinks before the product


def default_scale(method: Method) -> Scale:
    """From 0 (raw weights, relevance, norms), or stretched over what is there where the method declares it (rollout
    and flow: else a flat wash)."""
    return Scale.minmax if info(method).minmax else Scale.zero


def colour_range(values: "np.ndarray", scale: Scale) -> tuple[float, float]:
    """(vmin, vmax) of the colours for a map under a scale; never an empty range."""
    import numpy as np

    values = np.asarray(values)
    if values.size and scale is not Scale.percentile and bool(np.isfinite(values).all()):
        finite = values  # min and max need no copy (a long prompt's map is hundreds of MB)
    else:
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    if scale is Scale.minmax:
        lo, hi = float(finite.min()), float(finite.max())
    elif scale is Scale.percentile:
        lo, hi = (float(v) for v in np.percentile(finite, PERCENTILES))
    else:
        lo, hi = 0.0, float(finite.max())
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    return lo, hi


def quantity(method: Method | str) -> str:
    """What the numbers are, as the method declares: attention weights, relevance (grad-rollout), norms."""
    return info(method).quantity


def rounded(array: "np.ndarray") -> list:
    """Weights rounded to 6 decimals as nested lists (stable, compact JSON)."""
    return array.astype("float64").round(6).tolist()  # float64 first: float32 → JSON shows 0.28011101484298706


SKIP_NOTE = "special tokens hidden; each row renormalised over the remaining tokens"


def number_spans(numbers: list[int]) -> str:
    """[0, 1, 2, 5] → '0–2, 5'."""
    out: list[str] = []
    for n in numbers:
        if out and n == int(out[-1].split("–")[-1]) + 1:
            out[-1] = f"{out[-1].split('–')[0]}–{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def stored_head(capture: "Capture", head: int | None, fuse: "Fuse | str") -> tuple[int | None, int | None]:
    """(where a model head is stored, its 0-based model number), or (None, None) for heads fused by ``fuse``.

    A capture that kept its heads fused refuses a single head, or another fusion, with the fix.
    """
    from attncli.methods.heads import resolve_index

    if head is None:
        capture.check_fuse(fuse)
        return None, None
    return capture.head_index(head), resolve_index(head, capture.total_heads or capture.n_heads, "head")


def query_row(capture: "Capture", token: int, query: str | None) -> int:
    """Where a query token's row is stored; a row the capture lacks is refused with the option that keeps it."""
    if capture.query_ids is None:
        return token
    if token in capture.query_ids:
        return capture.query_ids.index(token)
    grid = capture.grid if capture.kind is Kind.image else None

    def name(i: int) -> str:
        if grid is None:
            return f'"{capture.tokens[i]}" (token {i})'
        return capture.tokens[i] if i < grid.prefix else "patch ({},{})".format(*grid.cell_of(i))

    kept = ", ".join(name(i) for i in capture.query_ids)
    asked = f"--token {query}" if query is not None else "no --token"
    raise KeptError(f"this capture kept the query row of {kept} only, not of {name(token)}",
                       f"capture it again with {asked} (or --layers all)")


def require_whole(capture: "Capture", what: str, *, layers: bool = True, rows: bool = True,
                  heads: bool = False) -> None:
    """Capture.require, with an image capture's fix: heatmap, classify and stats keep it whole with --layers all."""
    try:
        capture.require(what, layers=layers, rows=rows, heads=heads)
    except CaptureError as exc:
        if capture.kind is Kind.text:
            raise
        lacks_heads = heads and capture.head_ids is not None
        raise KeptError(exc.message, "capture it again with --layers all"
                           + (" and without --heads" if lacks_heads else "")) from None


def check_capture(capture: "Capture", spec: MapSpec) -> Method:
    """The spec's method, once its options are checked and the capture holds what the method reads.

    A method over every layer needs every layer and row; one that reads each head (value-norm) needs every head;
    the extra arrays it declares must be in ``capture.extras`` (the refusal says which models supply them).
    """
    from attncli.methods.dispatch import check_method_options

    method = check_method_options(spec.method, spec.head, spec.discard_ratio, spec.target, spec.drop_sinks, spec.fuse)
    m = info(method)
    if m.span != ONE:
        require_whole(capture, f"--method {m.name}")
    if m.each_head:
        require_whole(capture, f"--method {m.name}", layers=False, rows=False, heads=True)
    lacking = [name for name in m.extras if name not in (capture.extras or {})]
    if lacking:
        if capture.arch.get("attn_implementation") not in (None, "attncli_selective"):
            raise NotSupportedError(f"--method {m.name}: {capture.model_id} computes attention outside transformers' "
                                    f"AttentionInterface, so attncli cannot record {m.missing}",
                                    f"{m.name} works with models that route attention through it (BERT, RoBERTa, "
                                    "ViT, DeiT, DINOv2, GPT-2, Llama, …)")
        example = "attn explain TEXT" if capture.kind is Kind.text else "attn heatmap IMAGE"
        raise KeptError(f"--method {m.name} reads {m.missing}, which this capture of {capture.model_id} did not keep",
                        f"run the command that made it again with --method {m.name} added, e.g. {example} "
                        f"--method {m.name}")
    return method
