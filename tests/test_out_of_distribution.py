"""The shapes model says when an image is unlike its synthetic training set, and still shows the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attncli.synthetic import PHOTO_AGREEMENT, channel_agreement, make_dataset, unlike_training

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHELSEA = SAMPLES / "chelsea.png"
STAR = SAMPLES / "shapes" / "000_star.png"


@pytest.fixture(autouse=True)
def _wide_terminal(cli, monkeypatch):
    """Notes wrap at the terminal's width (tests/test_widths.py checks that); here they are read whole, one line."""
    monkeypatch.setenv("COLUMNS", "250")



def test_fresh_synthetic_images_are_in_distribution():
    images = [np.asarray(s.image) for s in make_dataset(300, seed=11)]
    agreement = np.array([channel_agreement(a) for a in images])
    assert agreement.max() < PHOTO_AGREEMENT and np.median(agreement) < 0.5
    assert all(unlike_training(a, (64, 64)) is None for a in images)


def test_size_and_photographs_are_out_of_distribution(tmp_path):
    assert unlike_training(np.zeros((64, 64, 3), np.uint8), (451, 300)) == "this image is 451×300 px, not 64×64"
    small_cat = np.asarray(Image.open(CHELSEA).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC))
    assert channel_agreement(small_cat) >= PHOTO_AGREEMENT
    assert unlike_training(small_cat, (64, 64)).startswith("this image looks photographic")
    grey = np.repeat(np.asarray(Image.open(CHELSEA).convert("L").resize((64, 64)))[..., None], 3, axis=-1)
    assert channel_agreement(grey) == pytest.approx(1.0) and channel_agreement(np.full((64, 64, 3), 7, np.uint8)) == 1.0


def test_classify_a_photo_warns_and_still_predicts(cli):
    code, out, err = cli("classify", str(CHELSEA), "--model", "shapes")
    assert code == 0, err
    warning = ("warning: attncli/shapes-vit only knows synthetic shapes on clutter (64×64 px): this image is "
               "451×300 px, not 64×64, so its prediction says little about it")
    assert warning in err.splitlines()
    assert "Prediction: " in out and warning.removeprefix("warning: ") in out
    doc = json.loads(cli("classify", str(CHELSEA), "--model", "shapes", "--json")[1])
    assert doc["images"][0]["predictions"] and doc["images"][0]["out_of_distribution"].endswith("says little about it")
    assert doc["notes"] == [doc["images"][0]["out_of_distribution"]]


def test_a_shapes_sample_gets_no_note(cli):
    code, out, err = cli("classify", str(STAR), "--model", "shapes", "--json")
    assert code == 0 and "warning" not in err
    doc = json.loads(out)
    assert doc["images"][0]["out_of_distribution"] is None and doc["notes"] == []


def test_a_mixed_batch_counts_the_odd_ones(cli):
    code, out, err = cli("classify", str(CHELSEA), str(STAR), "--model", "shapes")
    assert code == 0, err
    assert "1 of 2 images are unlike the synthetic shapes" in err and "1 of 2 images" in out


@pytest.mark.parametrize("model, expected", [("shapes", True), ("vit", False)])
def test_heatmap_note_only_for_the_shapes_model(cli, model, expected, tmp_path):
    ref = model
    if model == "vit":
        from tiny_vision import make_vit

        ref = str(make_vit(tmp_path / "vit"))
    code, out, err = cli("heatmap", str(CHELSEA), "--model", ref, "--json")
    assert code == 0, err
    assert (json.loads(out)["out_of_distribution"] is not None) is expected
    assert ("only knows synthetic shapes" in err) is expected
    code, out, err = cli("heatmap", "--terminal")  # the saved capture re-renders with the same note
    assert ("only knows synthetic shapes" in out) is expected
