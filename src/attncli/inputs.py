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
        except IsADirectoryError:
            raise UsageError(f"--file {file} is a folder", "give a text file") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"--file {file} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})",
                             "convert it first, e.g. iconv -f latin1 -t utf-8 FILE") from None
        except OSError as exc:
            raise UsageError(f"--file {file}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    elif text == "-":
        text = read_stdin(stdin or sys.stdin)
    if text is None:
        raise UsageError("no text given", 'pass it as an argument, with --file PATH, or "-" to read stdin')
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # an argument with bytes that are not UTF-8 arrives as surrogates
        raise UsageError(f"the text is not UTF-8 (character {exc.start})",
                         "pass UTF-8 text, or convert it first with iconv") from None
    if not text.strip():
        raise UsageError("the text is empty", "give at least one word")
    return text.strip()


def read_stdin(stream: TextIO) -> str:
    """All of stdin as UTF-8, decoded strictly: invalid bytes are refused, never passed on as surrogates."""
    raw = getattr(stream, "buffer", None)
    try:
        data = raw.read() if raw is not None else stream.read().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise UsageError("stdin is not UTF-8 text", "convert it first, e.g. iconv -f latin1 -t utf-8") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})",
                         "convert it first, e.g. iconv -f latin1 -t utf-8 | attn ...") from None


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
    words: list[int | None] = field(default_factory=list)  # word index of each token (fast tokenizers only)


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
    """Display labels, by one rule (README, "Token labels").

    A special token shows as itself ([CLS]); a token that is only a space marker (a lone ▁ or Ġ) shows as ␣;
    otherwise a token shows the exact source text it covers. Several tokens covering the same characters (the
    byte-level pieces of one multi-byte character) show that text with which piece they are: é[1/2] é[2/2].
    Without offsets (slow tokenizers) the token's own string is shown without its ##/Ġ/▁ markers.
    """
    raw_tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(ids)]
    labels = []
    for i, raw in enumerate(raw_tokens):
        if special[i]:
            labels.append(raw)
        elif raw and all(ch in "▁Ġ" for ch in raw):
            labels.append("␣")
        elif offsets is not None and text[offsets[i][0]:offsets[i][1]].strip():
            labels.append(text[offsets[i][0]:offsets[i][1]].strip())
        else:
            labels.append(clean_label(raw))
    if offsets is not None:
        _number_shared_pieces(labels, offsets, special)
    return labels


def _number_shared_pieces(labels: list[str], offsets: list[tuple[int, int]], special: list[bool]) -> None:
    """Runs of tokens with one and the same source span get [i/n] after their text (in place)."""
    i = 0
    while i < len(labels):
        j = i + 1
        while (j < len(labels) and not special[i] and not special[j] and offsets[j] == offsets[i]
               and offsets[i][1] > offsets[i][0] and labels[j] == labels[i]):
            j += 1
        if j - i > 1:
            for k in range(i, j):
                labels[k] = f"{labels[k]}[{k - i + 1}/{j - i}]"
        i = j


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
    if enc["input_ids"].shape[-1] == 0:
        raise UsageError("the model's tokenizer turns this text into no tokens at all",
                         "give text in a language and script the model's tokenizer knows")
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
    words = list(enc.word_ids(0)) if getattr(enc, "is_fast", False) else []
    return TextInput(text, dict(enc), labels, special, limit, dropped, warnings, words)
