"""Patch sinks shown by `attn stats` and the heatmap: a planted sink in a hand-made image capture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attncli.capture import Capture
from attncli.choices import Format, Kind
from attncli.methods.registry import Method
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
    assert report.notes[0].startswith(NOTE.replace(" ◇", ""))  # stats draws no grid: nothing is marked
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
        rollout_note = "the rollout combines the layers with this sink in them; --drop-sinks removes it first"
        assert amap.notes[1:] == ([rollout_note] if found else [])


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


# --drop-sinks --------------------------------------------------------------------------------------------------

def test_rollout_drop_sinks_worked_by_hand_on_3x3():
    from attncli.methods.rollout import rollout

    # Tokens [CLS], p0, p1; one head. Layer 0 sends half of p0's row and half of p1's to p1 (the "sink", column 2).
    a0 = [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5]]
    a1 = [[1 / 3] * 3] * 3
    att = np.array([[a0], [a1]])  # (layers 2, heads 1, 3, 3)
    # Layer 0 without column 2, rows renormalised: [.5 .5 0], [0 1 0], [.5 .5 0]; (A + I)/2:
    #   R0 = [[3/4, 1/4, 0], [0, 1, 0], [1/4, 1/4, 1/2]]
    # Layer 1 (nothing dropped): R1 = (A1 + I)/2 = 2/3 on the diagonal, 1/6 elsewhere.
    # [CLS]'s row of R1·R0 = 2/3·[3/4, 1/4, 0] + 1/6·[0, 1, 0] + 1/6·[1/4, 1/4, 1/2] = [13/24, 9/24, 2/24]
    got = rollout(att, -1, drop=[[2], []])
    np.testing.assert_allclose(got[0], [13 / 24, 9 / 24, 2 / 24], atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-6)
    # Without dropping, R0 = [[3/4, 1/4, 0], [0, 3/4, 1/4], [1/8, 1/8, 3/4]] and [CLS]'s row is
    # 2/3·[3/4, 1/4, 0] + 1/6·[0, 3/4, 1/4] + 1/6·[1/8, 1/8, 3/4] = [softer on p0, more on p1]
    np.testing.assert_allclose(rollout(att, -1)[0], [25 / 48, 15 / 48, 8 / 48], atol=1e-7)


def test_drop_columns_keeps_row_sums_and_an_emptied_row_stays_empty():
    from attncli.methods.sinks import drop_columns

    m = np.array([[0.2, 0.8, 0.0], [0.0, 1.0, 0.0], [0.5, 0.25, 0.25]])
    out = drop_columns(m, [1])
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2 / 3, 0.0, 1 / 3]])
    np.testing.assert_allclose(drop_columns(m, []), m)


def test_flow_drop_sinks_is_flow_on_the_dropped_matrices():
    from attncli.methods.flow import attention_flow
    from attncli.methods.sinks import drop_columns

    att = planted_capture().attentions  # (2, 2, 37, 37), the sink in layer 1 at token 16
    dropped = att.copy()
    for h in range(att.shape[1]):  # heads fused by mean: dropping from each head, then averaging, is the same
        dropped[1, h] = drop_columns(att[1].mean(axis=0), [16])
    want = attention_flow(dropped, -1, queries=[0])
    got = attention_flow(att, -1, queries=[0], drop=[[], [16]])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, 16] < attention_flow(att, -1, queries=[0])[0, 16]


@pytest.mark.parametrize("method", ["rollout", "flow"])
def test_drop_sinks_on_a_saved_capture(cli, tmp_path, method):
    from attncli.store import save_capture

    saved = save_capture(planted_capture(), tmp_path / "planted.npz")
    _, plain, _ = cli("heatmap", str(saved), "--method", method, "--json")
    code, out, err = cli("heatmap", str(saved), "--method", method, "--drop-sinks", "--json")
    assert code == 0, err
    plain, doc = json.loads(plain), json.loads(out)
    assert plain["top"][0] == {"row": 2, "col": 3, "weight": plain["top"][0]["weight"], "sink": True}
    assert doc["drop_sinks"] is True and ", sinks dropped)" in doc["title"]
    assert doc["weights"][2][3] < plain["weights"][2][3]
    code, out, err = cli("heatmap", str(saved), "--method", method, "--drop-sinks", "--terminal")
    assert out.rstrip().splitlines()[-1] == ("--drop-sinks: each layer's sink columns were removed and its rows "
                                             "renormalised before the layers were combined")


@pytest.mark.parametrize("args, message", [
    (["--layer", "1"], "attn: error: --drop-sinks removes patch sinks before rollout or flow combines the layers; "
                       "--method attention does not combine them (its map marks the sinks either way) "
                       "(use --method rollout or flow, or drop --drop-sinks)"),
    (["--method", "grad-rollout"], "--method grad-rollout does not combine them"),
])
def test_drop_sinks_refused_where_it_means_nothing(cli, tmp_path, args, message):
    from attncli.store import save_capture

    saved = save_capture(planted_capture(), tmp_path / "planted.npz")
    code, out, err = cli("heatmap", str(saved), "--drop-sinks", *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err


def test_drop_sinks_refused_on_text(cli):
    code, _, err = cli("heatmap", "--text", "the cat", "--method", "rollout", "--drop-sinks")
    assert code == 2
    assert err.strip() == ("attn: error: --drop-sinks removes image patch sinks (attncli.methods.sinks); a text "
                           "capture has none (drop --drop-sinks)")


# A real (tiny) model with a planted sink, through the whole CLI ------------------------------------------------

@pytest.fixture(scope="module")
def sink_vit(tmp_path_factory) -> Path:
    from tiny_sink_vit import make_sink_vit

    return make_sink_vit(tmp_path_factory.mktemp("sink-vit"), crop=True)


@pytest.fixture(scope="module")
def wide_picture(tmp_path_factory) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("pictures") / "wide.png"
    Image.fromarray(rng.integers(0, 255, (48, 72, 3), dtype=np.uint8)).save(path)  # 72×48: a third is cropped
    return path


def test_tiny_vit_planted_sink_in_json_terminal_and_figures(cli, sink_vit, wide_picture, tmp_path):
    from PIL import Image

    from tiny_sink_vit import SINK

    code, out, err = cli("heatmap", str(wide_picture), "--model", str(sink_vit), "--layer", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["top"][0]["row"], doc["top"][0]["col"]) == SINK
    assert doc["top"][0]["sink"] is True and not any(t["sink"] for t in doc["top"][1:])
    [sink] = doc["patch_sinks"]
    assert (sink["layer"], sink["row"], sink["col"], sink["head"]) == (0, *SINK, 0)
    assert sink["head_share"] > 0.99 and 0.5 < sink["share"] < 0.52  # head 0 all of it, head 1 about 1/37
    assert doc["preprocessing"] == "72×48 → crop 48×48 → 48×48, 33% of the width cut"
    assert doc["framing"] == {"input": [72, 48], "resized": [72, 48], "crop": [12.0, 0.0, 60.0, 48.0],
                              "output": [48, 48]}
    code, out, err = cli("heatmap", "--layer", "0", "--terminal")  # the last capture: every row of layer 0 kept
    lines = out.splitlines()
    assert lines[1] == "wide.png: 72×48 → crop 48×48 → 48×48, 33% of the width cut"
    assert lines[3 + SINK[0]].startswith("2   1  1  1◇51")
    assert lines[-1].startswith("patch sink ◇ (share of all queries' attention, heads averaged [top head: its "
                                "share]): layer 0: (2,3) 51.3% [head 0: 100.0%]")
    png = tmp_path / "map.png"
    code, _, err = cli("heatmap", "--layer", "0", "-o", str(png))
    assert code == 0, err
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert int(((pixels == (0, 255, 0)).all(axis=-1)).sum()) > 100  # the green diamond (nothing else is pure green)
    svg = tmp_path / "map.svg"
    code, _, err = cli("heatmap", "--layer", "0", "-o", str(svg))
    text = svg.read_text()
    assert code == 0 and "#00ff00" in text and "33% of the width cut" in text, err
    code, out, err = cli("heatmap", str(wide_picture), "--model", str(sink_vit), "--layer", "1", "--json")
    assert code == 0, err  # layer 1 has no sink
    assert json.loads(out)["patch_sinks"] == [] and json.loads(out)["top"][0]["sink"] is False


def test_shapes_cross_arm_is_reported_as_measured_not_as_an_artefact(cli):
    root = Path(__file__).resolve().parents[1]
    code, out, err = cli("heatmap", str(root / "samples" / "shapes" / "003_cross.png"), "--model", "shapes",
                         "--method", "rollout", "--terminal")
    assert code == 0, err
    assert "artefact" not in out and "not evidence" not in out
    assert "layer 5: (3,4) 18.4% [head 1: 54.0%]" in out


def test_real_dinov2_chelsea_sink_marked_crop_said_and_dropped(cli, real_dinov2):
    chelsea = str(Path(__file__).resolve().parents[1] / "samples" / "chelsea.png")
    code, out, err = cli("heatmap", chelsea, "--model", "dinov2-small", "--layer", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)  # the default capture of one layer now checks it for sinks
    assert (doc["top"][0]["row"], doc["top"][0]["col"], doc["top"][0]["sink"]) == (2, 8, True)
    [sink] = doc["patch_sinks"]
    assert (sink["layer"], sink["row"], sink["col"], sink["head"]) == (0, 2, 8, 5)
    assert sink["share"] == pytest.approx(0.167, abs=5e-4) and sink["head_share"] == pytest.approx(0.995, abs=5e-4)
    assert doc["preprocessing"] == "451×300 → crop 301×300 → 224×224, 33% of the width cut"
    code, out, err = cli("heatmap", chelsea, "--model", "dinov2-small", "--method", "rollout", "--json")
    assert code == 0, err
    top = json.loads(out)["top"][0]
    assert (top["row"], top["col"], top["sink"]) == (2, 8, True) and top["weight"] == pytest.approx(0.085, abs=5e-4)
    code, out, err = cli("heatmap", "--method", "rollout", "--drop-sinks", "--json")  # the same capture, re-rendered
    assert code == 0, err
    top = json.loads(out)["top"][0]
    assert (top["row"], top["col"], top["sink"]) == (9, 10, False) and top["weight"] == pytest.approx(0.016, abs=5e-4)


def test_classify_marks_the_sink_and_takes_drop_sinks(cli, sink_vit, wide_picture):
    code, out, err = cli("classify", str(wide_picture), "--model", str(sink_vit), "--method", "rollout")
    assert code == 0, err
    lines = out.splitlines()
    assert "looks most at patches (row,col): (2,3)◇ " in out
    assert lines[-2].startswith("patch sink ◇ (share of all queries' attention") and "(2,3) 51.3%" in lines[-2]
    code, out, err = cli("classify", str(wide_picture), "--model", str(sink_vit), "--method", "rollout",
                         "--drop-sinks", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["cls_map"] == "rollout of layers 0–1 (mean, sinks dropped)"
    assert (doc["images"][0]["cls_top_patches"][0]["row"], doc["images"][0]["cls_top_patches"][0]["col"]) != (2, 3)


def test_a_map_that_cannot_check_for_sinks_says_so():
    from attncli.views.maps import patch_map
    from attncli.views.sinks import UNKNOWN

    cap = planted_capture()
    cap.attentions, cap.head_ids, cap.total_heads = cap.attentions[:, :1], [0], 2  # head 0 only: no mean of heads
    amap = patch_map(cap, MapSpec(layer=1, head=0))
    assert amap.patch_sinks is None and amap.notes == [UNKNOWN]
    doc = amap.to_dict()
    assert doc["patch_sinks"] is None and doc["top"][0]["sink"] is None
