"""--method dispatch and gradient recomputation for a capture."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.sources import capture_text
from attncli.errors import NotSupportedError, UsageError
from attncli.methods.dispatch import check_method_options, describe, method_rows
from attncli.methods.flow import attention_flow
from attncli.methods.heads import layer_map
from attncli.methods.rollout import rollout


def random_attention(seed: int = 0, shape=(3, 2, 6, 6)) -> np.ndarray:
    a = np.random.default_rng(seed).random(shape) ** 2
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


def test_method_rows_dispatch_to_each_method():
    att = random_attention()
    np.testing.assert_array_equal(method_rows(att, "attention", 1, head=0), layer_map(att, 1, 0))
    np.testing.assert_array_equal(method_rows(att, "attention", -1, fuse="max"), layer_map(att, -1, None, "max"))
    np.testing.assert_array_equal(method_rows(att, "rollout", 1, discard_ratio=0.5),
                                  rollout(att, 1, discard_ratio=0.5))
    np.testing.assert_allclose(method_rows(att, "flow", -1, queries=[0, 4]), attention_flow(att)[[0, 4]], atol=1e-6)
    np.testing.assert_array_equal(method_rows(att, "rollout", queries=[-1]), rollout(att)[[5]])
    with pytest.raises(UsageError, match="needs the attention gradients"):
        method_rows(att, "grad-rollout")


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="rollout", head=1), "--head picks one head"),
    (dict(method="flow", discard_ratio=0.5), "applies to --method rollout only"),
    (dict(method="rollout", discard_ratio=1.0), "must be at least 0 and below 1"),
    (dict(method="attention", target="cat"), "applies to --method grad-rollout only"),
])
def test_check_method_options_refuses_meaningless_combinations(kwargs, message):
    with pytest.raises(UsageError, match=message):
        check_method_options(**kwargs)


def test_describe():
    assert describe("attention", 5, None, "mean", 12) == "mean of 12 heads"  # the title names the layer
    assert describe("rollout", 5, None, "max", 12, 0.9) == "rollout of layers 0–5 (max, discard 0.9)"
    assert describe("grad-rollout", 0, None, "mean", 2, target="cat") == "gradient rollout of layer 0 for cat"


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    from tiny_classifier import make_bert_classifier

    return make_bert_classifier(tmp_path_factory.mktemp("bert-cls"))


def test_gradients_for_a_text_capture(tiny_classifier):
    from attncli.gradcapture import gradients_for
    from attncli.methods.gradients import gradient_rollout

    capture = capture_text("the cat sat on the mat", str(tiny_classifier))
    result = gradients_for(capture, "positive")
    assert (result.target, result.label) == (1, "positive")
    np.testing.assert_allclose(result.attentions, capture.attentions, atol=1e-5)
    rows = method_rows(capture.attentions, "grad-rollout", gradients=result.gradients, queries=[0])
    np.testing.assert_allclose(rows[0], gradient_rollout(result.attentions, result.gradients)[0])


def test_gradients_for_refuses_a_text_model_without_a_head(tiny_bert):
    from attncli.gradcapture import gradients_for

    with pytest.raises(NotSupportedError, match="no trained classification head"):
        gradients_for(capture_text("the cat sat", str(tiny_bert)))


def test_gradients_for_an_image_capture_and_a_lost_source(tmp_path):
    from PIL import Image

    from attncli.gradcapture import gradients_for
    from attncli.sources import capture_image
    from tiny_vision import make_vit

    vit = make_vit(tmp_path / "vit")
    image = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(image)
    capture = capture_image(image, str(vit))
    result = gradients_for(capture)  # default target: the prediction
    assert result.target == capture.predictions[0].index
    np.testing.assert_allclose(result.attentions, capture.attentions, atol=1e-5)
    image.unlink()
    with pytest.raises(UsageError, match="needs the image this capture came from"):
        gradients_for(capture)
