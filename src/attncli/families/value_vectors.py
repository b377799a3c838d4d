"""Value vectors for value-norm: what each head moves, carried through its slice of the output projection.

While a selective capture runs (attncli.families.selective.Recorder), the attention function hands each wanted
layer's value states and attention output to :class:`ValueVectors`. The layer's output projection W_O is found by
what it is given, not by its name: a forward pre-hook on every module (only while recording) takes the first
module with a 2-D weight whose input equals that attention output, concatenated over heads — BertSelfOutput.dense,
ViT's o_proj, GPT-2's c_proj (a Conv1D: weight (in, out)), Llama's o_proj, and any model that projects
the concatenated heads directly. A model that changes the output first (a gate, a norm) is never matched and is
refused with one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.errors import NotSupportedError

if TYPE_CHECKING:
    import torch

VALUE_GRAM = "value_gram"  # Capture.extras: (layers, key, heads, heads) Gram matrix of the transformed value vectors
BATCHED = (VALUE_GRAM,)  # extras capture_selected returns per batch item (item_fields picks one)
CHUNK_BYTES = 64 << 20  # float32 transformed value vectors of one chunk of keys (all heads)


class ValueVectors:
    """The Gram matrices of the wanted layers' transformed value vectors, found while a forward runs."""

    def __init__(self) -> None:
        self.grams: dict[int, "torch.Tensor"] = {}  # layer → (batch, key, heads, heads) float32 on the CPU
        self.pending: tuple[int, "torch.Tensor", "torch.Tensor"] | None = None  # layer, output, value: awaiting W_O
        self.hook: Any = None

    def start(self) -> None:
        """Watch every module's input for the attention output (a global forward pre-hook)."""
        from torch.nn.modules.module import register_module_forward_pre_hook

        self.hook = register_module_forward_pre_hook(self._projection)

    def stop(self) -> None:
        """Remove the hook."""
        if self.hook is not None:
            self.hook.remove()
            self.hook = None

    def stacked(self, layers: list[int]) -> Any:
        """(batch, layers, key, heads, heads) numpy float32, the layers in the order given; refused when one lacks."""
        import numpy as np

        missing = [layer for layer in layers if layer not in self.grams]
        if missing:
            raise NotSupportedError(
                f"value-norm: no output projection of layer {missing[0]} took its attention output directly, so the "
                "value vectors cannot be carried through it (this architecture changes the output first)",
                "value-norm supports attention whose heads are concatenated into one linear projection (BERT, "
                "RoBERTa, ViT, DeiT, DINOv2, GPT-2, Llama, …)")
        return np.stack([self.grams[layer].numpy() for layer in layers], axis=1)

    def expect(self, layer: int, output: "torch.Tensor", value: "torch.Tensor") -> None:
        """A wanted layer's attention output (B, N, H, d) and value (B, KV heads, K, d): the next module with a
        weight that is given this output (concatenated over heads) is the layer's output projection W_O."""
        self.pending = (layer, output, value)

    def _projection(self, module: Any, args: tuple) -> None:
        """Forward pre-hook on every module while values are recorded: find W_O and keep the value-vector Gram."""
        import torch

        if self.pending is None or not args or not isinstance(args[0], torch.Tensor):
            return
        layer, output, value = self.pending
        x, weight = args[0], getattr(module, "weight", None)
        width = output.shape[-2] * output.shape[-1]  # H * d
        conv1d = hasattr(module, "nf")  # transformers' Conv1D (GPT-2): weight (in, out); a Linear's is (out, in)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or x.shape[-1] != width \
                or weight.shape[0 if conv1d else 1] != width or x.numel() != output.numel() \
                or not torch.equal(x.reshape(output.shape), output):
            return
        self.pending = None
        self.grams[layer] = value_gram(value, weight, output.shape[-2], conv1d)


def value_gram(value: "torch.Tensor", weight: "torch.Tensor", heads: int, conv1d: bool = False) -> "torch.Tensor":
    """(B, K, H, H) float32 on the CPU: ⟨f_h(x_j), f_g(x_j)⟩ with f_h(x_j) = v_h(x_j) W_O^h, the value vector of head h
    (bias included, as the attention function got it) through that head's slice of the output projection (its bias
    left out, as Kobayashi et al. 2020 do). ``weight`` is W_O as the module keeps it: (out, in) for a Linear,
    (in, out) for GPT-2's Conv1D. Grouped KV heads are repeated as repeat_kv does. Computed in chunks of keys."""
    import torch

    batch, kv, n_k, d = value.shape
    value = value.repeat_interleave(heads // kv, dim=1) if kv != heads else value  # (B, H, K, d)
    w = weight.float() if conv1d else weight.float().t()  # (H*d, D): rows are the heads' slices, in order
    w = w.reshape(heads, d, -1)  # (H, d, D)
    step = max(1, CHUNK_BYTES // (4 * batch * heads * w.shape[-1]))
    grams = []
    for start in range(0, n_k, step):
        f = torch.einsum("bhkd,hdo->bhko", value[:, :, start:start + step].float(), w)  # (B, H, k, D)
        grams.append(torch.einsum("bhko,bgko->bkhg", f, f).cpu())  # (B, k, H, H)
    return torch.cat(grams, dim=1)


def item_fields(fields: dict[str, Any], item: int) -> dict[str, Any]:
    """capture_selected's Capture fields for one batch item: the extras it returns per item (BATCHED) cut to it."""
    extras = {k: v[item] if k in BATCHED else v for k, v in (fields.get("extras") or {}).items()}
    return {**fields, "extras": extras}
