"""Model safety: weights load from safetensors, pickle only when asked, and never from random initialisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from attncli.choices import Purpose
from attncli.errors import ModelLoadError, UsageError

SAFE = (".safetensors",)
# Checkpoint files torch.load would unpickle: loading one can run code hidden in it.
PICKLE = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Purposes that only read attention: a pooler (it runs after the last attention layer) may be missing.
ATTENTION_ONLY = {Purpose.text, Purpose.image}


def weight_files(folder: Path) -> tuple[list[str], list[str]]:
    """(safetensors files, pickle checkpoint files) directly in a model folder."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    safe = [n for n in names if n.endswith(SAFE)]
    pickled = [n for n in names if n.endswith(PICKLE) and not n.startswith(("training_args", "optimizer",
                                                                           "scheduler", "rng_state"))]
    return safe, pickled


def check_weights(folder: Path | None, model_id: str, allow_pickle: bool) -> dict[str, Any]:
    """The from_pretrained arguments that load weights safely; a pickle-only folder is refused unless allowed.

    The check runs before transformers (and torch.load) sees the folder. ``folder`` is None for a hub id not in
    the cache yet: transformers is then told to take safetensors only.
    """
    if folder is None:
        return {"use_safetensors": None if allow_pickle else True}
    safe, pickled = weight_files(folder)
    if safe:
        return {"use_safetensors": True}
    if not pickled:
        return {}  # no weights here at all: transformers names what it looked for
    if not allow_pickle:
        raise UsageError(f"{model_id} has only pickle weights ({', '.join(pickled[:3])}), which attncli does not "
                         "load by default: unpickling a file can run code hidden in it",
                         "convert it to model.safetensors, or rerun with --allow-pickle if you trust it "
                         "(tensors only: weights_only=True)")
    return {"use_safetensors": False, "weights_only": True}


def refuse_missing(info: dict[str, Any] | None, model_id: str, purpose: Purpose) -> None:
    """Refuse a model some of whose weights were not in the checkpoint (transformers filled them with noise)."""
    missing = sorted((info or {}).get("missing_keys") or ())
    if purpose in ATTENTION_ONLY:
        missing = [k for k in missing if ".pooler." not in f".{k}" and not k.startswith("pooler")]
    if not missing:
        return
    raise ModelLoadError(f"{model_id}: {len(missing)} weight{'s' if len(missing) > 1 else ''} "
                         f"{'were' if len(missing) > 1 else 'was'} not in the checkpoint and would be random "
                         f"({_listing(missing)})",
                         "the checkpoint is incomplete or made for another architecture; use the model as saved, "
                         "or one trained for this task")


def _listing(names: Iterable[str], n: int = 3) -> str:
    """'a, b, c and 5 more'."""
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def damaged(exc: BaseException) -> bool:
    """Whether an exception from loading says a weights file is corrupt or truncated."""
    text = f"{type(exc).__name__} {exc}".lower()
    return type(exc).__name__ == "SafetensorError" or any(
        s in text for s in ("header too large", "invalid header", "incomplete metadata", "deserializing header",
                            "buffer length", "unexpected eof", "pytorchstreamreader failed"))
