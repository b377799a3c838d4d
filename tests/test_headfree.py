"""Image models without a classifier head (a bare Dinov2Model, the dinov2-small alias): what works, what refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_vision import make_backbone, photo

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NO_HEAD = "no trained classification head"


@pytest.fixture(scope="module", params=["dinov2", "vit"])
def backbone(request, tmp_path_factory) -> Path:
    """A tiny head-free Dinov2Model / ViTModel folder."""
    return make_backbone(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def pic(tmp_path_factory) -> Path:
    """A small photo-like picture."""
    return photo(tmp_path_factory.mktemp("pics") / "pic.png")


def test_a_backbone_draws_heatmap_patches_stats_and_the_page(cli, backbone, pic, tmp_path):
    code, out, err = cli("heatmap", str(pic), "--model", str(backbone), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["grid"]["rows"] == doc["grid"]["cols"] == 4 and len(doc["weights"]) == 4
    assert "predicted" not in doc["title"]
    code, _, err = cli("heatmap", "--terminal")  # the last capture re-renders without the model
    assert code == 0, err
    code, _, err = cli("patches", str(pic), "--model", str(backbone), "-o", str(tmp_path / "p.png"))
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 1000, err
    code, out, err = cli("stats", str(pic), "--model", str(backbone), "--json")
    assert code == 0, err
    assert len(json.loads(out)["heads"]) == 4 and json.loads(out)["distance_unit"] == "px"
    code, _, err = cli("heatmap", str(pic), "--model", str(backbone), "-o", str(tmp_path / "page.html"))
    assert code == 0, err
    assert "<html" in (tmp_path / "page.html").read_text()[:2000].lower()


@pytest.mark.parametrize("command", ["classify", "evaluate"])
def test_classify_and_evaluate_refuse_a_backbone(cli, backbone, pic, command):
    code, out, err = cli(command, str(pic), "--model", str(backbone))
    assert code != 0 and out == ""
    assert NO_HEAD in err and "attn heatmap IMAGE" in err
    assert "Prediction" not in err and "Traceback" not in err


def test_evaluate_on_the_shapes_set_refuses_a_backbone_too(cli, backbone):
    code, _, err = cli("evaluate", "--model", str(backbone), "--n", "2")
    assert code != 0 and NO_HEAD in err


def test_real_dinov2_everywhere_a_head_free_model_makes_sense(cli, real_dinov2, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # notes read whole (they wrap at the terminal's width)
    chelsea = str(SAMPLES / "chelsea.png")
    code, out, err = cli("heatmap", chelsea, "--model", "dinov2-small", "--json", "--layer", "6", "--layers", "all")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["layer"], doc["grid"]["rows"], doc["grid"]["cols"], doc["grid"]["patch_height"]) == (6, 16, 16, 14)
    code, out, err = cli("stats", "--last", "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert len(stats["heads"]) == 12 * 6
    # Layer 0 of the real backbone has one sink on chelsea.png: head 5 sends nearly all attention to (2,8).
    assert [(s["layer"], s["row"], s["col"]) for s in stats["patch_sinks"]] == [(0, 2, 8)]
    assert 0.15 < stats["patch_sinks"][0]["share"] < 0.2
    code, out, err = cli("heatmap", "--layer", "0", "--terminal")
    assert code == 0 and "layer 0: (2,8) 16.7% [head 5: 99.5%]" in out, err
    code, _, err = cli("heatmap", "-o", str(tmp_path / "chelsea.html"))
    assert code == 0 and (tmp_path / "chelsea.html").stat().st_size > 10_000, err
    for command in ("classify", "evaluate"):
        code, out, err = cli(command, chelsea, "--model", "dinov2-small")
        assert code != 0 and out == "" and NO_HEAD in err, (command, err)
