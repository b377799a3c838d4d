"""value-norm-rollout: value-norm per layer, row-normalised, residual added as rollout does, layers multiplied."""

from __future__ import annotations

import numpy as np

from attncli.capture import Capture
from attncli.methods.dispatch import method_rows


def toy() -> tuple[np.ndarray, np.ndarray, dict]:
    """2 layers, 2 heads, 3 tokens; the transformed value vectors f (layers, key, heads, dim) themselves."""
    rng = np.random.default_rng(3)
    att = rng.random((2, 2, 3, 3)) ** 2
    att = (att / att.sum(-1, keepdims=True)).astype(np.float32)
    f = rng.normal(size=(2, 3, 2, 4))
    return att, f, {"value_gram": np.einsum("lkhd,lkgd->lkhg", f, f).astype(np.float32)}


def by_hand(att: np.ndarray, f: np.ndarray, upto: int) -> np.ndarray:
    """Written out with loops: N[i, j] = ‖Σ_h α^h_ij f_h(x_j)‖, rows to shares, (A + I)/2 renormalised, product."""
    n = att.shape[-1]
    result = np.eye(n)
    for layer in range(upto + 1):
        norms = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                moved = sum(att[layer, h, i, j] * f[layer, j, h] for h in range(att.shape[1]))
                norms[i, j] = np.sqrt((moved ** 2).sum())
        shares = norms / norms.sum(axis=1)[:, None]
        step = (shares + np.eye(n)) / 2
        step = step / step.sum(axis=1)[:, None]
        result = step @ result
    return result


def test_value_norm_rollout_is_the_hand_computation():
    att, f, extras = toy()
    for layer in (0, 1):
        got = method_rows(att, "value-norm-rollout", layer, extras=extras)
        np.testing.assert_allclose(got, by_hand(att, f, layer), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(method_rows(att, "value-norm-rollout", queries=[2], extras=extras),
                               by_hand(att, f, 1)[[2]], rtol=1e-5, atol=1e-6)


def test_value_norm_rollout_profile_and_page():
    from attncli.views.explain import token_profile
    from attncli.views.interactive import interactive_view

    att, f, extras = toy()
    cap = Capture(att, ["[CLS]", "a", "b"], [True, False, False], "toy", extras=extras)
    profile = token_profile(cap, 1, method="value-norm-rollout")
    np.testing.assert_allclose(profile.rows, [by_hand(att, f, layer)[1] for layer in (0, 1)], rtol=1e-5, atol=1e-6)
    assert profile.title.startswith('What "a" (token 1) attends to, layer by layer · value-norm rollout of layers 0 to')
    page = interactive_view(cap, methods=["value-norm-rollout"])
    assert page.methods == ["value-norm-rollout", "attention"] and page.method_info["value-norm-rollout"]["normalised"]
    np.testing.assert_allclose(page.arrays["value-norm-rollout"].unpack()[:, 0],
                               [by_hand(att, f, layer) for layer in (0, 1)], atol=2e-3)  # 8-bit codes on the page


def test_value_norm_rollout_from_the_cli(cli, tiny_bert):
    import json

    code, out, err = cli("heatmap", "--text", "the cat sat on the mat", "--model", str(tiny_bert), "--method",
                         "value-norm-rollout", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "value-norm-rollout" and doc["title"].startswith("Layer 1 · value-norm rollout of layers 0–1")
    np.testing.assert_allclose(np.sum(doc["weights"], axis=-1), 1.0, atol=1e-5)
