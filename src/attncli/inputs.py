"""Text in: read the user's text, tokenize it within the model's limit, and make clean token labels."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from attncli.errors import UsageError

# Byte-level BPE and SentencePiece markers for spaces/newlines, and WordPiece's continuation prefix.
_MARKERS = ("##", "Ġ", "▁", "Ċ", "ĉ")


def read_text(text: str | None, file: Path | None = None, stdin: TextIO | None = None) -> str:
    """The text to analyse from the argument, `--file`, or stdin when the argument is "-"."""
    if text is not None and file is not None:
        raise UsageError("give the text either as an argument or with --file, not both")
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--file {file}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {file}: cannot read it as UTF-8 text ({exc.__class__.__name__})") from None
    elif text == "-":
        text = (stdin or sys.stdin).read()
    if text is None:
        raise UsageError("no text given", 'pass it as an argument, with --file PATH, or "-" to read stdin')
    if not text.strip():
        raise UsageError("the text is empty", "give at least one word")
    return text.strip()


@dataclass
class TextInput:
    """Tokenized text ready for the model, with one display label per token."""

    text: str
    model_inputs: dict[str, Any]
    labels: list[str]
    special: list[bool]
    limit: int
    dropped: int = 0
    warnings: list[str] = field(default_factory=list)


def token_limit(tokenizer: Any, config: Any) -> int:
    """How many tokens the model accepts: the tokenizer's limit unless it is a sentinel, capped by positions."""
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    return min(limits) if limits else 512


def clean_label(raw: str) -> str:
    """A token as a person reads it: no ##, Ġ or ▁ markers; whitespace-only tokens shown as ␣."""
    label = raw
    for marker in _MARKERS:
        if label.startswith(marker):
            label = label[len(marker):]
    label = label.replace("Ġ", " ").replace("▁", " ").strip()
    return label if label else "␣"


def token_labels(tokenizer: Any, ids: list[int], offsets: list[tuple[int, int]] | None, text: str,
                 special: list[bool]) -> list[str]:
    """Display labels: the exact source substring where offsets exist, else the cleaned token string."""
    raw_tokens = tokenizer.convert_ids_to_tokens(ids)
    labels = []
    for i, raw in enumerate(raw_tokens):
        if special[i]:
            labels.append(str(raw))
            continue
        if offsets is not None:
            start, end = offsets[i]
            piece = text[start:end].strip()
            if piece:
                labels.append(piece)
                continue
        labels.append(clean_label(str(raw)))
    return labels


def prepare_text(text: str, tokenizer: Any, config: Any) -> TextInput:
    """Tokenize with the model's own tokenizer, truncating (with a warning) past the model's limit."""
    limit = token_limit(tokenizer, config)
    full_len = len(tokenizer(text, add_special_tokens=True)["input_ids"])
    enc = tokenizer(
        text,
        return_tensors="pt",
        truncation=True,
        max_length=limit,
        return_special_tokens_mask=True,
        return_offsets_mapping=bool(getattr(tokenizer, "is_fast", False)),
    )
    special_mask = enc.pop("special_tokens_mask")[0].tolist()
    offsets = enc.pop("offset_mapping", None)
    ids = enc["input_ids"][0].tolist()
    special = [bool(s) for s in special_mask]
    labels = token_labels(tokenizer, ids, None if offsets is None else [tuple(o) for o in offsets[0].tolist()],
                          text, special)
    dropped = max(full_len - len(ids), 0)
    warnings = []
    if dropped:
        warnings.append(f"the text has {full_len} tokens but the model takes {limit}: dropped the last {dropped}")
    return TextInput(text, dict(enc), labels, special, limit, dropped, warnings)
