"""Selective capture: attention weights for the asked layers, heads and query rows; SDPA everywhere else.

Registered with transformers' own ``AttentionInterface`` (and its mask interface) under :data:`IMPLEMENTATION`,
so no model code is patched: a model loaded with ``attn_implementation=IMPLEMENTATION`` calls
:func:`selective_attention` in every attention module. Outside a :class:`Recorder` it is plain SDPA. Inside one,
a layer the selection wants gets its weights computed as eager attention does (scores, position bias, mask,
float32 softmax), only for the asked query rows, and kept as float32 on the CPU; the other layers never
materialise an (N, N) matrix. Models whose classes do not route through the interface load with eager attention.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from attncli.capture import Report, Selection
from attncli.choices import Fuse
from attncli.errors import CaptureError

if TYPE_CHECKING:
    import torch

IMPLEMENTATION = "attncli_selective"
CHUNK_BYTES = 64 << 20  # float32 scores of one chunk of query rows (all heads): the most a wanted layer holds at once
# Names of cross-attention modules: never part of a self-attention capture.
_CROSS = re.compile(r"cross|encoder_attn|EncDecAttention", re.IGNORECASE)
_ACTIVE: "Recorder | None" = None
_REGISTERED = False


def register() -> str:
    """Register the selective attention function and its (SDPA) masks with transformers; return its name."""
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(IMPLEMENTATION, selective_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)
        _REGISTERED = True
    return IMPLEMENTATION


def implementation(model_class: Any) -> tuple[str, str | None]:
    """(attn_implementation to load with, a warning or None): eager for classes that bypass the interface."""
    if getattr(model_class, "_supports_attention_backend", False):
        return register(), None
    return "eager", (f"{model_class.__name__} does not route attention through transformers' AttentionInterface: "
                     "every layer computes its full attention matrix (eager), which costs more on long inputs")


def is_selective(model: Any) -> bool:
    """Whether a loaded model runs the selective attention function."""
    return getattr(model.config, "_attn_implementation", None) == IMPLEMENTATION


def self_attention_layers(model: Any) -> dict[int, int]:
    """id(attention module) → layer number for the first stack of self-attention modules (encoder first).

    The layer number is the first integer in the module's qualified name (``encoder.layer.3.attention.self``);
    the stack is the name before it. Cross-attention modules are left out.
    """
    found: dict[int, int] = {}
    stack: str | None = None
    for name, module in model.named_modules():
        if "attention" not in type(module).__name__.lower() or _CROSS.search(name) or _CROSS.search(
                type(module).__name__):
            continue
        match = re.search(r"(^|\.)(\d+)(\.|$)", name)
        if match is None:
            continue
        prefix = name[:match.start(2)]
        if stack is None:
            stack = prefix
        if prefix == stack:  # wrappers too: only the module that calls the interface is ever looked up
            found[id(module)] = int(match.group(2))
    return found


class Recorder:
    """Context manager: while active, the selective attention function keeps the selection's weights.

    ``weights[layer]`` is ``(batch, heads kept, rows kept, key)`` float32 on the CPU.
    """

    def __init__(self, model: Any, selection: Selection, n_layers: int, n_heads: int,
                 progress: Report | None = None, stage: str = "forward") -> None:
        self.layers = selection.layer_numbers(n_layers)
        self.heads = selection.head_numbers(n_heads)
        self.rows = None if selection.rows is None else list(selection.rows)
        self.fuse = None if selection.fuse is None or self.heads is not None else Fuse(selection.fuse)
        self.modules = self_attention_layers(model)
        self.weights: dict[int, "torch.Tensor"] = {}  # views into out
        self.out: "torch.Tensor | None" = None  # (batch, layers kept, heads kept, rows kept, key) float32 on the CPU
        self.n_layers, self.progress, self.stage = n_layers, progress, stage

    def __enter__(self) -> "Recorder":
        global _ACTIVE
        if _ACTIVE is not None:
            raise CaptureError("a selective capture is already running in this process")
        _ACTIVE = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _ACTIVE
        _ACTIVE = None

    def wants(self, module: Any) -> int | None:
        """The layer number of a module whose weights are wanted (None: run SDPA only); reports the layer reached."""
        layer = self.modules.get(id(module))
        if layer is not None and self.progress is not None:
            self.progress(self.stage, layer + 1, self.n_layers)
        return layer if layer is not None and layer in self.layers and layer not in self.weights else None

    def stacked(self) -> "Any":
        """(batch, layers kept, heads kept, rows kept, key) float32 numpy array, layers in selection order."""
        missing = [layer for layer in self.layers if layer not in self.weights]
        if missing:
            raise CaptureError(f"the model never ran attention layer(s) {missing}",
                               "this architecture names its layers in a way attncli does not know yet")
        return self.out.numpy()

    def slot(self, layer: int, batch: int, heads: int, rows: int, keys: int) -> "torch.Tensor":
        """Where a wanted layer's (batch, heads kept, rows kept, key) weights go: its part of one array for all.

        The array is made when the first wanted layer runs (its shape is known then), so the layers are never
        stacked afterwards: an all-layer capture takes its own size in memory once, not twice.
        """
        import torch

        if self.out is None:
            self.out = torch.empty(batch, len(self.layers), heads, rows, keys, dtype=torch.float32)
        self.weights[layer] = self.out[:, self.layers.index(layer)]
        return self.weights[layer]


def selective_attention(module: Any, query: "torch.Tensor", key: "torch.Tensor", value: "torch.Tensor",
                        attention_mask: "torch.Tensor | None", dropout: float = 0.0, scaling: float | None = None,
                        is_causal: bool | None = None, position_bias: "torch.Tensor | None" = None,
                        **kwargs: Any) -> tuple["torch.Tensor", None]:
    """SDPA, and for a wanted layer its eager weights on the asked rows (query/key/value: (B, heads, N, d))."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    rec = _ACTIVE
    layer = None if rec is None else rec.wants(module)
    if layer is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, position_bias=position_bias, **kwargs)
    import torch

    groups = getattr(module, "num_key_value_groups", 1)
    keys, values = repeat_kv(key, groups), repeat_kv(value, groups)  # (B, H, K, d)
    batch, heads, n_q = query.shape[:3]
    n_k = keys.shape[2]
    every_row = rec.rows is None
    rows = torch.arange(n_q, device=query.device) if every_row else torch.tensor(rec.rows, device=query.device)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    mask = attention_mask
    if mask is not None and mask.shape[-2] >= n_q:
        mask = mask[..., -n_q:, :]
    kept_heads = 1 if rec.fuse is not None else heads if rec.heads is None else len(rec.heads)
    kept = rec.slot(layer, batch, kept_heads, len(rows), n_k)  # on the CPU, filled chunk by chunk
    outputs = []
    step = max(1, CHUNK_BYTES // (4 * batch * heads * n_k))  # query rows per chunk: no (H, N, N) matrix at once
    skip_future = mask is None and causal and n_q > 1  # keys after a chunk's last row are masked: never computed
    for start in range(0, len(rows), step):
        part = rows[start:start + step]
        seen = int(part.max()) + 1 + (n_k - n_q) if skip_future else n_k  # keys any row of the chunk can see
        scores = torch.matmul(query.index_select(2, part), keys[:, :, :seen].transpose(2, 3)) * scale  # (B, H, r, s)
        if position_bias is not None:
            bias = position_bias.index_select(2, part) if position_bias.shape[-2] == n_q else position_bias
            scores = scores + bias[..., :seen]
        if mask is not None:
            part_mask = mask.index_select(2, part) if mask.shape[-2] == n_q else mask
            if part_mask.dtype == torch.bool:
                scores = scores.masked_fill(~part_mask, torch.finfo(scores.dtype).min)
            else:
                scores = scores + part_mask
        elif skip_future:
            allowed = torch.arange(seen, device=query.device)[None, :] <= (part[:, None] + (n_k - n_q))  # (r, s)
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        weights = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)  # (B, H, r, s)
        if every_row:  # the weights are all there: finish as eager attention does
            outputs.append(torch.matmul(weights, values[:, :, :seen]))  # (B, H, r, d)
        chosen = (weights if rec.heads is None else weights[:, rec.heads]).to(torch.float32)
        rows_out = kept[:, :, start:start + len(part)]
        rows_out[..., :seen] = _fused(chosen, rec.fuse).cpu() if rec.fuse is not None else chosen.cpu()
        rows_out[..., seen:] = 0.0
    if every_row:
        return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None  # (B, N, H, d)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, position_bias=position_bias, **kwargs)


def _fused(weights: "torch.Tensor", fuse: Fuse) -> "torch.Tensor":
    """(B, H, r, K) → (B, 1, r, K): the heads' mean, max or min."""
    if fuse is Fuse.mean:
        return weights.mean(dim=1, keepdim=True)
    return weights.amax(dim=1, keepdim=True) if fuse is Fuse.max else weights.amin(dim=1, keepdim=True)


def capture_selected(model: Any, inputs: dict[str, Any], selection: Selection, tokens: list[str] | None = None,
                     special: list[bool] | None = None, words: list[int | None] | None = None,
                     progress: Report | None = None, **call: Any) -> tuple[Any, dict[str, Any], Any]:
    """Run the model once: ((batch, layers, heads, rows, key) float32 weights, Capture fields, model output).

    The fields (``layer_ids``, ``head_ids``, ``query_ids``, ``total_layers``, ``total_heads``) say what was kept;
    ``selection.query`` is resolved against ``tokens``. Eager models compute everything and are cut down.
    """
    import torch

    from attncli.capture import find_word, stack_attentions

    config = model.config
    n_layers, n_heads = int(config.num_hidden_layers), int(config.num_attention_heads)
    if selection.query is not None:
        tokens = tokens or []
        rows = find_word(tokens, special or [False] * len(tokens), words or [], selection.query)  # a word's pieces
        selection = dataclasses.replace(selection, rows=tuple(rows), query=None)
    layers, heads = selection.layer_numbers(n_layers), selection.head_numbers(n_heads)
    rows = None if selection.rows is None else list(selection.rows)
    fuse = None if selection.fuse is None or heads is not None else Fuse(selection.fuse)
    check_memory(inputs, len(layers), 1 if fuse else n_heads if heads is None else len(heads), rows,
                 None if is_selective(model) else (n_layers, n_heads))
    with torch.inference_mode():
        if is_selective(model):
            stage = f"forward over {inputs['input_ids'].shape[-1]} tokens" if "input_ids" in inputs else "forward"
            with Recorder(model, selection, n_layers, n_heads, progress, stage) as rec:
                output = model(**inputs, **call)
            weights = rec.stacked()  # (B, L', H', R', K)
        else:
            if progress is not None:
                progress("forward (eager attention)", None, None)
            output = model(**inputs, output_attentions=True, **call)
            weights = stack_attentions(getattr(output, "attentions", None), item=None)[:, layers]
            weights = weights if heads is None else weights[:, :, heads]
            weights = weights if rows is None else weights[:, :, :, rows]
            if fuse is not None:
                weights = _fused(torch.from_numpy(weights).transpose(1, 2), fuse).transpose(1, 2).numpy()
    every_layer = len(layers) == n_layers
    fields = {"layer_ids": None if every_layer else layers, "head_ids": heads, "query_ids": rows,
              "total_layers": n_layers, "total_heads": n_heads, "fused_heads": None if fuse is None else fuse.value}
    return weights, fields, output


def check_memory(inputs: dict[str, Any], layers: int, heads: int, rows: list[int] | None,
                 eager: tuple[int, int] | None = None) -> None:
    """Refuse, before the forward, a capture whose attention weights would not fit in the memory free now.

    Selective capture holds ``layers × heads × rows × tokens`` float32 weights; an eager model (``eager`` = its
    layers and heads) returns every layer's full matrices, copied once more when they are stacked.
    """
    ids = inputs.get("input_ids")
    if ids is None:
        return  # images: the patch count is small and fixed by the model
    batch, n = (int(ids.shape[0]), int(ids.shape[-1])) if ids.dim() > 1 else (1, int(ids.shape[-1]))
    if eager is not None:
        needed = 2 * batch * eager[0] * eager[1] * n * n * 4
    else:
        needed = batch * layers * heads * (n if rows is None else len(rows)) * n * 4
    import psutil

    free = psutil.virtual_memory().available
    if needed > 0.9 * free:
        what = f"{layers} layer{'s' if layers != 1 else ''} × {heads} head{'s' if heads != 1 else ''}"
        raise CaptureError(f"keeping the attention weights of {what} over {n} tokens needs "
                           f"{_gib(needed)}, more than the {_gib(free)} of memory free",
                           "keep less: one layer (--layer N, no --layers), some heads (--heads 0-3), or one "
                           "token's rows at every layer (--token WORD)")


def _gib(n: int) -> str:
    """Bytes as '38.7 GB' (or '512 MB' under a gigabyte)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
