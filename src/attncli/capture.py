"""Run a model and keep what it attended to: the Capture every view and method reads.

Index bookkeeping is the biggest footgun in attention tools, so there is exactly one layout:
``attentions[layer, head, query, key]``, float32 on the CPU, no batch axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from attncli.choices import Fuse, Kind
from attncli.errors import KeptError, NotSupportedError, UsageError
from attncli.grid import PatchGrid
from attncli.methods.heads import layer_map, resolve_index

if TYPE_CHECKING:
    import numpy as np


# What a long step reports: report(stage, done, total) — e.g. ("forward over 1652 tokens", 3, 12); done and total
# are None while a stage has no count. The CLI draws it on stderr; the core only calls it.
Report = Callable[[str, "int | None", "int | None"], None]


@dataclass(frozen=True)
class Prediction:
    """One class score of a classifier."""

    index: int
    label: str
    score: float


@dataclass
class Capture:
    """Attention weights of one input through one model, with everything needed to label them.

    Shapes:
        attentions: ``(layers, heads, query, key)`` float32; for text ``query == key == len(tokens)``,
            for images ``len(tokens) == grid.n_tokens`` (prefix tokens first, then patches row-major).
        image: ``(height, width, 3)`` uint8, the image as the model saw it after preprocessing (or None).
        source: the absolute path of the input file (image, or text file) when there was one.

    Encoder-decoder captures (``attn align``, ``attn caption``; ``cross_attentions is not None``):
        attentions: the ENCODER's self-attention over the source, so ``tokens``/``special``/``grid`` label the
            source exactly as for an encoder-only capture (text tokens, or the image's patch grid).
        cross_attentions: ``(decoder layers, heads, target, source)``: row ``t`` is the decoder step that
            produced ``target_tokens[t]`` (its input is the token before it, or the start token).
        decoder_attentions: ``(decoder layers, heads, target, target)``, the decoder's causal self-attention
            over the same steps.
        target_tokens/target_special/target_scores: one label, special flag and model probability per target
            token; ``decoding`` says whether the target was generated or given, and with which settings.
    Generation captures (``attn generate``; ``prompt_tokens is not None``): ``attentions`` is the causal
        self-attention of one teacher-forced pass over the prompt and the generated tokens, ``tokens[:prompt_tokens]``
        being the prompt. Generated token ``t`` (``tokens[prompt_tokens + t]``, also ``target_tokens[t]``) was produced
        by query row ``prompt_tokens + t - 1``; ``target_scores[t]`` is its probability there, ``decoding`` says how.
    Audio captures (``kind == Kind.audio``): ``tokens`` are the encoder's frames labelled by start time, frames past
        the end of the recording (the feature extractor's padding) are ``special``; ``frame_seconds`` is the
        time one encoder position covers, ``audio_seconds`` the recording's length, ``spectrogram`` the model's
        input features ``(feature bins, input frames)`` cut to the recording, ``target_times`` one time in seconds
        per target token from cross-attention and DTW (empty when the model has no such method), ``timing`` how.
    Layers and heads are 0-based; -1 is the last.
    """

    attentions: "np.ndarray"
    tokens: list[str]
    special: list[bool]
    model_id: str
    kind: Kind = Kind.text
    arch: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    grid: PatchGrid | None = None
    image: "np.ndarray | None" = None
    source: str | None = None
    predictions: list[Prediction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cross_attentions: "np.ndarray | None" = None
    decoder_attentions: "np.ndarray | None" = None
    target_tokens: list[str] = field(default_factory=list)
    target_special: list[bool] = field(default_factory=list)
    target_scores: list[float] = field(default_factory=list)
    target_text: str | None = None
    decoding: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None  # absolute folder (or hub id) the model was loaded from: grad-rollout reloads it
    input_size: tuple[int, int] | None = None  # (width, height) of the image file before preprocessing
    framing: dict | None = None  # image: how the processor resized and cropped the file (attncli.images.framing)
    layer_ids: list[int] | None = None  # model layer of each stored layer (None: every layer, in order)
    head_ids: list[int] | None = None  # model head of each stored head (None: every head)
    query_ids: list[int] | None = None  # token position of each stored query row (None: every token)
    total_layers: int | None = None  # layers and heads of the model (when only some were kept)
    total_heads: int | None = None
    fused_heads: str | None = None  # "mean"/"max"/"min": the head axis holds one map, all heads fused that way
    words: list[int | None] = field(default_factory=list)  # word index of each text token (None: special); [] unknown
    prompt_tokens: int | None = None  # attn generate: how many of the tokens are the prompt (the rest were generated)
    frame_seconds: float | None = None  # audio: seconds per encoder position
    audio_seconds: float | None = None  # audio: length of the recording read
    spectrogram: "np.ndarray | None" = None  # audio: (feature bins, input frames) float32, as the model saw it
    target_times: list[float | None] = field(default_factory=list)  # audio: DTW time of each target token, seconds
    timing: dict[str, Any] = field(default_factory=dict)  # audio: how target_times were found (heads, method)
    # Extra arrays by name (float32, stored layers first), kept only when asked (Selection.qk): "query" and "key"
    # (layers, heads, N, d) as the eager function got them (after RoPE; key's KV heads repeated to every head),
    # "scaling" (layers,) the factor the scores were multiplied by, "allowed" (N, N) 1 where the mask let a key in;
    # "value_gram" (layers, key, heads, heads) ⟨f_h(x_j), f_g(x_j)⟩ of the value vectors through W_O (value-norm).
    extras: dict[str, "np.ndarray"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = Kind(self.kind)

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        """Heads per layer."""
        return int(self.attentions.shape[1])

    @property
    def n_tokens(self) -> int:
        """Sequence length (query and key)."""
        return int(self.attentions.shape[-1])

    @property
    def heads_total(self) -> int:
        """How many heads the stored maps stand for: the kept heads, or all of them when they were fused."""
        return int(self.total_heads or self.n_heads) if self.fused_heads else self.n_heads

    @property
    def complete(self) -> bool:
        """Whether every layer, head and query row of the model was kept."""
        return self.layer_ids is None and self.head_ids is None and self.query_ids is None and not self.fused_heads

    def _fused_only(self) -> str:
        return f"this capture kept only the {self.fused_heads} of its {self.heads_total} heads"

    def check_heads(self, what: str) -> None:
        """Refuse a view that reads each head when the capture kept only the heads fused."""
        if self.fused_heads:
            raise KeptError(f"{what} reads each head, but {self._fused_only()}", "capture it again with --heads all")

    def check_fuse(self, fuse: Fuse | str) -> None:
        """Refuse heads fused another way than the capture fused them (a capture that kept every head takes any)."""
        if self.fused_heads and Fuse(fuse).value != self.fused_heads:
            raise KeptError(f"{self._fused_only()}, not their {Fuse(fuse).value}",
                               f"capture it again with --fuse {Fuse(fuse).value} (or --heads all to keep every head)")

    def layer_number(self, layer: int) -> int:
        """The model's 0-based layer number (-1 = last), range-checked against the model, not the capture."""
        return resolve_index(layer, self.total_layers or self.n_layers, "layer")

    def layer_index(self, layer: int) -> int:
        """Where a model layer (-1 = last) is stored; a layer the capture lacks is refused with the fix."""
        number = self.layer_number(layer)
        if self.layer_ids is None:
            return number
        if number not in self.layer_ids:
            raise KeptError(f"this capture kept {_spans(self.layer_ids, 'layer')} of {self.model_id}, "
                               f"not layer {number}",
                               f"capture it again with --layers {number} (or --layers all)")
        return self.layer_ids.index(number)

    def head_index(self, head: int) -> int:
        """Where a model head (-1 = last) is stored; a head the capture lacks is refused with the fix."""
        number = resolve_index(head, self.total_heads or self.n_heads, "head")
        if self.fused_heads:
            raise KeptError(f"{self._fused_only()}, not head {number}",
                               f"capture it again with --head {number} (or --heads all)")
        if self.head_ids is None:
            return number
        if number not in self.head_ids:
            raise KeptError(f"this capture kept {_spans(self.head_ids, 'head')}, not head {number}",
                               f"capture it again with --heads {number} (or --heads all)")
        return self.head_ids.index(number)

    def row_index(self, token: int) -> int:
        """Where a token's query row is stored; a row the capture lacks is refused with the fix."""
        number = resolve_index(token, self.n_tokens, "token", "the text")
        if self.query_ids is None:
            return number
        if number not in self.query_ids:
            raise KeptError(f"this capture kept the query rows of token(s) {self.query_ids} only, not {number}",
                               "capture it again without --token (or with --layers all) to keep every row")
        return self.query_ids.index(number)

    def require(self, what: str, layers: bool = True, rows: bool = True, heads: bool = False) -> None:
        """Refuse a view that needs every layer (rows, heads) when the capture kept only some."""
        lacking = [(f"{_spans(self.layer_ids, 'layer')} of {self.total_layers}", "--layers all")
                   if layers and self.layer_ids is not None else None,
                   (f"the rows of {len(self.query_ids)} of {self.n_tokens} tokens", _EVERY_ROW)
                   if rows and self.query_ids is not None else None,
                   (f"{_spans(self.head_ids, 'head')} of {self.total_heads}", "--heads all")
                   if heads and self.head_ids is not None else None,
                   (f"the {self.fused_heads} of its heads", "--heads all")
                   if heads and self.fused_heads else None]
        lacking = [item for item in lacking if item is not None]
        if lacking:
            hints = list(dict.fromkeys(h for _, h in lacking))  # each fix once
            if _EVERY_ROW in hints and "--layers all" in hints:
                hints.remove("--layers all")  # the rows' fix says it
            raise KeptError(f"{what} needs the whole model's attention, but this capture kept only "
                               + " and ".join(w for w, _ in lacking),
                               "capture again with " + " and ".join(hints))

    def map(self, layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
        """(query, key) attention of one model layer: a single head, or the heads fused."""
        slot = self.layer_index(layer)
        if head is None:
            self.check_fuse(fuse)
        return layer_map(self.attentions, slot, None if head is None else self.head_index(head), fuse)

    def cross_map(self, layer: int = -1, head: int | None = None, fuse: Fuse | str = Fuse.mean) -> "np.ndarray":
        """(target, source) cross-attention of one decoder layer: a single head, or the heads fused."""
        if self.cross_attentions is None:
            raise NotSupportedError(f"this capture of {self.model_id} has no cross-attention",
                                    "capture one with attn align or attn caption")
        return layer_map(self.cross_attentions, layer, head, fuse)


_EVERY_ROW = "--layers all, without --token"


def _spans(numbers: list[int] | None, what: str) -> str:
    """'layer 3', 'layers 0-5', 'layers 1, 3, 7'."""
    if not numbers:
        return f"no {what}s"
    if len(numbers) == 1:
        return f"{what} {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{what}s {numbers[0]}-{numbers[-1]}"
    return f"{what}s " + ", ".join(str(n) for n in numbers)


@dataclass(frozen=True)
class Selection:
    """Which attention weights a view needs: model layers and heads (None: all), query rows (None: all).

    ``fuse`` (only when every head is selected): keep the heads fused that way, one map per layer, which is all
    a view of fused heads reads; the capture then says so (``Capture.fused_heads``) and refuses single heads.

    ``query`` is a token given as a word or an index, resolved to a row once the text is tokenized.
    """

    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    rows: tuple[int, ...] | None = None
    query: str | None = None
    fuse: Fuse | None = None
    budget: int | None = None  # bytes: a whole capture this small keeps everything (None: capture_budget())
    qk: bool = False  # also keep each kept layer's query and key vectors (Capture.extras), for the q/k view
    extras: tuple[str, ...] = ()  # other Capture.extras a method reads, by name (e.g. "value_gram" for value-norm)

    def whole_budget(self) -> int:
        """Float32 bytes under which a capture keeps every layer, head and row whatever the view reads."""
        return capture_budget() if self.budget is None else self.budget

    def layer_numbers(self, n_layers: int) -> list[int]:
        """The selected layers as sorted 0-based numbers of a model with n_layers."""
        wanted = range(n_layers) if self.layers is None else self.layers
        return sorted({resolve_index(int(layer), n_layers, "layer") for layer in wanted})

    def head_numbers(self, n_heads: int) -> list[int] | None:
        """The selected heads as sorted 0-based numbers (None: every head)."""
        if self.heads is None:
            return None
        return sorted({resolve_index(int(head), n_heads, "head") for head in self.heads})

    def widened(self, layers: tuple[int, ...] | None = None, heads: tuple[int, ...] | None = None,
                every: bool = False) -> "Selection":
        """This selection plus more layers and heads (``every``: also layers=None, i.e. all)."""
        merged_layers = None if every or self.layers is None else tuple(self.layers) + tuple(layers or ())
        return Selection(merged_layers, self.heads if heads is None else heads, self.rows, self.query, self.fuse,
                         self.budget, self.qk, self.extras)


ALL = Selection()
CAPTURE_BUDGET_MB = 64  # covers ViT-B/16 at 224 px (22 MB), DINOv2-S and sentence-length text


def capture_budget() -> int:
    """Bytes under which a capture keeps everything: $ATTN_CAPTURE_BUDGET_MB megabytes, else CAPTURE_BUDGET_MB."""
    import os

    env = os.environ.get("ATTN_CAPTURE_BUDGET_MB", "").strip()
    if not env:
        return CAPTURE_BUDGET_MB << 20
    try:
        megabytes = float(env)
        if not 0 <= megabytes < 2**40:  # negative, NaN or infinite
            raise ValueError(env)
    except ValueError:
        raise UsageError(f"ATTN_CAPTURE_BUDGET_MB={env} is not a number of megabytes (0 or more)",
                         "e.g. ATTN_CAPTURE_BUDGET_MB=256, or unset it for the default 64") from None
    return int(megabytes * (1 << 20))


def parse_numbers(text: str | None, what: str) -> tuple[int, ...] | None:
    """'3', '0-5', '1,3,-1', 'all' → numbers (None for 'all' or no text); a bad span is a usage error."""
    if text is None or text.strip().lower() == "all":
        return None
    numbers: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if re.fullmatch(r"\d+-\d+", part):
                lo, hi = (int(v) for v in part.split("-"))
                if hi < lo:
                    raise ValueError(part)
                numbers.extend(range(lo, hi + 1))
            else:
                numbers.append(int(part))
    except ValueError:
        raise UsageError(f"--{what}s {text}: not a list of {what} numbers",
                         f"e.g. --{what}s 3, --{what}s 0-5, --{what}s 1,3,-1 or --{what}s all") from None
    return tuple(numbers)


def word_groups(special: list[bool], words: list[int | None]) -> list[list[int]]:
    """Token positions grouped by word (the tokenizer's word ids); [] when they are not known."""
    groups: dict[int, list[int]] = {}
    for i, word in enumerate(words or []):
        if word is not None and not special[i]:
            groups.setdefault(word, []).append(i)
    return list(groups.values())


def word_text(tokens: list[str], pieces: list[int]) -> str:
    """A word from its pieces' labels: ␣ markers dropped, each multi-byte character once."""
    import re

    text = []
    for i in pieces:
        shared = re.fullmatch(r"(.+)\[(\d+)/\d+\]", tokens[i])
        if shared:
            if shared.group(2) == "1":
                text.append(shared.group(1))
        elif tokens[i] != "␣":
            text.append(tokens[i])
    return "".join(text)


def find_word(tokens: list[str], special: list[bool], words: list[int | None], query: str) -> list[int]:
    """The token positions a --token stands for: an index, a whole word (all its pieces), else one piece's label.

    Words are counted, not pieces: "to" matches the word "to", never the first piece of "tomorow".
    """
    try:
        return [resolve_index(int(query), len(tokens), "token", "the text")]
    except ValueError:
        pass
    wanted = query.strip().lower()
    hits = [g for g in word_groups(special, words) if word_text(tokens, g).lower() == wanted]
    if not hits:
        hits = [[i] for i, t in enumerate(tokens) if t.lower() == wanted]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        listing = " ".join(f"{i}:{t}" for i, t in enumerate(tokens))
        raise UsageError(f'--token "{query}" is not one of the tokens: {listing}', "give a token or its index")
    where = ", ".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in hits)
    raise UsageError(f'--token "{query}" occurs {len(hits)} times (at {where})', f"pick one with --token {hits[0][0]}")


def architecture(config: Any) -> dict[str, Any]:
    """Facts about a model worth showing next to its attention."""
    keys = {
        "model_type": "model_type",
        "num_hidden_layers": "layers",
        "num_attention_heads": "heads",
        "hidden_size": "hidden_size",
        "max_position_embeddings": "max_positions",
        "image_size": "image_size",
        "patch_size": "patch_size",
    }
    facts = {short: getattr(config, name) for name, short in keys.items() if getattr(config, name, None) is not None}
    facts["attn_implementation"] = getattr(config, "_attn_implementation", None)
    if getattr(config, "_attncli_sinks", False):
        facts["sinks"] = True  # the softmax includes learned sink logits: each row sums to less than 1
    if getattr(config, "_attncli_trained_on", None):
        facts["trained_on"] = config._attncli_trained_on  # an embedded model's narrow training set (TrainingSet)
    return facts
