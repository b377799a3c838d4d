"""Running sums over a corpus: what stays in memory however many inputs stream past, and merges by adding.

Per statistic ``s``, layer and head, with ``v_i`` an input's value and ``c_i`` the queries it averaged over:

- input-weighted: ``n`` (inputs where the value is defined), ``Σv``, ``Σv²``;
- token-weighted: ``Σc``, ``Σc·v``, ``Σc²``, ``Σ(c·v)²``, ``Σc·(c·v)`` (a ratio estimator's variance).

Plus role counts per head, sink counts (text: the kind of a head's top receiver; images: each patch per layer)
and, for images, the sum of the [CLS] query's weights on each patch. Every array is float64 (counts too), so a
state is one dict of arrays: saved in a checkpoint, sent from a worker, summed in any order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.corpus.records import ROLES, SINK_KINDS, Record

if TYPE_CHECKING:
    import numpy as np

SCALARS = ("inputs", "tokens", "truncated", "skipped")


class Running:
    """The running sums of a corpus run (empty until the first record fixes the shapes)."""

    def __init__(self, arrays: "dict[str, np.ndarray] | None" = None) -> None:
        self.a: dict[str, "np.ndarray"] = dict(arrays or {})

    @property
    def empty(self) -> bool:
        """No input seen yet."""
        return "n" not in self.a

    def count(self, name: str) -> int:
        """inputs, tokens, truncated or skipped, so far."""
        return int(self.a[name]) if name in self.a else 0

    def skip(self, n: int = 1) -> None:
        """Count inputs left out (longer than --max-tokens)."""
        import numpy as np

        self.a["skipped"] = self.a.get("skipped", np.float64(0)) + n

    def _init(self, rec: Record) -> None:
        import numpy as np

        shape = rec.values.shape  # (S, L, H)
        for name in ("n", "s1", "s2", "tc", "tw", "tcc", "tww", "tcw"):
            self.a[name] = np.zeros(shape)
        self.a["roles"] = np.zeros((len(ROLES),) + shape[1:])
        for name in SCALARS:
            self.a.setdefault(name, np.float64(0))
        if rec.sink_kind is not None:
            self.a["sink_kind"] = np.zeros((len(SINK_KINDS),) + shape[1:])
        if rec.patch_sinks is not None:
            self.a["patch_sinks"] = np.zeros(rec.patch_sinks.shape)
            self.a["sink_any"] = np.zeros(rec.patch_sinks.shape[:1])
        if rec.cls_map is not None:
            self.a["cls_map"] = np.zeros(rec.cls_map.shape)
        if rec.grid is not None:
            self.a["_grid"] = np.array(rec.grid, dtype=np.float64)  # a constant: "_" names are not summed

    def add(self, rec: Record) -> None:
        """Fold one input in."""
        import numpy as np

        if self.empty:
            self._init(rec)
        a = self.a
        if rec.values.shape != a["n"].shape:
            from attncli.errors import UsageError

            raise UsageError(f"input {rec.index} has {rec.values.shape[1:]} layers × heads, the corpus so far "
                             f"{a['n'].shape[1:]}", "one model per run")
        defined = np.isfinite(rec.values)
        v = np.where(defined, rec.values, 0.0)
        c = np.where(defined, rec.counts, 0.0)
        a["n"] += defined
        a["s1"] += v
        a["s2"] += v * v
        w = c * v
        a["tc"] += c
        a["tw"] += w
        a["tcc"] += c * c
        a["tww"] += w * w
        a["tcw"] += c * w
        layers, heads = np.indices(rec.roles.shape)
        a["roles"][rec.roles, layers, heads] += 1
        if rec.sink_kind is not None and "sink_kind" in a:
            has = rec.sink_kind >= 0
            a["sink_kind"][rec.sink_kind[has], layers[has], heads[has]] += 1
        if rec.patch_sinks is not None:
            if a["patch_sinks"].shape != rec.patch_sinks.shape:
                from attncli.errors import UsageError

                raise UsageError(f"input {rec.index} has a different patch grid from the inputs before it",
                                 "a corpus of images must all reach the model at one size")
            a["patch_sinks"] += rec.patch_sinks
            a["sink_any"] += rec.patch_sinks.any(axis=-1)
        if rec.cls_map is not None:
            a["cls_map"] += rec.cls_map
        a["inputs"] += 1
        a["tokens"] += rec.n_tokens
        a["truncated"] += rec.truncated

    def merge(self, other: "Running") -> "Running":
        """Add another run's sums into this one (in place) and return it."""
        for name, value in other.a.items():
            if name.startswith("_"):
                self.a.setdefault(name, value.copy())
                continue
            self.a[name] = self.a[name] + value if name in self.a else value.copy()
        return self

    def state(self) -> "dict[str, np.ndarray]":
        """Every array by name (what a checkpoint stores)."""
        return dict(self.a)


def input_mean(a: "dict[str, np.ndarray]") -> "tuple[np.ndarray, np.ndarray]":
    """(mean, 95% half-width) over inputs, per (stat, layer, head): normal interval, NaN below 2 inputs."""
    import numpy as np

    n = a["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, a["s1"] / n, np.nan)
        var = np.where(n > 1, (a["s2"] - n * mean * mean) / (n - 1), np.nan)
        half = 1.96 * np.sqrt(np.maximum(var, 0.0) / n)
    return mean, np.where(n > 1, half, np.nan)


def token_mean(a: "dict[str, np.ndarray]") -> "tuple[np.ndarray, np.ndarray]":
    """(mean over every query of every input, 95% half-width from the ratio estimator over inputs)."""
    import numpy as np

    n, c = a["n"], a["tc"]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(c > 0, a["tw"] / c, np.nan)
        resid = a["tww"] - 2 * r * a["tcw"] + r * r * a["tcc"]  # Σ (c·v − r·c)²
        cbar = c / n
        var = resid / (n * (n - 1) * cbar * cbar)
        half = 1.96 * np.sqrt(np.maximum(var, 0.0))
    return r, np.where((n > 1) & (c > 0), half, np.nan)
