"""Patch sinks shown by `attn stats` and the heatmap: a planted sink in a hand-made image capture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attncli.capture import Capture
from attncli.choices import Format, Kind, Method
from attncli.grid import PatchGrid
from attncli.views.common import MapSpec

ROWS = COLS = 6
SINK = (2, 3)
SHARE = (0.8 + 1 / 37) / 2  # head 0 gives 0.8 to the sink, head 1 is uniform over 37 keys
NOTE = ("patch sink ◇ (share of all queries' attention, heads averaged [top head: its share]): "
        "layer 1: (2,3) 41.4% [head 0: 80.0%]")


def planted_capture() -> Capture:
    """[CLS] + 6×6 patches, 2 layers × 2 heads, uniform except layer 1 head 0, whose every query gives 0.8 to SINK."""
    grid = PatchGrid(ROWS, COLS, 8, 8, ROWS * 8, COLS * 8)
    keys = grid.n_tokens
    att = np.full((2, 2, keys, keys), 1.0 / keys, dtype=np.float32)
    sink = grid.token_of(*SINK)
    att[1, 0] = 0.2 / (keys - 1)
    att[1, 0, :, sink] = 0.8
    tokens = ["[CLS]"] + [f"({r},{c})" for r in range(ROWS) for c in range(COLS)]
    image = np.zeros((ROWS * 8, COLS * 8, 3), dtype=np.uint8)
    return Capture(att, tokens, [True] + [False] * grid.n_patches, "tiny/planted", kind=Kind.image, grid=grid,
                   image=image, source="/tmp/planted.png")


def test_stats_report_and_json_name_the_sink():
    from attncli.views.stats import capture_stats

    report = capture_stats(planted_capture())
    assert [(s.layer, s.row, s.col, s.token) for s in report.patch_sinks] == [(1, *SINK, 1 + 2 * COLS + 3)]
    assert report.patch_sinks[0].share == pytest.approx(SHARE, abs=1e-6)
    doc = report.to_dict()
    assert doc["patch_sinks"] == [{"layer": 1, "row": 2, "col": 3, "token": 16, "share": round(SHARE, 6), "head": 0,
                                   "head_share": 0.8}]
    assert doc["patch_sink_rule"]["ratio_to_uniform"] == 10
    assert report.notes[0].startswith(NOTE)
    assert report.select(layer=0).patch_sinks == [] and report.select(layer=0).notes[0].startswith("patch sinks: none")
    assert report.select(layer=-1).patch_sinks == report.patch_sinks


def test_text_stats_have_no_patch_sinks(tiny_bert):
    from attncli.sources import capture_text
    from attncli.views.stats import capture_stats

    report = capture_stats(capture_text("the cat sat", str(tiny_bert)))
    assert report.patch_sinks is None and report.notes == []
    assert report.to_dict()["patch_sinks"] is None


@pytest.mark.parametrize("method, layer, found", [(Method.attention, 1, True), (Method.attention, 0, False),
                                                  (Method.rollout, 1, True), (Method.rollout, 0, False)])
def test_patch_map_carries_the_sinks_of_the_layers_behind_it(method, layer, found):
    from attncli.views.maps import head_panels, patch_map

    amap = patch_map(planted_capture(), MapSpec(method=method, layer=layer))
    assert bool(amap.patch_sinks) is found
    assert bool(amap.notes) is found
    assert len(amap.to_dict()["patch_sinks"]) == int(found)
    if found:
        assert amap.notes[0] == NOTE
        assert amap.to_dict()["top"][0] == {"row": 2, "col": 3, "weight": pytest.approx(amap.values[2, 3], abs=1e-6),
                                            "sink": True}
        assert [t["sink"] for t in amap.to_dict()["top"][1:]] == [False] * 4
    if method is Method.attention:
        assert head_panels(planted_capture(), MapSpec(layer=layer)).notes == amap.notes
    else:  # rollout names what carries the sink up, and the option that removes it
        assert amap.notes[1:] == (["the rollout carries this sink up through later layers; --drop-sinks removes it"]
                                  if found else [])


def test_terminal_json_and_figures_show_the_sink(cli, tmp_path):
    from attncli.render import render
    from attncli.render.figures import heads_figure
    from attncli.store import save_capture
    from attncli.views.maps import head_panels

    saved = save_capture(planted_capture(), tmp_path / "planted.npz")
    code, out, err = cli("heatmap", str(saved), "--layer", "1", "--terminal")
    assert code == 0, err
    assert out.rstrip().splitlines()[-1] == NOTE
    assert out.splitlines()[4] == "2   2  2  2◇41  2  2"  # the grid's row 2 (weights in %), the sink marked
    code, out, _ = cli("heatmap", str(saved), "--layer", "0", "--terminal")
    assert "patch sink" not in out
    code, out, err = cli("heatmap", str(saved), "--layer", "1", "--json")
    assert json.loads(out)["patch_sinks"][0]["token"] == 16
    code, out, err = cli("stats", str(saved))
    assert code == 0 and "layer 1: (2,3) 41.4%" in out, err
    assert json.loads(cli("stats", str(saved), "--json")[1])["patch_sinks"][0]["layer"] == 1
    panels = head_panels(planted_capture(), MapSpec(layer=1))
    assert heads_figure(panels)._suptitle.get_text().splitlines()[-1].startswith("patch sink ◇ (share")
    png = render(panels, Format.figure, path=tmp_path / "heads.png")
    assert Path(png).stat().st_size > 1000
