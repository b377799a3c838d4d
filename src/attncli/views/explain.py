"""What each token attends to: the views behind `attn explain`, computed from a Capture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from attncli.choices import Fuse, Scale
from attncli.errors import UsageError
from attncli.methods.heads import keep_tokens, resolve_index, top_k, top_k_rows
from attncli.methods.registry import Method, info
from attncli.methods.spec import ONE
from attncli.views.common import (SKIP_NOTE, MapSpec, check_capture, colour_range, default_scale, heads_phrase,
                                  rounded, stored_head)

if TYPE_CHECKING:
    from attncli.capture import Selection
    import numpy as np

    from attncli.capture import Capture


@dataclass
class LayerMatrix:
    """One layer's (query, key) map over the tokens shown (the base of TokenTable and TokenMatrix).

    ``matrix[i, j]`` is how much shown token ``i`` attends to shown token ``j``; ``indices`` maps shown
    positions back to positions in the capture.
    """

    matrix: "np.ndarray"
    indices: list[int]
    labels: list[str]
    special: list[bool]
    layer: int
    head: int | None
    fuse: str
    skip_special: bool
    model_id: str
    method: Method = Method.attention
    method_note: str | None = None  # how a non-attention matrix was made, for titles
    n_heads: int | None = None
    top_k: int = 3
    scale: Scale = Scale.zero
    vmin: float = 0.0
    vmax: float = 1.0
    sinks: bool = False  # the model's softmax includes learned sink logits (gpt-oss): rows sum to less than 1

    @property
    def title(self) -> str:
        """'Layer 5 · mean of 12 heads · model' (or the method's description)."""
        return f"Layer {self.layer} · {self.method_note or heads_phrase(self.head, self.fuse, self.n_heads)} · " \
               f"{self.model_id}"

    @property
    def notes(self) -> list[str]:
        """Lines under the title: hidden tokens, and what a row means."""
        notes = [SKIP_NOTE] if self.skip_special else []
        m = info(self.method)
        if not m.sums_to_one and not self.skip_special:
            notes.append(f"rows: each column token's {m.quantity} to the row token (rows do not sum to 1)")
        elif self.sinks and m.span == ONE and m.sums_to_one:
            notes.append("rows attend to columns; each row sums to at most 1: this model's softmax gives the rest to its learned sinks")
        else:
            notes.append("rows attend to columns; each row sums to 1")
        return notes

    def top(self, k: int | None = None) -> list[list[tuple[int, float]]]:
        """Per shown token, its k most attended shown positions as (position, weight)."""
        return top_k_rows(self.matrix, self.top_k if k is None else k)

    def to_dict(self, k: int | None = None) -> dict:
        """The JSON document of `attn explain --json` (schema attncli.explain/1)."""
        return {
            "schema": "attncli.explain/1",
            "title": self.title,
            "notes": self.notes,
            "model": self.model_id,
            "method": self.method.value,
            "layer": self.layer,
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "skip_special": self.skip_special,
            "tokens": _tokens_json(self.indices, self.labels, self.special),
            "weights": rounded(self.matrix),
            "top": [
                {"index": self.indices[i], "token": self.labels[i],
                 "attends": [{"index": self.indices[j], "token": self.labels[j], "weight": round(w, 6)}
                             for j, w in row]}
                for i, row in enumerate(self.top(k))
            ],
        }


@dataclass
class TokenTable(LayerMatrix):
    """Each shown token with the k tokens it attends to most (`attn explain`)."""


@dataclass
class TokenMatrix(LayerMatrix):
    """The full token × token map, every weight shown (`attn explain --matrix`, `attn heatmap --text`)."""


@dataclass
class TokenProfile:
    """One token's attention row at every layer: ``rows[layer, j]`` over the shown tokens."""

    token: int
    label: str
    rows: "np.ndarray"
    indices: list[int]
    labels: list[str]
    special: list[bool]
    head: int | None
    fuse: str
    skip_special: bool
    model_id: str
    method: Method = Method.attention  # rows[l] is the method's map up to layer l
    method_note: str | None = None  # how a non-attention profile was made, for titles
    n_heads: int | None = None
    top_k: int = 3
    pieces: list[int] = field(default_factory=list)  # a word's tokens when it was split (their rows are averaged)
    layer_ids: list[int] = field(default_factory=list)  # the model layer of each row of rows ([]: 0, 1, 2, …)
    heads: list[tuple[int, int, float]] = field(default_factory=list)  # (layer, head, weight) to heads_to, most first
    heads_to: int | None = None  # position (in indices) of the word the heads send the most to
    sinks: bool = False  # the model's softmax includes learned sink logits (gpt-oss): rows sum to less than 1

    @property
    def layer_numbers(self) -> list[int]:
        """The model layer of each row."""
        return self.layer_ids or list(range(self.rows.shape[0]))

    @property
    def where(self) -> str:
        """'token 8', or 'tokens 5-7 (to|mor|ow), their rows averaged' for a word split into pieces."""
        if len(self.pieces) <= 1:
            return f"token {self.token}"
        names = "|".join(self.labels[self.indices.index(i)] if i in self.indices else str(i) for i in self.pieces)
        span = str(self.pieces[0]) if len(self.pieces) == 1 else f"{self.pieces[0]}-{self.pieces[-1]}"
        return f"tokens {span} ({names}), their rows averaged"

    @property
    def title(self) -> str:
        """'What "it" (token 8) attends to, layer by layer · mean of 12 heads · model'."""
        which = f"at layer {self.layer_numbers[0]}" if self.rows.shape[0] == 1 else "layer by layer"
        return (f'What "{self.label}" ({self.where}) attends to, {which} · '
                f"{self.method_note or heads_phrase(self.head, self.fuse, self.n_heads)} · {self.model_id}")

    @property
    def notes(self) -> list[str]:
        """Lines under the title."""
        return [SKIP_NOTE] if self.skip_special else []

    def top(self, k: int | None = None) -> list[list[tuple[int, float]]]:
        """Per layer, the k most attended shown positions as (position, weight)."""
        return [top_k(row, self.top_k if k is None else k) for row in self.rows]

    def to_dict(self, k: int | None = None) -> dict:
        """The JSON document of `attn explain --token ... --json` (schema attncli.explain-token/1)."""
        return {
            "schema": "attncli.explain-token/1",
            "title": self.title,
            "notes": self.notes,
            "model": self.model_id,
            "method": self.method.value,
            "token": {"index": self.token, "text": self.label, "pieces": self.pieces or [self.token]},
            "head": self.head,
            "fuse": None if self.head is not None else self.fuse,
            "skip_special": self.skip_special,
            "tokens": _tokens_json(self.indices, self.labels, self.special),
            "layers": [
                {"layer": layer, "weights": rounded(row),
                 "top": [{"index": self.indices[j], "token": self.labels[j], "weight": round(w, 6)} for j, w in top]}
                for layer, row, top in zip(self.layer_numbers, self.rows, self.top(k))
            ],
            "heads": [{"layer": layer, "head": head, "weight": round(w, 6)} for layer, head, w in self.heads],
            "heads_to": None if self.heads_to is None else {"index": self.indices[self.heads_to],
                                                             "token": self.labels[self.heads_to]},
        }


def _tokens_json(indices: list[int], labels: list[str], special: list[bool]) -> list[dict]:
    """Token list for JSON output."""
    return [{"index": i, "text": t, "special": s} for i, t, s in zip(indices, labels, special)]


def _shown(capture: "Capture", skip_special: bool) -> list[int]:
    """Capture positions that are shown: all, or all but special tokens."""
    shown = [i for i, s in enumerate(capture.special) if not (skip_special and s)]
    if not shown:
        raise UsageError("--skip-special leaves no tokens to show", "drop --skip-special")
    return shown


def _restrict(matrix: "np.ndarray", capture: "Capture", shown: list[int], skip_special: bool) -> "np.ndarray":
    """Restrict a (query, key) map to the shown tokens, renormalising rows when specials are hidden."""
    if not skip_special:
        return matrix
    keep = [i in set(shown) for i in range(capture.n_tokens)]
    return keep_tokens(matrix, keep)


def layer_matrix(capture: "Capture", spec: MapSpec = MapSpec(), gradients: "np.ndarray | None" = None,
                 target_label: str | None = None, view: type[LayerMatrix] = TokenTable) -> LayerMatrix:
    """The (query, key) map of one layer (or the method's map up to it), optionally without special tokens."""
    from attncli.methods.dispatch import describe, method_rows

    method = check_capture(capture, spec)
    capture.require("the token table of a layer", layers=False)
    slot, layer_i = capture.layer_index(spec.layer), capture.layer_number(spec.layer)
    head_slot, head_i = stored_head(capture, spec.head, spec.fuse)
    shown = _shown(capture, spec.skip_special)
    full = method_rows(capture.attentions, method, slot, head=head_slot, fuse=spec.fuse,
                       discard_ratio=spec.discard_ratio, gradients=gradients, extras=capture.extras)  # (Q, K)
    matrix = _restrict(full, capture, shown, spec.skip_special)
    fuse = Fuse(spec.fuse)
    note = describe(method, layer_i, head_i, fuse.value, capture.heads_total, spec.discard_ratio, target_label)
    scale = spec.scale or default_scale(method)
    vmin, vmax = colour_range(matrix, scale)
    return view(matrix, shown, [capture.tokens[i] for i in shown], [capture.special[i] for i in shown],
                layer_i, head_i, fuse.value, spec.skip_special, capture.model_id, method, note, capture.heads_total,
                spec.top_k, scale, vmin, vmax, bool(capture.arch.get("sinks")))


def layer_view(capture: "Capture", layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean,
               skip_special: bool = False, method: Method | str = Method.attention, discard_ratio: float = 0.0,
               gradients: "np.ndarray | None" = None, target_label: str | None = None) -> LayerMatrix:
    """layer_matrix with the spec's fields as arguments (for Python use)."""
    spec = MapSpec(method=Method(method), layer=layer, head=head, fuse=Fuse(fuse), skip_special=skip_special,
                   discard_ratio=discard_ratio)
    return layer_matrix(capture, spec, gradients, target_label)


def find_token(capture: "Capture", query: str) -> int:
    """Position of one token given as an index ("8", "-1") or a word ("it"); ambiguous or split words are refused."""
    pieces = find_word(capture, query)
    if len(pieces) > 1:
        listing = ", ".join(str(i) for i in pieces)
        raise UsageError(f'"{query}" is one word split into {len(pieces)} tokens ({listing}); this view shows one token',
                         f"pick one piece by its index, e.g. {pieces[0]}")
    return pieces[0]


def find_word(capture: "Capture", query: str) -> list[int]:
    """The token positions a --token stands for: an index, a whole word (all its pieces), else one piece's label."""
    from attncli.capture import find_word as find

    return find(capture.tokens, capture.special, capture.words, query)


def token_profile(capture: "Capture", token: int | list[int], head: int | None = None, fuse: Fuse | str = Fuse.mean,
                  skip_special: bool = False, method: Method | str = Method.attention, discard_ratio: float = 0.0,
                  gradients: "np.ndarray | None" = None, target_label: str | None = None,
                  top: int = 3, layer: int | None = None) -> TokenProfile:
    """One token's attention at every layer (or at ``layer``), heads fused or one head, or --method's map.

    A word of several pieces (``token`` a list) attends as the mean of its pieces' rows, so rows still sum to 1.
    With raw attention and every head kept, the view also names the heads that send the most weight from the
    token to the word it attends to most (besides itself and special tokens), in ``layer`` when given.
    """
    import numpy as np

    from attncli.methods.dispatch import describe, inputs

    method = check_capture(capture, MapSpec(method=Method(method), head=head, fuse=Fuse(fuse),
                                            discard_ratio=discard_ratio))
    pieces = [resolve_index(t, capture.n_tokens, "token", "the text") for t in ([token] if isinstance(token, int)
                                                                                else token)]
    token = pieces[0]
    capture.require("a token's attention at every layer", rows=False)
    rows_at = [capture.row_index(p) for p in pieces]  # where the pieces' query rows are stored
    head_slot, head_i = stored_head(capture, head, fuse)
    shown = _shown(capture, skip_special)
    if token not in shown:
        raise UsageError(f'token {token} ("{capture.tokens[token]}") is a special token hidden by --skip-special',
                         "pick another token or drop --skip-special")
    per_layer = info(method).all_layers(inputs(capture.attentions, head=head_slot, fuse=fuse, queries=rows_at,
                                               discard_ratio=discard_ratio, gradients=gradients,
                                               extras=capture.extras)).mean(axis=1)  # (layers, keys): the pieces' mean
    rows = per_layer
    if skip_special:  # the query's row over the shown keys, renormalised (what _restrict does to every row)
        sub = per_layer[:, shown]
        totals = sub.sum(axis=-1, keepdims=True)
        rows = np.divide(sub, totals, out=np.zeros_like(sub), where=totals > 0)  # (layers, shown keys)
    note = describe(method, None, head_i, Fuse(fuse).value, capture.heads_total, discard_ratio, target_label)
    from attncli.capture import word_text

    label = word_text(capture.tokens, pieces) if len(pieces) > 1 else capture.tokens[token]
    slots = list(range(capture.n_layers)) if layer is None else [capture.layer_index(layer)]
    rows = rows[slots]  # (shown layers, keys)
    profile = TokenProfile(token, label, rows, shown, [capture.tokens[i] for i in shown],
                           [capture.special[i] for i in shown], head_i, Fuse(fuse).value, skip_special,
                           capture.model_id, method, note, capture.heads_total, top, pieces,
                           [capture.layer_number(s) for s in slots], sinks=bool(capture.arch.get("sinks")))
    best = best_other(profile)
    if best is not None and info(method).raw and capture.fused_heads is None:  # raw weights: name heads
        key = shown[best]
        found = []
        for slot in slots:
            weights = capture.attentions[slot][:, rows_at, key].mean(axis=1)  # (heads,): mean over the pieces
            for h, w in enumerate(weights):
                found.append((capture.layer_number(slot), capture.head_ids[h] if capture.head_ids else h, float(w)))
        profile.heads = sorted(found, key=lambda item: -item[2])[:3]
        profile.heads_to = best
    return profile


def best_other(profile: TokenProfile) -> int | None:
    """Position (in profile.indices) of the ordinary token, not the token itself, on top in the most layers."""
    import numpy as np

    others = [j for j, i in enumerate(profile.indices) if i != profile.token and not profile.special[j]]
    if not others:
        return None
    sub = profile.rows[:, others]  # (layers, other tokens)
    wins = np.bincount(sub.argmax(axis=1), minlength=len(others))
    # Most layer wins first; ties go to the larger mean weight.
    return others[max(range(len(others)), key=lambda c: (wins[c], sub[:, c].mean()))]


def profile_of(capture: "Capture", spec: MapSpec, gradients: "np.ndarray | None" = None,
               target_label: str | None = None, layer: int | None = None) -> TokenProfile:
    """The spec's --token (spec.query) at every layer, or at ``layer`` (explain --layer)."""
    return token_profile(capture, find_word(capture, spec.query or ""), spec.head, spec.fuse, spec.skip_special,
                         spec.method, spec.discard_ratio, gradients, target_label, spec.top_k, layer)


def needs(spec: MapSpec, layers: str | None = None, heads: str | None = None, fuse: bool = False) -> "Selection":
    """The attention weights the spec's view reads (plus --layers/--heads): one layer, one query row, or all.

    ``fuse``: the capture is kept for this view alone (no --save, no page), so a one-layer view of fused heads keeps
    just the heads fused (one map instead of one per head: on long prompts, most of the time and memory).
    """
    from attncli.capture import Selection, parse_numbers

    extra_layers, kept_heads = parse_numbers(layers, "layer"), parse_numbers(heads, "head")
    if kept_heads is not None and spec.head is not None:
        kept_heads = kept_heads + (spec.head,)
    m = info(spec.method)
    if m.span != ONE:
        return Selection(extras=m.extras)  # rollout, flow and gradients combine every layer, every row
    if spec.query is not None:
        base = Selection(layers=None, heads=kept_heads, query=spec.query, extras=m.extras)
    else:
        fused = fuse and spec.head is None and layers is None and heads is None and m.raw
        base = Selection(layers=(spec.layer,), heads=kept_heads, fuse=Fuse(spec.fuse) if fused else None,
                         extras=m.extras)
    return base.widened(extra_layers, every=layers is not None and extra_layers is None)
