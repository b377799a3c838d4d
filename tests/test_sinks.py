"""Patch sinks on hand-made attention: one planted sink is found, uniform attention has none."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.errors import UsageError
from attncli.methods.sinks import patch_sinks, received_share

PREFIX, ROWS, COLS = 1, 6, 6  # [CLS] + 36 patches = 37 keys: 10x uniform is a share of 0.27


def uniform(layers: int = 2, heads: int = 2) -> np.ndarray:
    """(layers, heads, 37, 37) attention spread evenly over every key."""
    keys = PREFIX + ROWS * COLS
    return np.full((layers, heads, keys, keys), 1.0 / keys)


def planted(sink_token: int, weight: float) -> np.ndarray:
    """Uniform attention where, in layer 1, every query of head 0 gives `weight` to one key."""
    att = uniform()
    keys = att.shape[-1]
    att[1, 0] = (1.0 - weight) / (keys - 1)
    att[1, 0, :, sink_token] = weight
    return att


def test_uniform_attention_has_no_sinks():
    assert patch_sinks(uniform(), PREFIX, ROWS, COLS) == [[], []]


def test_one_planted_sink_is_found_with_its_position_and_share():
    token = PREFIX + 1 * COLS + 2  # row 1, col 2
    sinks = patch_sinks(planted(token, 0.8), PREFIX, ROWS, COLS)
    assert sinks[0] == []
    assert len(sinks[1]) == 1
    sink = sinks[1][0]
    assert (sink["row"], sink["col"], sink["token"]) == (1, 2, token)
    # head 0 gives 0.8, head 1 gives 1/37: the mean over heads
    assert sink["share"] == pytest.approx((0.8 + 1 / 37) / 2)
    assert abs(received_share(planted(token, 0.8))[1].sum() - 1) < 1e-12  # shares of all keys sum to 1


def test_attention_to_cls_is_not_a_patch_sink():
    assert patch_sinks(planted(0, 0.9), PREFIX, ROWS, COLS) == [[], []]


def test_a_weak_bump_is_not_a_sink():
    # 0.2 from one head of two: a share of ~0.11, under 10x uniform (0.27)
    assert patch_sinks(planted(PREFIX + 5, 0.2), PREFIX, ROWS, COLS) == [[], []]
    # with a looser ratio the same bump counts
    assert patch_sinks(planted(PREFIX + 5, 0.2), PREFIX, ROWS, COLS, ratio=1.5)[1][0]["token"] == PREFIX + 5


def test_one_query_and_fused_layouts():
    token = PREFIX + 35
    att = uniform(layers=1, heads=1)
    att[0, 0, 0] = 0.0
    att[0, 0, 0, token] = 1.0  # only [CLS] looks at the last patch
    fused = att[:, 0]  # (layers, query, key)
    assert patch_sinks(fused, PREFIX, ROWS, COLS) == [[]]  # averaged over 37 queries: ~0.05, under 10x
    only_cls = patch_sinks(fused, PREFIX, ROWS, COLS, query=0)
    assert only_cls == [[{"row": 5, "col": 5, "token": token, "share": 1.0}]]
    assert patch_sinks(fused[0], PREFIX, ROWS, COLS, query=0) == only_cls  # a single (query, key) map


def test_at_most_k_sinks_and_they_must_add_up():
    att = uniform(layers=1, heads=1)
    keys = att.shape[-1]
    att[0, 0] = 0.0
    att[0, 0, :, PREFIX:] = 1.0 / (keys - PREFIX)  # every patch gets 1/36 (about 1.03x uniform)
    assert patch_sinks(att, PREFIX, ROWS, COLS, ratio=1.0) == [[{"row": r, "col": c, "token": PREFIX + r * COLS + c,
                                                                  "share": pytest.approx(1 / 36), "head": 0,
                                                                  "head_share": pytest.approx(1 / 36)}
                                                                 for r, c in [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]]]
    assert patch_sinks(att, PREFIX, ROWS, COLS, ratio=1.0, max_sinks=1) == [[]]  # 1/36 < 10% in total


def test_shape_errors_name_the_grid():
    with pytest.raises(UsageError, match="37 keys but the grid has 1 prefix tokens \\+ 4×4"):
        patch_sinks(uniform(), PREFIX, 4, 4)
    with pytest.raises(UsageError, match="shape"):
        patch_sinks(np.ones(5), PREFIX, ROWS, COLS)
    with pytest.raises(UsageError, match="0..36"):
        patch_sinks(uniform(), PREFIX, ROWS, COLS, query=37)
