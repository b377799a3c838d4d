"""Attention maps from hand-made captures (numpy only) and their exact terminal rendering."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from attncli.capture import Capture
from attncli.errors import UsageError
from attncli.grid import PatchGrid

# [CLS] keeps 0.1 for itself; the 2×3 patches get the rest.
CLS_ROW = [0.1, 0.4, 0.2, 0.1, 0.05, 0.1, 0.05]


def image_capture(prefix_labels=("[CLS]",)) -> Capture:
    """2 layers × 2 heads over a 2×3 grid; layer 1 heads 0 and 1 give [CLS] known, different rows."""
    prefix = len(prefix_labels)
    grid = PatchGrid(2, 3, 4, 4, 8, 12, prefix, tuple(prefix_labels))
    t = grid.n_tokens
    att = np.full((2, 2, t, t), 1.0 / t, dtype=np.float32)  # (L, H, Q, K)
    row = np.array([0.0] * (prefix - 1) + CLS_ROW, dtype=np.float32)
    att[1, 0, 0] = row
    att[1, 1, 0] = np.roll(row, 1) if prefix == 1 else row  # head 1 sends [CLS]'s patch attention one step on
    att[1, 0, grid.token_of(1, 2)] = np.eye(t, dtype=np.float32)[grid.token_of(0, 1)]  # patch (1,2) → (0,1)
    tokens = list(prefix_labels) + [f"({r},{c})" for r in range(2) for c in range(3)]
    return Capture(att, tokens, [True] * prefix + [False] * 6, "tiny/vit", kind="image", grid=grid,
                   image=np.zeros((8, 12, 3), np.uint8), source="x.png")


def spec(**kw):
    from attncli.views.common import MapSpec

    return MapSpec(**kw)


def test_cls_map_is_the_patch_part_of_the_row_not_renormalised():
    from attncli.views.maps import PatchMap, patch_map

    amap = patch_map(image_capture(), spec(layer=-1, head=0))
    assert isinstance(amap, PatchMap) and amap.layer == 1 and amap.head == 0 and amap.query_label == "[CLS]"
    assert np.allclose(amap.values, [[0.4, 0.2, 0.1], [0.05, 0.1, 0.05]])
    assert amap.outside == pytest.approx(0.1)
    fused = patch_map(image_capture(), spec(layer=1, fuse="max"))
    assert fused.head is None and fused.values[0, 0] == pytest.approx(0.4)  # max over the two heads
    assert np.allclose(patch_map(image_capture(), spec(layer=0)).values, 1 / 7)


def test_prefix_tokens_shift_the_grid():
    from attncli.views.maps import patch_map

    cap = image_capture(("[CLS]", "[DIST]", "[REG0]"))
    amap = patch_map(cap, spec(layer=1, head=0))
    assert np.allclose(amap.values, [[0.4, 0.2, 0.1], [0.05, 0.1, 0.05]])
    assert amap.outside == pytest.approx(0.1)


def test_query_patch_and_head_maps():
    from attncli.views.maps import head_panels, parse_query, patch_map

    cap = image_capture()
    q = parse_query(cap, "1,2")
    assert q == 6 and parse_query(cap, "-1,-1") == 6 and parse_query(cap, "cls") == 0
    assert parse_query(cap, "(1,2)") == 6 and parse_query(cap, "5") == 6  # (row, col) or a row-major patch index
    amap = patch_map(cap, spec(layer=1, head=0, query="1,2"))
    assert amap.who == "patch (1,2)" and amap.cell == (1, 2)
    assert amap.values[0, 1] == 1.0 and amap.values.sum() == 1.0
    heads = head_panels(cap, spec(layer=1))
    assert heads.values.shape == (2, 2, 3)
    assert np.allclose(heads.values[1].reshape(-1), np.roll(CLS_ROW, 1)[1:])
    with pytest.raises(UsageError, match=r"row 2 is out of range: the patch grid has 2 rows \(0..1"):
        parse_query(cap, "2,0")
    with pytest.raises(UsageError, match="ROW,COL"):
        parse_query(cap, "middle")
    with pytest.raises(UsageError, match=r"patch 6 is out of range"):
        parse_query(cap, "6")
    with pytest.raises(UsageError, match=r"layer 5 is out of range"):
        patch_map(cap, spec(layer=5))


def test_text_matrix_and_row():
    from attncli.views.explain import TokenMatrix, layer_matrix
    from attncli.views.maps import head_panels, parse_query, token_row

    att = np.random.default_rng(0).dirichlet(np.ones(4), size=(1, 2, 4)).astype(np.float32)  # (1, 2, 4, 4)
    cap = Capture(att, ["[CLS]", "the", "cat", "[SEP]"], [True, False, False, True], "tiny/bert")
    full = layer_matrix(cap, spec(layer=0), view=TokenMatrix)
    assert np.allclose(full.matrix, att[0].mean(0))
    row = token_row(cap, spec(layer=0, head=1, query="cat"))
    assert row.query == 2 and np.allclose(row.values, att[0, 1, 2])
    with pytest.raises(UsageError, match="--token"):
        parse_query(cap, "dog")
    with pytest.raises(UsageError, match="needs an image capture"):
        head_panels(cap, spec(layer=0))


def test_top_patches():
    from attncli.views.maps import describe_top, patch_map

    amap = patch_map(image_capture(), spec(layer=1, head=0))
    assert amap.top(2) == [(0, 0, pytest.approx(0.4)), (0, 1, pytest.approx(0.2))]
    assert describe_top(amap, 2) == "(0,0) 0.400, (0,1) 0.200"


def test_colour_scales():
    from attncli.choices import Scale
    from attncli.methods.registry import Method
    from attncli.views.common import colour_range, default_scale
    from attncli.views.maps import patch_map

    values = np.array([[0.2, 0.3], [0.25, 0.9]])
    assert colour_range(values, Scale.zero) == (0.0, 0.9)
    assert colour_range(values, Scale.minmax) == (0.2, 0.9)
    lo, hi = colour_range(values, Scale.percentile)
    assert 0.2 < lo < 0.21 and 0.85 < hi < 0.9  # the 1st and 99th percentiles
    assert colour_range(np.full((2, 2), 0.5), Scale.minmax) == (0.5, 1.0)  # never an empty range
    assert default_scale(Method.attention) is Scale.zero and default_scale(Method.rollout) is Scale.minmax
    amap = patch_map(image_capture(), spec(layer=1, head=0, scale=Scale.minmax))
    assert (amap.vmin, amap.vmax) == (pytest.approx(0.05), pytest.approx(0.4))


def test_terminal_grid_exact_text():
    from attncli.render.vision import grid_view
    from attncli.views.maps import patch_map

    console = Console(record=True, width=60, color_system="truecolor")
    console.print(grid_view(patch_map(image_capture(), spec(layer=1, head=0)), width=60))
    assert console.export_text(styles=False) == (
        "Layer 1 · head 0 · [CLS] → patches · tiny/vit\n"
        "    0  1  2\n"
        "0  40 20 10\n"
        "1   5 10  5\n"
        "weights in percent; darker = more attention; colours \n"
        "0.000–0.400 (zero); 10% of it went to [CLS]\n"
        "top patches (row,col): (0,0) 0.400, (0,1) 0.200, (0,2) 0.100\n"
    )


def test_terminal_grid_colours_follow_the_weights():
    from attncli.render.vision import grid_text

    console = Console(record=True, width=40, color_system="truecolor", force_terminal=True)
    console.print(grid_text(np.array([[0.4, 0.0], [0.2, 0.1]], dtype=np.float32), width=40))
    ansi = console.export_text(styles=True)
    assert "\x1b[97;48;2;8;48;107m 40\x1b[0m" in ansi  # the maximum: darkest blue, bright white text
    assert "\x1b[30;48;2;255;255;255m  0\x1b[0m" in ansi  # zero: white, black text


def test_terminal_grid_small_weights_in_per_mille_and_wide_grids_as_blocks():
    from attncli.render.vision import grid_text

    small = np.full((2, 2), 0.025, dtype=np.float32)
    console = Console(record=True, width=40)
    console.print(grid_text(small, width=40))
    assert console.export_text() == "    0  1\n0  25 25\n1  25 25\n"
    wide = np.zeros((2, 30), dtype=np.float32)
    console = Console(record=True, width=70)
    console.print(grid_text(wide, width=70))
    lines = console.export_text().splitlines()
    assert lines[1] == "0 " + " " * 60  # 2-character blocks without numbers: 30 × 3 would not fit in 70


def test_colour_bar_ticks_and_colours():
    from attncli.render.raster import _tick_label, inferno, nice_ticks

    assert nice_ticks(0.4) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert nice_ticks(0.0059) == pytest.approx([0.0, 0.002, 0.004])
    assert nice_ticks(0.012) == pytest.approx([0.0, 0.0025, 0.005, 0.0075, 0.01])
    assert [_tick_label(v, 0.0025) for v in (0.0, 0.0025)] == ["0.0000", "0.0025"]
    colours = inferno(np.array([0.0, 0.5, 1.0]), 1.0)
    assert colours.dtype == np.uint8 and colours.shape == (3, 3)
    assert tuple(colours[0]) == (0, 0, 4) and tuple(colours[-1]) == (252, 255, 164)  # inferno's two ends
