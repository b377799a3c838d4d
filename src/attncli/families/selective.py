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
from attncli.errors import CaptureError, NotSupportedError
from attncli.families.capture_memory import check_memory
from attncli.families.value_vectors import VALUE_GRAM, ValueVectors, item_fields  # noqa: F401 (item_fields: public)

if TYPE_CHECKING:
    import torch

IMPLEMENTATION = "attncli_selective"
CHUNK_BYTES = 64 << 20  # float32 scores of one chunk of query rows (all heads): the most a wanted layer holds at once
# Names of cross-attention modules: never part of a self-attention capture.
_CROSS = re.compile(r"cross|encoder_attn|EncDecAttention", re.IGNORECASE)
_ACTIVE: "Recorder | None" = None
_REGISTERED = False
_SDPA: dict[str, bool] = {}  # modeling module name → whether its models may run SDPA (set when one loads)


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
    """(attn_implementation to load with, a warning or None): eager for classes that bypass the interface.

    Selective capture calls the model's own eager function for the layers it keeps, so a class qualifies when it
    routes attention through the interface and its modeling file has that function. Layers not kept run SDPA
    only where the class supports it (never SDPA for soft-capping or sinks: Gemma-2, gpt-oss).
    """
    import sys

    modeling = sys.modules.get(model_class.__module__)
    if getattr(model_class, "_supports_attention_backend", False) and hasattr(modeling, "eager_attention_forward"):
        _SDPA[model_class.__module__] = bool(getattr(model_class, "_supports_sdpa", False))
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
        self.budget = selection.whole_budget()
        self.whole_bytes: int | None = None  # float32 bytes of every layer, head and row: known at the first layer
        self.modules = self_attention_layers(model)
        # One module applied at every layer (ALBERT's shared layer): its calls are the layers, in order.
        self.calls: int | None = 0 if len(set(self.modules.values())) < n_layers else None
        self.weights: dict[int, "torch.Tensor"] = {}  # views into out
        self.out: "torch.Tensor | None" = None  # (batch, layers kept, heads kept, rows kept, key) float32 on the CPU
        self.n_layers, self.progress, self.stage = n_layers, progress, stage
        self.qk = bool(getattr(selection, "qk", False))
        self.vectors: dict[int, dict[str, Any]] = {}  # layer → query, key, scaling, allowed (when qk)
        wanted = getattr(selection, "extras", ()) or ()
        self.values = ValueVectors() if VALUE_GRAM in wanted else None  # value-norm's Gram matrices, when asked

    def kept(self) -> dict[str, Any]:
        """What was kept, as Capture fields."""
        return {"layer_ids": None if len(self.layers) == self.n_layers else list(self.layers),
                "head_ids": self.heads, "query_ids": self.rows,
                "fused_heads": None if self.fuse is None else self.fuse.value, "extras": self.extras()}

    def record(self, layer: int, query: "torch.Tensor", key: "torch.Tensor", scaling: float,
               mask: "torch.Tensor | None") -> None:
        """Keep a wanted layer's query (B, H, N, d) and key (B, kv heads, K, d) of the first batch item, float32."""
        import torch

        heads = query.shape[1]
        key = key.repeat_interleave(heads // key.shape[1], dim=1) if key.shape[1] != heads else key  # as repeat_kv
        allowed = torch.ones(query.shape[2], key.shape[2], dtype=torch.uint8) if mask is None else \
            (mask[0, 0] > torch.finfo(mask.dtype).min / 2).expand(query.shape[2], key.shape[2]).to(torch.uint8).cpu()  # (N, K)
        self.vectors[layer] = {"query": query[0].float().cpu(), "key": key[0].float().cpu(),
                               "scaling": float(scaling), "allowed": allowed}

    def extras(self) -> dict[str, Any]:
        """The kept query/key vectors as Capture.extras (stacked in the stored layers' order); {} when none."""
        import numpy as np

        kept = [self.vectors[layer] for layer in self.layers if layer in self.vectors]
        out = {} if self.values is None else {VALUE_GRAM: self.values.stacked(self.layers)}  # (B, L', K, H, H)
        if not self.qk or len(kept) != len(self.layers):
            return out
        return {**out, "query": np.stack([v["query"].numpy() for v in kept]), "key": np.stack([v["key"].numpy() for v in kept]),
                "scaling": np.array([v["scaling"] for v in kept], dtype=np.float32),
                "allowed": kept[-1]["allowed"].numpy()}

    def __enter__(self) -> "Recorder":
        global _ACTIVE
        if _ACTIVE is not None:
            raise CaptureError("a selective capture is already running in this process")
        _ACTIVE = self
        if self.values is not None:
            self.values.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        global _ACTIVE
        _ACTIVE = None
        if self.values is not None:
            self.values.stop()

    def wants(self, module: Any, query: "torch.Tensor", key: "torch.Tensor") -> int | None:
        """The layer number of a module whose weights are wanted (None: its ordinary attention only).

        At the first layer the whole capture's size is known: under the budget, every layer, head and row is kept.
        """
        layer = self.modules.get(id(module))
        if layer is None:
            return None
        if self.calls is not None:
            layer, self.calls = self.calls, self.calls + 1
        if self.whole_bytes is None:
            batch, heads, n_q = query.shape[:3]
            self.whole_bytes = 4 * batch * self.n_layers * heads * n_q * int(key.shape[2])
            if self.whole_bytes <= self.budget:
                self.layers, self.heads, self.rows, self.fuse = list(range(self.n_layers)), None, None, None
        if self.progress is not None:
            self.progress(self.stage, layer + 1, self.n_layers)
        return layer if layer in self.layers and layer not in self.weights else None

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


def model_eager(module: Any) -> Any:
    """The eager attention function of the model a module belongs to (its modeling file's), or None."""
    import sys

    return getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)


def _additive(mask: "torch.Tensor | None", query: "torch.Tensor", n_k: int, causal: bool,
              positions: "torch.Tensor") -> "torch.Tensor | None":
    """The mask as eager attention takes it: added to the scores (0 where allowed, the dtype's min elsewhere).

    The masks built for this implementation are SDPA's (boolean, or None for a plain causal or full pattern);
    a causal pattern left implicit is made explicit for the rows at ``positions`` (their query positions).
    """
    import torch

    low = torch.finfo(query.dtype).min
    if mask is None:
        if not causal:
            return None
        allowed = torch.arange(n_k, device=query.device)[None, :] <= positions[:, None]  # (r, K)
        return torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill(~allowed, low)[None, None]
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=query.dtype, device=mask.device).masked_fill(~mask, low)
    return mask


def _rows_of(value: Any, part: "torch.Tensor", n_q: int, seen: int) -> Any:
    """A (…, query, key) tensor argument cut to the chunk's rows and its first ``seen`` keys; others as they are."""
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() < 2:
        return value
    if value.shape[-2] == n_q and n_q > 1:
        value = value.index_select(-2, part.to(value.device))
    return value[..., :seen] if value.shape[-1] >= seen else value


def selective_attention(module: Any, query: "torch.Tensor", key: "torch.Tensor", value: "torch.Tensor",
                        attention_mask: "torch.Tensor | None", **kwargs: Any) -> tuple["torch.Tensor", Any]:
    """The model's own attention; for a wanted layer its eager weights on the asked rows (query: (B, heads, N, d)).

    Wanted layers run the model's eager function (its modeling file's ``eager_attention_forward``: soft-capping,
    sinks, scaling variants, position biases and grouped KV heads as the model computes them), in chunks of
    query rows. Other layers run SDPA where the model supports it, else that same eager function.
    """
    rec = _ACTIVE
    layer = None if rec is None else rec.wants(module, query, key)
    if layer is None:
        return _ordinary(module, query, key, value, attention_mask, kwargs)
    import torch

    eager = model_eager(module)
    batch, heads, n_q = query.shape[:3]
    n_k = key.shape[2]
    every_row = rec.rows is None
    rows = torch.arange(n_q, device=query.device) if every_row else torch.tensor(rec.rows, device=query.device)
    causal = _causal(module, attention_mask, n_q, kwargs)
    mask = attention_mask
    if mask is not None and mask.shape[-2] > n_q:
        mask = mask[..., -n_q:, :]
    kept_heads = 1 if rec.fuse is not None else heads if rec.heads is None else len(rec.heads)
    kept = rec.slot(layer, batch, kept_heads, len(rows), n_k)  # on the CPU, filled chunk by chunk
    outputs = []
    step = max(1, CHUNK_BYTES // (4 * batch * heads * n_k))  # query rows per chunk: no (H, N, N) matrix at once
    skip_future = causal  # no mask and causal: keys after a chunk's last row are masked, never computed
    call = {k: v for k, v in kwargs.items() if k != "is_causal"}
    if rec.qk:  # the scores' own inputs: scaling as passed, else the eager functions' default d ** -0.5
        scaling = kwargs.get("scaling")
        scaling = getattr(module, "scaling", None) if scaling is None else scaling
        rec.record(layer, query, key, query.shape[-1] ** -0.5 if scaling is None else scaling,
                   _eager_mask(module, attention_mask, query, key, kwargs))
    for start in range(0, len(rows), step):
        part = rows[start:start + step]
        seen = int(part.max()) + 1 + (n_k - n_q) if skip_future else n_k  # keys any row of the chunk can see
        positions = part + (n_k - n_q)
        part_mask = _additive(_rows_of(mask, part, n_q, seen), query, seen, causal, positions)
        extra = {k: _rows_of(v, part, n_q, seen) for k, v in call.items()}
        out, weights = eager(module, query.index_select(2, part), key[:, :, :seen], value[:, :, :seen], part_mask,
                             **extra)  # (B, r, H, d), (B, H, r, seen)
        if every_row:
            outputs.append(out)
        chosen = (weights if rec.heads is None else weights[:, rec.heads]).to(torch.float32)
        rows_out = kept[:, :, start:start + len(part)]
        rows_out[..., :seen] = _fused(chosen, rec.fuse).cpu() if rec.fuse is not None else chosen.cpu()
        rows_out[..., seen:] = 0.0
    result = (torch.cat(outputs, dim=1), None) if every_row else \
        _ordinary(module, query, key, value, attention_mask, kwargs)  # (B, N, H, d), as eager returns it
    if rec.values is not None:
        rec.values.expect(layer, result[0], value)
    return result


def _ordinary(module: Any, query: "torch.Tensor", key: "torch.Tensor", value: "torch.Tensor",
              mask: "torch.Tensor | None", kwargs: dict[str, Any]) -> tuple["torch.Tensor", Any]:
    """A layer whose weights are not kept: SDPA where the model supports it, else the model's eager function."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    eager = model_eager(module)
    if _sdpa_ok(type(module).__module__) or eager is None:
        return sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    return eager(module, query, key, value, _eager_mask(module, mask, query, key, kwargs), **kwargs)


def _sdpa_ok(name: str) -> bool:
    """Whether the models of a modeling module may run SDPA: what its classes declare (any refusal counts)."""
    if name not in _SDPA:
        import sys

        classes = [c for c in vars(sys.modules.get(name, sys)).values()
                   if isinstance(c, type) and c.__module__ == name and "_supports_sdpa" in vars(c)]
        _SDPA[name] = all(c._supports_sdpa for c in classes)
    return _SDPA[name]


def _causal(module: Any, mask: "torch.Tensor | None", n_q: int, kwargs: dict[str, Any]) -> bool:
    """Whether a call with no mask is causal, decided as transformers' SDPA function decides it."""
    flag = kwargs.get("is_causal")
    flag = flag if flag is not None else getattr(module, "is_causal", True)
    return bool(mask is None and flag and n_q > 1)


def _eager_mask(module: Any, mask: "torch.Tensor | None", query: "torch.Tensor", key: "torch.Tensor",
                kwargs: dict[str, Any]) -> "torch.Tensor | None":
    """The SDPA-style mask of this implementation as the model's eager function takes it (every row)."""
    import torch

    n_q, n_k = query.shape[2], key.shape[2]
    if mask is not None and mask.shape[-2] > n_q:
        mask = mask[..., -n_q:, :]
    positions = torch.arange(n_q, device=query.device) + (n_k - n_q)
    return _additive(mask, query, n_k, _causal(module, mask, n_q, kwargs), positions)


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

    from attncli.capture import find_word
    from attncli.families.base import stack_attentions

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
    if VALUE_GRAM in (selection.extras or ()) and not is_selective(model):
        raise NotSupportedError(f"value-norm needs each layer's value vectors, and {type(model).__name__} computes "
                                "attention outside transformers' AttentionInterface, where attncli cannot record them",
                                "use a model that routes attention through it (BERT, RoBERTa, ViT, DeiT, DINOv2, "
                                "GPT-2, Llama, …)")
    with torch.inference_mode():
        if is_selective(model):
            stage = f"forward over {inputs['input_ids'].shape[-1]} tokens" if "input_ids" in inputs else "forward"
            with Recorder(model, selection, n_layers, n_heads, progress, stage) as rec:
                output = model(**inputs, **call)
            weights = rec.stacked()  # (B, L', H', R', K)
            fields = rec.kept()
        else:
            if progress is not None:
                progress("forward (eager attention)", None, None)
            output = model(**inputs, output_attentions=True, **call)
            weights = stack_attentions(getattr(output, "attentions", None), item=None)  # (B, L, H, N, K)
            if weights.nbytes > selection.whole_budget():  # over the budget: only what the view reads
                weights = weights[:, layers]
                weights = weights if heads is None else weights[:, :, heads]
                weights = weights if rows is None else weights[:, :, :, rows]
                if fuse is not None:
                    weights = _fused(torch.from_numpy(weights).transpose(1, 2), fuse).transpose(1, 2).numpy()
                fields = {"layer_ids": None if len(layers) == n_layers else layers, "head_ids": heads,
                          "query_ids": rows, "fused_heads": None if fuse is None else fuse.value}
            else:
                fields = {"layer_ids": None, "head_ids": None, "query_ids": None, "fused_heads": None}
    return weights, {**fields, "total_layers": n_layers, "total_heads": n_heads}, output
