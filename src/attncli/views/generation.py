"""The view of `attn generate`: per generated token, what it attended to in the prompt and in what came before it.

Computed from a generation Capture with numpy only. Row ``t`` is the query row ``P + t - 1`` of the capture: the
step that produced generated token ``t`` (it sees the prompt and the tokens generated before ``t``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.choices import Fuse, Scale
from attncli.errors import NotSupportedError
from attncli.methods.heads import top_k
from attncli.views.common import colour_range, heads_phrase, stored_head

if TYPE_CHECKING:
    import numpy as np

    from attncli.capture import Capture


@dataclass
class GenerationView:
    """One layer's attention of every generation step over the tokens it could see.

    ``matrix[t, j]`` is how much the step that produced generated token ``t`` attended to token ``j`` (the prompt is
    ``j < prompt_length``, then the generated tokens); entries ``j >= prompt_length + t`` are 0 (not yet there).
    Each row sums to 1.
    """

    matrix: "np.ndarray"  # (generated, prompt + generated - 1)
    labels: list[str]  # the tokens a step can see: the prompt, then every generated token but the last
    special: list[bool]
    prompt_length: int
    generated: list[str]
    generated_special: list[bool]
    scores: list[float]
    layer: int
    head: int | None
    fuse: str
    n_heads: int
    model_id: str
    prompt: str | None
    text: str | None
    decoding: dict[str, Any] = field(default_factory=dict)
    top_k: int = 3
    vmax: float = 1.0
    sinks: bool = False  # the model's softmax includes learned sink logits (gpt-oss): rows sum to less than 1

    @property
    def title(self) -> str:
        """'Layer 1 · mean of 2 heads · model'."""
        return f"Layer {self.layer} · {heads_phrase(self.head, self.fuse, self.n_heads)} · {self.model_id}"

    @property
    def notes(self) -> list[str]:
        """The prompt, the continuation and how it came about, what a row means."""
        from attncli.views.cross import decoding_note

        return [f"prompt: {self.prompt}",
                f"generated: {self.text or '(nothing printable)'}  "
                f"[{decoding_note(self.decoding, len(self.generated))}]",
                "rows: generated tokens, each at the step that produced it; columns: the prompt, then the tokens "
                "generated before it " + ("(rows sum to at most 1: the rest went to the model's learned sinks)"
                                          if self.sinks else "(rows sum to 1)")]

    def prompt_share(self) -> list[float]:
        """Per generated token, the part of its attention that went to the prompt."""
        return [float(row[: self.prompt_length].sum()) for row in self.matrix]

    def top_prompt(self, k: int | None = None) -> list[list[tuple[int, float]]]:
        """Per generated token, the k prompt tokens it attended to most as (position, weight)."""
        k = self.top_k if k is None else k
        return [top_k(row[: self.prompt_length], k) for row in self.matrix]

    def top_generated(self, k: int | None = None) -> list[list[tuple[int, float]]]:
        """Per generated token, the k earlier generated tokens it attended to most as (position, weight)."""
        k = self.top_k if k is None else k
        p = self.prompt_length
        return [[(p + j, w) for j, w in top_k(row[p:p + t], min(k, t))] for t, row in enumerate(self.matrix)]

    def to_dict(self) -> dict:
        """The JSON document of `attn generate --json` (schema attncli.generate/1)."""
        p = self.prompt_length

        def named(pairs: list[tuple[int, float]]) -> list[dict]:
            return [{"index": j, "token": self.labels[j], "weight": round(w, 6)} for j, w in pairs]

        return {
            "schema": "attncli.generate/1",
            "title": self.title,
            "model": self.model_id,
            "layer": self.layer,
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "decoding": self.decoding,
            "prompt": {"text": self.prompt,
                       "tokens": [{"index": i, "token": self.labels[i], "special": self.special[i]}
                                  for i in range(p)]},
            "generated": {
                "text": self.text,
                "tokens": [
                    {"index": p + t, "token": self.generated[t], "special": self.generated_special[t],
                     "prob": round(self.scores[t], 6), "prompt_share": round(share, 6),
                     "top_prompt": named(tp), "top_generated": named(tg)}
                    for t, (share, tp, tg) in enumerate(zip(self.prompt_share(), self.top_prompt(),
                                                            self.top_generated()))
                ],
            },
            "weights": [[round(float(w), 6) for w in row[: p + t]] for t, row in enumerate(self.matrix)],
        }


def require_generation(capture: "Capture") -> int:
    """The prompt length of a generation capture; any other capture is refused with the command that makes one."""
    if capture.prompt_tokens is None or not capture.target_tokens:
        raise NotSupportedError(f"this capture of {capture.model_id} was not made by attn generate",
                                'make one with attn generate "PROMPT" --model CAUSAL_LM')
    return int(capture.prompt_tokens)


def generation_view(capture: "Capture", layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean,
                    top: int = 3) -> GenerationView:
    """Each generated token's attention at one layer over the prompt and the tokens generated before it."""
    p = require_generation(capture)
    n = capture.n_tokens
    layer_i = capture.layer_number(layer)
    full = capture.map(layer_i, head, fuse)  # (rows kept, N)
    _, head_i = stored_head(capture, head, fuse)
    rows = [capture.row_index(i) for i in range(p - 1, n - 1)]  # the steps that produced each generated token
    matrix = full[rows, : n - 1]  # (generated, N - 1): the last generated token is seen by no step
    scores = capture.target_scores or [float("nan")] * len(capture.target_tokens)
    return GenerationView(
        matrix=matrix, labels=list(capture.tokens[: n - 1]), special=list(capture.special[: n - 1]), prompt_length=p,
        generated=list(capture.target_tokens), generated_special=list(capture.target_special), scores=list(scores),
        layer=layer_i, head=head_i,
        fuse=Fuse(fuse).value, n_heads=capture.heads_total, model_id=capture.model_id, prompt=capture.text,
        text=capture.target_text, decoding=dict(capture.decoding), top_k=top,
        vmax=colour_range(matrix, Scale.zero)[1], sinks=bool(capture.arch.get("sinks")),
    )
