"""`attn stats --corpus` as a view: every head's statistics over a corpus, with counts and 95% intervals.

Two means of each statistic are kept, and both are stated:

- **input-weighted**: the mean over inputs of the input's value — the mean of ``attn stats INPUT --json`` over
  the same inputs; interval: mean ± 1.96·sd/√n over inputs (normal approximation);
- **token-weighted**: every query of every input counts once (long inputs weigh more); interval from the
  ratio estimator's variance over inputs (the inputs are the sampled units, not the tokens).

A head's corpus **role** is the per-input role rule applied to its input-weighted means; ``role_share`` is the
fraction of inputs where the per-input role is that role.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.corpus.aggregate import input_mean, token_mean
from attncli.corpus.records import ROLES, SINK_KINDS, SINK_SHARE, STATS
from attncli.methods.stats import role_of

if TYPE_CHECKING:
    from attncli.corpus.engine import CorpusRun

SCHEMA = "attncli.corpus-stats/1"
TABLE_STATS = ("cls", "sep", "punct", "prev", "self", "distance")  # the terminal's columns
DEFINITIONS = {
    "entropy": "mean over queries of the row's entropy, nats",
    "entropy_norm": "entropy over log(visible keys): 0 one key, 1 uniform",
    "distance": "mean attention distance over non-sink queries and keys (tokens, or pixels for images)",
    "distance_rel": "distance over that of uniform attention",
    "sink": "weight on the sink tokens (special tokens; an image's prefix tokens)",
    "self": "weight on itself",
    "prev": "weight on the previous token",
    "next": "weight on the next token",
    "cls": "weight on the first token when special ([CLS]/BOS; the first token of causal text)",
    "sep": "weight on the other special tokens ([SEP]/EOS); undefined for images",
    "punct": "weight on punctuation tokens; undefined for images",
}


def _num(x: float) -> float | None:
    """JSON-safe float, 6 decimals; NaN → None."""
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


@dataclass
class CorpusReport:
    """Per-head corpus statistics. Arrays are (stats, layers, heads) in the order of ``STATS``."""

    run: "CorpusRun"
    mean_in: Any = None
    ci_in: Any = None
    mean_tok: Any = None
    ci_tok: Any = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        a = self.run.running.a
        self.mean_in, self.ci_in = input_mean(a)
        self.mean_tok, self.ci_tok = token_mean(a)

    @property
    def inputs(self) -> int:
        return self.run.running.count("inputs")

    @property
    def title(self) -> str:
        """'Head statistics over corpus.txt · minilm · 1,000 inputs · 14,230 tokens'."""
        return (f"Head statistics over {self.run.corpus} · {self.run.model_id} · {self.inputs:,} inputs · "
                f"{self.run.running.count('tokens'):,} tokens")

    def value(self, stat: str, weighting: str = "input") -> Any:
        """(layers, heads) means of a statistic."""
        i = STATS.index(stat)
        return (self.mean_in if weighting == "input" else self.mean_tok)[i]

    def interval(self, stat: str, weighting: str = "input") -> Any:
        """(layers, heads) 95% half-widths of a statistic."""
        i = STATS.index(stat)
        return (self.ci_in if weighting == "input" else self.ci_tok)[i]

    def role(self, layer: int, head: int) -> tuple[str, float]:
        """(corpus role, fraction of inputs whose own role is that one)."""
        m = {s: float(self.value(s)[layer, head]) for s in ("sink", "self", "prev", "next", "distance_rel")}
        role = role_of(m["sink"], m["self"], m["prev"], m["next"], m["distance_rel"])
        counts = self.run.running.a["roles"][:, layer, head]
        return role, float(counts[ROLES.index(role)] / max(self.inputs, 1))

    def sink_frequency(self) -> Any:
        """Text: (layers, heads) fraction of inputs where the head has a sink token; None for images."""
        kinds = self.run.running.a.get("sink_kind")
        return None if kinds is None else kinds.sum(axis=0) / max(self.inputs, 1)

    def cls_map(self) -> Any:
        """Images: (layers, rows, cols) mean [CLS] attention to each patch, heads averaged; None for text."""
        a = self.run.running.a
        if "cls_map" not in a or self.run.grid is None:
            return None
        rows, cols = self.run.grid
        return (a["cls_map"].mean(axis=1) / max(self.inputs, 1)).reshape(-1, rows, cols)

    def patch_sink_frequency(self) -> Any:
        """Images: (layers, rows, cols) fraction of inputs where each patch is a sink; None for text."""
        a = self.run.running.a
        if "patch_sinks" not in a or self.run.grid is None:
            return None
        rows, cols = self.run.grid
        return (a["patch_sinks"] / max(self.inputs, 1)).reshape(-1, rows, cols)

    def heads(self) -> list[dict]:
        """One entry per (layer, head): role, sink frequency, and each statistic's two means."""
        a = self.run.running.a
        n_layers, n_heads = a["n"].shape[1:]
        freq = self.sink_frequency()
        out = []
        for layer in range(n_layers):
            for head in range(n_heads):
                role, share = self.role(layer, head)
                entry: dict[str, Any] = {"layer": layer, "head": head, "role": role, "role_share": _num(share),
                                         "roles": {r: int(a["roles"][k, layer, head]) for k, r in enumerate(ROLES)}}
                if freq is not None:
                    entry["sink_frequency"] = _num(freq[layer, head])
                    entry["sink_kinds"] = {k: int(a["sink_kind"][j, layer, head]) for j, k in enumerate(SINK_KINDS)}
                entry["stats"] = {
                    s: {"input": {"mean": _num(self.mean_in[i, layer, head]), "ci95": _num(self.ci_in[i, layer, head]),
                                  "n": int(a["n"][i, layer, head])},
                        "token": {"mean": _num(self.mean_tok[i, layer, head]),
                                  "ci95": _num(self.ci_tok[i, layer, head]), "queries": int(a["tc"][i, layer, head])}}
                    for i, s in enumerate(STATS)}
                out.append(entry)
        return out

    def to_dict(self) -> dict:
        """The JSON document of `attn stats --corpus --json` (schema attncli.corpus-stats/1)."""
        run = self.run
        doc: dict[str, Any] = {
            "schema": SCHEMA, "title": self.title, "model": run.model_id, "corpus": run.corpus,
            "kind": run.modality, "inputs": self.inputs, "tokens": run.running.count("tokens"),
            "skipped": run.running.count("skipped"), "truncated": run.running.count("truncated"),
            "weighting": {"input": "mean over inputs of each input's value (= mean of attn stats INPUT --json)",
                          "token": "every query of every input counts once"},
            "interval": "95%: mean ± 1.96·sd/√n over inputs; token-weighted: ratio estimator over inputs",
            "definitions": DEFINITIONS,
            "sink_rule": (f"text: a head has a sink in an input when one token receives at least {SINK_SHARE:g} "
                          "of its attention (mean over queries); kinds: first token, other special, punctuation, "
                          "other" if run.modality == "text" else "images: the patch-sink rule of attn stats, per "
                          "layer, heads fused"),
            "heads": self.heads(),
        }
        if run.modality == "image":
            doc["grid"] = list(run.grid) if run.grid else None
            cls, sinks = self.cls_map(), self.patch_sink_frequency()
            doc["cls_map"] = None if cls is None else [[[_num(v) for v in r] for r in m] for m in cls]
            doc["patch_sink_frequency"] = None if sinks is None else [[[_num(v) for v in r] for r in m] for m in sinks]
            any_sink = run.running.a.get("sink_any")
            doc["layer_sink_frequency"] = None if any_sink is None else [_num(v / max(self.inputs, 1)) for v in any_sink]
        doc["notes"] = self.all_notes()
        return doc

    def all_notes(self) -> list[str]:
        """Lines under the table: what was left out, resumed, or differs from a single capture."""
        run, notes = self.run, list(self.notes) + list(self.run.notes)
        skipped, truncated = run.running.count("skipped"), run.running.count("truncated")
        if skipped:
            notes.append(f"{skipped:,} inputs longer than --max-tokens were left out")
        if truncated:
            notes.append(f"{truncated:,} inputs were cut at the model's token limit (as attn stats INPUT does)")
        if run.resumed_from:
            notes.append(f"resumed from a checkpoint after {run.resumed_from:,} inputs")
        return notes
