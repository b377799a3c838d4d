"""Read a CTranslate2 model.bin and turn a Whisper one into transformers' state dict and config.

CTranslate2's model.bin (python/ctranslate2/specs/model_spec.py, ``_serialize``, binary version 6) is a flat list
of named arrays: a name, the shape, a data type id and the raw little-endian bytes, then aliases. Its Whisper spec
fuses the query, key and value projections (``linear_0``) and the cross-attention's key and value (``linear_1``),
and stores Whisper's missing key bias as zeros.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from attncli.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

_DTYPES = {0: "<f4", 1: "<i1", 2: "<i2", 3: "<i4", 4: "<f2"}  # CTranslate2's DataType ids (5: bfloat16)


def read_ct2(data: bytes) -> tuple[str, dict[str, "np.ndarray"]]:
    """(spec name, {variable: array}) from a CTranslate2 model.bin (binary version 6); aliases resolved."""
    import numpy as np

    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def text() -> str:
        nonlocal pos
        size = take("<H")
        value = data[pos:pos + size - 1].decode("utf-8")
        pos += size
        return value

    try:
        version = take("<I")
        if version != 6:
            raise ModelLoadError(f"CTranslate2 model.bin version {version} is not supported (version 6 is)")
        spec, _revision, count = text(), take("<I"), take("<I")
        arrays: dict[str, np.ndarray] = {}
        for _ in range(count):
            name, ndim = text(), take("<B")
            shape = tuple(take("<I") for _ in range(ndim))
            dtype, size = take("<B"), take("<I")
            if dtype not in _DTYPES:
                raise ModelLoadError(f"model.bin: {name} has CTranslate2 data type {dtype}, which is not read here",
                                     "use a float16 or float32 conversion (not int8 or bfloat16)")
            arrays[name] = np.frombuffer(data, dtype=_DTYPES[dtype], count=size // np.dtype(_DTYPES[dtype]).itemsize,
                                         offset=pos).reshape(shape)
            pos += size
        for _ in range(take("<I")):
            alias, target = text(), text()
            arrays[alias] = arrays[target]
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"model.bin is not a readable CTranslate2 model ({exc})") from None
    return spec, arrays


def _f32(value: "np.ndarray") -> "np.ndarray":
    """A float32 copy (safetensors wants owned, contiguous arrays)."""
    import numpy as np

    return np.ascontiguousarray(value, dtype=np.float32)


def _attention(state: dict, out: str, arrays: dict, src: str, fused_kv: bool) -> None:
    """Unfuse one CTranslate2 attention block into q/k/v/out projections (Whisper's k_proj has no bias)."""
    import numpy as np

    if fused_kv:  # cross-attention: linear_0 is the query, linear_1 the fused key and value, linear_2 the output
        q_w, q_b = arrays[f"{src}/linear_0/weight"], arrays[f"{src}/linear_0/bias"]
        k_w, v_w = np.split(arrays[f"{src}/linear_1/weight"], 2)
        k_b, v_b = np.split(arrays[f"{src}/linear_1/bias"], 2)
        o = "linear_2"
    else:
        q_w, k_w, v_w = np.split(arrays[f"{src}/linear_0/weight"], 3)
        q_b, k_b, v_b = np.split(arrays[f"{src}/linear_0/bias"], 3)
        o = "linear_1"
    if np.any(k_b != 0):
        raise ModelLoadError(f"model.bin: {src} has a key bias, which Whisper does not")
    for name, w, b in (("q_proj", q_w, q_b), ("k_proj", k_w, None), ("v_proj", v_w, v_b)):
        state[f"{out}.{name}.weight"] = _f32(w)
        if b is not None:
            state[f"{out}.{name}.bias"] = _f32(b)
    state[f"{out}.out_proj.weight"] = _f32(arrays[f"{src}/{o}/weight"])
    state[f"{out}.out_proj.bias"] = _f32(arrays[f"{src}/{o}/bias"])


def _norm(state: dict, out: str, arrays: dict, src: str) -> None:
    """A LayerNorm: CTranslate2's gamma/beta are transformers' weight/bias."""
    state[f"{out}.weight"], state[f"{out}.bias"] = _f32(arrays[f"{src}/gamma"]), _f32(arrays[f"{src}/beta"])


def _linear(state: dict, out: str, arrays: dict, src: str) -> None:
    """A Linear or Conv1d: the same layout in both."""
    state[f"{out}.weight"], state[f"{out}.bias"] = _f32(arrays[f"{src}/weight"]), _f32(arrays[f"{src}/bias"])


def whisper_state(arrays: dict[str, "np.ndarray"]) -> tuple[dict[str, "np.ndarray"], dict]:
    """(state dict with transformers' WhisperForConditionalGeneration names, WhisperConfig arguments)."""
    state: dict = {}
    def layers(side: str) -> int:
        return len({k.split("/")[1] for k in arrays if k.split("/")[0] == side and k.split("/")[1][6:].isdigit()})

    enc_layers, dec_layers = layers("encoder"), layers("decoder")
    for side, count in (("encoder", enc_layers), ("decoder", dec_layers)):
        for i in range(count):
            src, out = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            _norm(state, f"{out}.self_attn_layer_norm", arrays, f"{src}/self_attention/layer_norm")
            _attention(state, f"{out}.self_attn", arrays, f"{src}/self_attention", fused_kv=False)
            if side == "decoder":
                _norm(state, f"{out}.encoder_attn_layer_norm", arrays, f"{src}/attention/layer_norm")
                _attention(state, f"{out}.encoder_attn", arrays, f"{src}/attention", fused_kv=True)
            _norm(state, f"{out}.final_layer_norm", arrays, f"{src}/ffn/layer_norm")
            _linear(state, f"{out}.fc1", arrays, f"{src}/ffn/linear_0")
            _linear(state, f"{out}.fc2", arrays, f"{src}/ffn/linear_1")
        _norm(state, f"model.{side}.layer_norm", arrays, f"{side}/layer_norm")
        state[f"model.{side}.embed_positions.weight"] = _f32(arrays[f"{side}/position_encodings/encodings"])
    _linear(state, "model.encoder.conv1", arrays, "encoder/conv1")
    _linear(state, "model.encoder.conv2", arrays, "encoder/conv2")
    state["model.decoder.embed_tokens.weight"] = _f32(arrays["decoder/embeddings/weight"])
    d_model = state["model.decoder.embed_tokens.weight"].shape[1]
    config = {
        "vocab_size": state["model.decoder.embed_tokens.weight"].shape[0],
        "num_mel_bins": state["model.encoder.conv1.weight"].shape[1], "d_model": d_model,
        "encoder_layers": enc_layers, "decoder_layers": dec_layers,
        "encoder_attention_heads": int(arrays["encoder/num_heads"].reshape(-1)[0]),
        "decoder_attention_heads": int(arrays["decoder/num_heads"].reshape(-1)[0]),
        "encoder_ffn_dim": state["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": state["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": state["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": state["model.decoder.embed_positions.weight"].shape[0],
        "decoder_start_token_id": 50257, "bos_token_id": 50257, "eos_token_id": 50256, "pad_token_id": 50256,
        "tie_word_embeddings": True, "architectures": ["WhisperForConditionalGeneration"],
    }
    return state, config
