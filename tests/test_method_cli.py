"""--method in heatmap, classify and explain: the maps shown are the methods' maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attncli.methods.gradients import gradient_rollout
from attncli.methods.rollout import rollout, rollout_layers
from attncli.store import load_capture

TEXT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def vit_and_image(tmp_path_factory):
    from PIL import Image

    from tiny_vision import make_vit

    folder = tmp_path_factory.mktemp("vit-methods")
    image = folder / "noise.png"
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype("uint8")).save(image)
    return make_vit(folder / "vit"), image


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from tiny_classifier import make_bert_classifier

    return make_bert_classifier(tmp_path_factory.mktemp("cls"))


def test_heatmap_rollout_figure_and_title(cli, vit_and_image, tmp_path):
    vit, image = vit_and_image
    out_png = tmp_path / "r.png"
    code, out, err = cli("heatmap", str(image), "--model", str(vit), "--method", "rollout", "--discard-ratio", "0.5",
                         "-o", str(out_png))
    assert code == 0, err
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    code, out, err = cli("heatmap", "--method", "rollout", "--discard-ratio", "0.5", "--terminal")
    assert code == 0, err
    assert "rollout of layers 0–1 (mean, discard 0.5)" in out


def test_classify_summary_uses_the_method(cli, vit_and_image):
    vit, image = vit_and_image
    code, out, err = cli("classify", str(image), "--model", str(vit), "--method", "rollout", "--json")
    assert code == 0, err
    entry = json.loads(out)["images"][0]
    assert entry["cls_method"] == "rollout"
    cap = load_capture()
    cls = rollout(cap.attentions)[0, 1:].reshape(4, 4)
    best = np.unravel_index(np.argmax(cls), cls.shape)
    assert (entry["cls_top_patches"][0]["row"], entry["cls_top_patches"][0]["col"]) == tuple(int(i) for i in best)
    code, out, err = cli("classify", str(image), "--model", str(vit), "--method", "grad-rollout")
    assert code == 0, err
    assert "[CLS] (gradient rollout of layers 0–1) looks most at patches (row,col):" in out


def test_explain_token_rollout_rows_are_rollout_after_each_layer(cli, tiny_bert):
    code, out, err = cli("explain", TEXT, "--model", str(tiny_bert), "--token", "cat", "--method", "rollout", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "rollout"
    expected = rollout_layers(load_capture().attentions)[:, doc["token"]["index"]]
    np.testing.assert_allclose([layer["weights"] for layer in doc["layers"]], expected, atol=1e-6)


def test_explain_grad_rollout_on_a_text_classifier(cli, classifier):
    code, out, err = cli("explain", TEXT, "--model", str(classifier), "--method", "grad-rollout", "--target",
                         "negative", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "grad-rollout"
    from attncli.gradcapture import gradients_for

    cap = load_capture()
    grads = gradients_for(cap, "negative", str(classifier))
    np.testing.assert_allclose(doc["weights"], gradient_rollout(cap.attentions, grads.gradients), atol=1e-5)
    code, out, err = cli("explain", TEXT, "--model", str(classifier), "--method", "grad-rollout", "--matrix")
    assert code == 0, err
    assert "gradient rollout of layers 0–1 for" in out and "rows do not sum to 1" in out


@pytest.mark.parametrize("args, message", [
    (("explain", TEXT, "--method", "rollout", "--head", "0"), "--head picks one head"),
    (("explain", TEXT, "--method", "flow", "--discard-ratio", "0.3"), "applies to --method rollout only"),
    (("explain", TEXT, "--target", "positive"), "applies to --method grad-rollout only"),
    (("heatmap", "--method", "rollout", "--all-heads"), "--all-heads shows each head"),
    (("explain", TEXT, "--method", "grad-rollout"), "no trained classification head"),
])
def test_method_option_errors(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2 and message in err and "Traceback" not in err
