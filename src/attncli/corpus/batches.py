"""Many inputs through one loaded model, batched, each coming out as the Capture `attn stats INPUT` would make.

Text is tokenized one input at a time (the same ``prepare_text`` as a single capture: labels, special tokens,
truncation at the model's limit), sorted by length inside a chunk so a batch pads little, and padded on the
right with an attention mask. Padded keys get the mask's minimum score, so their softmax weight is exactly 0
and every real query row is the input's own softmax; each input's weights are cut back to its own tokens.
Images go through the image family's batched capture unchanged (one size for the whole batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from attncli.capture import ALL, Capture, architecture
from attncli.choices import Kind, Purpose

if TYPE_CHECKING:
    from attncli.families.loaded import LoadedModel


def text_captures(items: list[tuple[int, str]], loaded: "LoadedModel", batch_size: int = 16,
                  max_tokens: int | None = None) -> Iterator[tuple[int, str, "Capture | None", bool]]:
    """(index, text, Capture or None when longer than max_tokens, truncated at the model's limit) per input.

    Inputs come back in order of length (shortest first), not in the order given.
    """
    from attncli.families import require
    from attncli.inputs import prepare_text

    config = loaded.config
    require(config, Purpose.text, loaded.ref.model_id)
    prepared = []
    for index, text in items:
        p = prepare_text(text, loaded.processor, config)
        n = int(p.model_inputs["input_ids"].shape[-1])
        if max_tokens is not None and n > max_tokens:
            yield index, text, None, False
            continue
        prepared.append((n, index, text, p))
    prepared.sort(key=lambda t: t[0])  # stable: equal lengths keep their order
    step = max(1, int(batch_size))
    for start in range(0, len(prepared), step):
        batch = prepared[start:start + step]
        weights = _forward(loaded, [p.model_inputs for _, _, _, p in batch])  # (B, L, H, N, N)
        for b, (n, index, text, p) in enumerate(batch):
            yield index, text, Capture(
                attentions=weights[b, :, :, :n, :n].copy(),  # (L, H, n, n): the input's own tokens
                tokens=p.labels, special=p.special, model_id=loaded.ref.model_id, model_path=loaded.ref.location,
                kind=Kind.text, arch=architecture(config), text=p.text, words=list(p.words),
                warnings=list(p.warnings)), bool(p.dropped)


def _forward(loaded: "LoadedModel", inputs: list[dict[str, Any]]) -> Any:
    """One forward over right-padded inputs: (batch, layers, heads, tokens, tokens) float32 weights."""
    import torch

    from attncli.families.base import last_logits
    from attncli.families.selective import capture_selected

    longest = max(int(x["input_ids"].shape[-1]) for x in inputs)
    pad_id = getattr(loaded.processor, "pad_token_id", None) or 0  # any id: its key is masked out
    batch: dict[str, Any] = {}
    for name in inputs[0]:
        rows = []
        for x in inputs:
            t = x[name][0]  # (n,)
            fill = pad_id if name == "input_ids" else 0
            rows.append(torch.cat([t, torch.full((longest - t.shape[0],), fill, dtype=t.dtype)]))
        batch[name] = torch.stack(rows).to(loaded.device)
    if "attention_mask" not in batch:
        batch["attention_mask"] = torch.stack([
            torch.cat([torch.ones(x["input_ids"].shape[-1], dtype=torch.long),
                       torch.zeros(longest - x["input_ids"].shape[-1], dtype=torch.long)]) for x in inputs
        ]).to(loaded.device)
    if len(inputs) == 1:  # one input: exactly the single-capture call, no mask added
        batch = {k: v.to(loaded.device) for k, v in inputs[0].items()}
    weights, _, _ = capture_selected(loaded.model, batch, ALL, **last_logits(loaded.model, 1))
    return weights


def image_captures(items: list[tuple[int, Any]], loaded: "LoadedModel",
                   batch_size: int = 16) -> Iterator[tuple[int, str, "Capture | None", bool]]:
    """(index, path or row label, Capture, False) per image — a file, or a dataset's image — in the order given."""
    from attncli.corpus.readers import image_label, picture
    from attncli.families.vit import capture_images

    files = all(isinstance(item, str) for _, item in items)
    inputs = [item for _, item in items] if files else [picture(item) for _, item in items]
    captures = capture_images(inputs, loaded, batch_size=batch_size)
    for (index, item), capture in zip(items, captures):
        yield index, image_label(index, item), capture, False
