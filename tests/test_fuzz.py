"""Hypothesis fuzzing of text and every option of `attn explain` and `attn heatmap --text` on a tiny BERT.

Any answer is fine but a crash: exit 0 with rows that still sum to 1, or one `attn: error:` line (exit 1 or 2)
that is not the catch-all. Examples are bounded so the suite stays fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = 40
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

texts = st.one_of(st.text(min_size=0, max_size=40),
                  st.lists(st.sampled_from("the cat sat on mat because it was tired dog 🙂 é ##s , .".split(" ")),
                           min_size=1, max_size=12).map(" ".join))
numbers = st.one_of(st.integers(-4, 4).map(str), st.sampled_from(["nan", "inf", "-inf", "1e-320", "x", "0.5", ""]))
ratios = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["0", "0.9", "1"]))
choices = {
    "--layer": numbers, "--head": numbers, "--top-k": numbers, "--fuse": st.sampled_from(["mean", "max", "min", "x"]),
    "--method": st.sampled_from(["attention", "rollout", "flow", "grad-rollout", "x"]), "--discard-ratio": ratios,
    "--scale": st.sampled_from(["zero", "minmax", "percentile", "x"]), "--width": numbers,
    "--token": st.one_of(numbers, st.sampled_from(["the", "cat", "it", "🙂", "zebra", "[CLS]"])),
}
flags = st.lists(st.sampled_from(["--skip-special", "--matrix"]), unique=True)


def options(names: list[str]):
    """A dict of some of the named options with fuzzed values."""
    return st.fixed_dictionaries({}, optional={n: choices[n] for n in names})


def _check(code: int, out: str, err: str) -> None:
    """No crash: rows sum to 1 on success, else one plain error line that names the problem."""
    if code == 0:
        doc = json.loads(out)
        if doc.get("method") in ("attention", "rollout", "flow"):
            rows = [layer["weights"] for layer in doc["layers"]] if "layers" in doc else [doc["weights"]]
            for row in rows:
                sums = np.asarray(row, dtype=float).sum(axis=-1)
                assert np.allclose(sums[sums > 0], 1.0, atol=1e-3), sums
        return
    lines = err.splitlines()
    assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("attn: error:"), err
    assert "unexpected" not in lines[0], lines[0]


@FUZZ
@given(text=texts, opts=options(list(choices)), extra=flags)
def test_explain_survives_any_options(cli, tiny_bert, text, opts, extra):
    args = ["explain", "--model", str(tiny_bert), "--json", *extra]
    for name, value in opts.items():
        args.append(f"{name}={value}")
    _check(*cli(*args, "--", text))  # after --, a text that starts with "-" is still the text


@FUZZ
@given(text=texts, opts=options(["--layer", "--head", "--fuse", "--method", "--discard-ratio", "--scale"]),
       query=st.one_of(st.none(), choices["--token"]), skip=st.booleans())
def test_heatmap_text_survives_any_options(cli, tiny_bert, text, opts, query, skip):
    args = ["heatmap", f"--text={text}", "--model", str(tiny_bert), "--json"] + (["--skip-special"] if skip else [])
    if query is not None:
        args.append(f"--query={query}")
    for name, value in opts.items():
        args.append(f"{name}={value}")
    _check(*cli(*args))
