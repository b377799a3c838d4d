"""Running one command of the architecture matrix and comparing its capture with the model's eager attention.

:func:`run_case` runs a command through the CLI's error boundary (the caller's ``invoke``), reads the last capture
and compares every weight it kept (layers, heads, rows, fused heads) with the same model loaded with
``attn_implementation="eager"`` and called with ``output_attentions=True`` on the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tiny_matrix import SENTENCE, WORKS, Arch
@dataclass
class Result:
    """What one command did: 'works' with the largest difference from eager attention, or 'refused: message'."""

    outcome: str
    diff: float | None = None
    detail: str = ""
    code: int = 0
    stderr_lines: int = 0
    last_changed: bool = False
    problem: str | None = None  # why attncli refuses to read back the last capture the command stored


def inputs_for(folder: Path) -> tuple[Path, Path]:
    """(a small picture, a 1-second WAV) in folder, for image and audio commands."""
    from tiny_speech import tone, write_wav
    from tiny_vision import photo

    return photo(folder / "photo.png"), write_wav(folder / "tone.wav", tone(1.0))


def argv(arch: Arch, command: str, model: Path, work: Path) -> list[str]:
    """The command line a user would type for this architecture and command."""
    image, audio = inputs_for(work)
    m = ["--model", str(model)]
    text_side = arch.group in ("text encoder", "causal LM") or (command == "explain")
    if command == "explain":
        return ["explain", SENTENCE, *m, "--json"]
    if command == "heatmap":
        return ["heatmap", "--text", SENTENCE, *m, "--json"] if text_side else ["heatmap", str(image), *m, "--json"]
    if command == "stats":
        return ["stats", "--text", SENTENCE, *m, "--json"] if text_side else ["stats", str(image), *m, "--json"]
    if command == "classify":
        return ["classify", str(image), *m, "--json"]
    if command == "patches":
        return ["patches", str(image), *m, "--json", "-o", str(work / "patches.png")]  # else it writes in the cwd
    if command == "generate":
        return ["generate", SENTENCE, *m, "--max-new-tokens", "3", "--json"]
    if command == "align":
        source = str(audio) if arch.group == "speech" else "the cat sat on the mat"
        return ["align", source, *m, "--max-new-tokens", "4", "--json"]
    if command == "page":
        out = str(work / "page.html")
        return ["explain", SENTENCE, *m, "-o", out] if text_side else ["heatmap", str(image), *m, "-o", out]
    raise ValueError(command)


def selected(full: Any, capture: Any, cross: bool = False) -> Any:
    """The part of a full (layers, heads, query, key) eager array that a capture kept (layers, heads, rows, fused)."""
    import numpy as np

    if cross:
        return full
    part = full if capture.layer_ids is None else full[capture.layer_ids]
    if capture.fused_heads:
        fuse = {"mean": np.mean, "max": np.max, "min": np.min}[capture.fused_heads]
        part = fuse(part, axis=1, keepdims=True)
    elif capture.head_ids is not None:
        part = part[:, capture.head_ids]
    return part if capture.query_ids is None else part[:, :, capture.query_ids]


def _stack(attentions: Any) -> Any:
    import numpy as np

    return np.stack([a[0].detach().float().numpy() for a in attentions])  # (layers, heads, query, key)


def eager_reference(arch: Arch, command: str, model_dir: Path, capture: Any, work: Path) -> dict[str, Any]:
    """The model's own eager attention (output_attentions=True) on the capture's input: name -> (L, H, Q, K)."""
    import torch
    import transformers
    from PIL import Image

    config = transformers.AutoConfig.from_pretrained(model_dir)
    cls = getattr(transformers, config.architectures[0])
    model = cls.from_pretrained(model_dir, attn_implementation="eager").eval()
    image, audio = inputs_for(work)
    with torch.no_grad():
        if arch.group == "speech":
            proc = transformers.AutoProcessor.from_pretrained(model_dir)
            from attncli.audio import read_audio

            rate = proc.feature_extractor.sampling_rate
            feats = proc.feature_extractor(read_audio(audio, rate).samples, sampling_rate=rate, return_tensors="pt")
            ids = model.generate(feats.input_features, max_new_tokens=4, do_sample=False, num_beams=1,
                                 return_dict_in_generate=True).sequences[0].tolist()
            out = model(input_features=feats.input_features, decoder_input_ids=torch.tensor([ids[:-1]]),
                        output_attentions=True)
            return {"attentions": _stack(out.encoder_attentions), "cross_attentions": _stack(out.cross_attentions),
                    "decoder_attentions": _stack(out.decoder_attentions)}
        if arch.group == "encoder-decoder":
            tok = transformers.AutoTokenizer.from_pretrained(model_dir)
            enc = tok("the cat sat on the mat", return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=4, do_sample=False, num_beams=1)[0].tolist()
            start = model.generation_config.decoder_start_token_id
            ids = ids if ids[0] == start else [start] + ids
            out = model(**enc, decoder_input_ids=torch.tensor([ids[:-1]]), output_attentions=True)
            return {"attentions": _stack(out.encoder_attentions), "cross_attentions": _stack(out.cross_attentions),
                    "decoder_attentions": _stack(out.decoder_attentions)}
        towers = hasattr(config, "vision_config")
        if capture.kind.value == "image":
            proc = transformers.AutoImageProcessor.from_pretrained(model_dir)
            pixels = proc(images=[Image.open(image).convert("RGB")], return_tensors="pt")["pixel_values"]
            net = model.vision_model if towers else model
            return {"attentions": _stack(net(pixel_values=pixels, output_attentions=True).attentions)}
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        enc = dict(tok(SENTENCE, return_tensors="pt"))
        if command == "generate":
            new = model.generate(**enc, max_new_tokens=3, do_sample=False, num_beams=1,
                                 pad_token_id=config.eos_token_id)[0].tolist()
            enc = {"input_ids": torch.tensor([new])}
        net = model.text_model if towers else model
        if towers:
            enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return {"attentions": _stack(net(**enc, output_attentions=True).attentions)}


def run_case(arch: Arch, command: str, model_dir: Path, work: Path, invoke: Callable[..., tuple[int, str, str]],
             budget: str | None = None) -> Result:
    """Run one command through the CLI; for a capture, the largest difference from the model's eager attention.

    ``budget`` sets ATTN_CAPTURE_BUDGET_MB for the run ("0": the capture keeps only what the view reads).
    """
    import os

    saved = os.environ.get("ATTN_CAPTURE_BUDGET_MB")
    if budget is not None:
        os.environ["ATTN_CAPTURE_BUDGET_MB"] = budget
    try:
        return _run_case(arch, command, model_dir, work, invoke)
    finally:
        if saved is None:
            os.environ.pop("ATTN_CAPTURE_BUDGET_MB", None)
        else:
            os.environ["ATTN_CAPTURE_BUDGET_MB"] = saved


def _run_case(arch: Arch, command: str, model_dir: Path, work: Path,
              invoke: Callable[..., tuple[int, str, str]]) -> Result:
    import numpy as np

    from attncli.errors import AttnError
    from attncli.store import last_capture_path, load_capture

    last = last_capture_path()
    before = last.read_bytes() if last.is_file() else None
    code, out, err = invoke(*argv(arch, command, model_dir, work))
    if code != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        after = last.read_bytes() if last.is_file() else None
        return Result("refused: " + (lines[-1] if lines else f"exit {code}"), None, f"exit {code}", code,
                      len(lines), after != before)
    problem = None
    try:
        capture = load_capture()
    except AttnError as exc:  # still compare what was stored, and say why it cannot be read back
        problem, capture = exc.message, _stored(last)
    ref = eager_reference(arch, command, model_dir, capture, work)
    diff = 0.0
    for name, full in ref.items():
        got = getattr(capture, name)
        want = selected(full, capture, cross=name != "attentions")
        if got is None or got.shape != want.shape:
            return Result("works", float("inf"), f"{name}: shape {None if got is None else got.shape} vs {want.shape}",
                          problem=problem)
        diff = max(diff, float(np.abs(got - want).max()))
    return Result(WORKS, diff, problem=problem)


def _stored(path: Path) -> Any:
    """The weights and selection fields of a stored capture, read without attncli's wholeness checks."""
    import json
    from types import SimpleNamespace

    import numpy as np

    from attncli.choices import Kind

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
        arrays = {}
        for name in ("attentions", "cross_attentions", "decoder_attentions"):
            count = meta.get(f"{name}_layers")
            arrays[name] = None if count is None else np.stack(
                [data[f"{name}.{i}"] for i in range(int(count))]).astype(np.float32)
    fields = {k: meta.get(k) for k in ("layer_ids", "head_ids", "query_ids", "fused_heads")}
    return SimpleNamespace(kind=Kind(meta.get("kind", "text")), **fields, **arrays)
