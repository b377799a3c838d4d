"""Selective capture on heatmap, classify, stats, align, caption and patches: each keeps what its view reads.

Every kept weight equals the same slice of a full eager forward within 1e-5; the last capture says what it kept
(``layer_ids``, ``head_ids``, ``query_ids``); a re-render that needs more is refused in one line naming the option
that keeps it; ``--layers all`` keeps everything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from attncli.choices import Purpose  # noqa: E402
from attncli.store import load_capture  # noqa: E402
from tiny_vision import _common, _save, photo  # noqa: E402

TEXT = "the cat sat on the mat"
KINDS = ("vit", "deit", "registers", "beit")


pytestmark = pytest.mark.usefixtures("over_budget")  # tiny captures keep only what is read, as long ones do


def _peaked(folder: Path, kind: str) -> Path:
    """A 3-layer, 4-head classifier with large random weights, so that attention is far from uniform."""
    import transformers as t

    classes = {"vit": (t.ViTConfig, t.ViTForImageClassification, {}),
               "deit": (t.DeiTConfig, t.DeiTForImageClassificationWithTeacher, {}),
               "registers": (t.Dinov2WithRegistersConfig, t.Dinov2WithRegistersForImageClassification,
                             {"num_register_tokens": 2}),
               "beit": (t.BeitConfig, t.BeitForImageClassification, {"use_relative_position_bias": True})}
    config_cls, model_cls, extra = classes[kind]
    torch.manual_seed(0)
    config = config_cls(**_common(32, 8, 3, 4, 32), initializer_range=0.5, **extra)
    return _save(model_cls(config), folder, 32)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("selective-models")
    return {kind: _peaked(root / kind, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("selective-pics")
    return [photo(folder / f"{i}.png", size=(40 + 8 * i, 36)) for i in range(3)]


def eager_image(folder: Path, image: Path) -> np.ndarray:
    """(layers, heads, tokens, tokens) of one full eager forward, the image preprocessed as the commands do."""
    from attncli.families.vit import preprocess
    from attncli.images import load_image
    from attncli.models import load_model

    loaded = load_model(str(folder), Purpose.image)
    loaded.model.set_attn_implementation("eager")
    pre = preprocess([load_image(image)], loaded.processor, loaded.config)
    with torch.inference_mode():
        out = loaded.model(pixel_values=pre.pixel_values, output_attentions=True)
    return torch.stack(list(out.attentions), 1)[0].float().numpy()


def eager_text(folder: Path, text: str) -> np.ndarray:
    """(layers, heads, tokens, tokens) of one full eager forward over a text."""
    from attncli.inputs import prepare_text
    from attncli.models import load_model

    loaded = load_model(str(folder))
    loaded.model.set_attn_implementation("eager")
    prepared = prepare_text(text, loaded.processor, loaded.config)
    with torch.inference_mode():
        out = loaded.model(**prepared.model_inputs, output_attentions=True)
    return torch.stack(list(out.attentions), 1)[0].float().numpy()


def refused(result, *needles: str, code: int = 2) -> None:
    """One line on stderr, the exit code, every needle in it."""
    got, out, err = result
    assert got == code and out == "", err
    assert err.startswith("attn: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# --- heatmap IMAGE -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_heatmap_keeps_one_layer_every_row_equal_to_eager(cli, models, pictures, tmp_path, kind):
    saved = tmp_path / "one.npz"
    code, out, err = cli("heatmap", str(pictures[0]), "--model", str(models[kind]), "--json", "--save", str(saved))
    assert code == 0, err
    cap = load_capture(saved)
    tokens = cap.grid.n_tokens
    assert cap.arch["attn_implementation"] == "attncli_selective"  # ViT-likes load SDPA + the asked weights
    assert cap.attentions.shape == (1, 4, tokens, tokens)  # every row: the map checks its layer for patch sinks
    assert (cap.layer_ids, cap.head_ids, cap.query_ids, cap.total_layers) == ([2], None, None, 3)
    ref = eager_image(models[kind], pictures[0])  # (3, 4, T, T)
    np.testing.assert_allclose(cap.attentions[0], ref[2], atol=1e-5)
    prefix = cap.grid.prefix
    want = ref[2, :, 0].mean(axis=0)[prefix:].reshape(cap.grid.rows, cap.grid.cols)
    np.testing.assert_allclose(np.array(json.loads(out)["weights"]), want, atol=1e-5)
    assert json.loads(out)["patch_sinks"] is not None  # every query row kept: the layer was checked for sinks


def test_heatmap_query_heads_and_more_layers(cli, models, pictures, tmp_path):
    saved = tmp_path / "q.npz"
    code, out, err = cli("heatmap", str(pictures[1]), "--model", str(models["vit"]), "--layer", "0", "--query", "2,3",
                         "--heads", "3", "--head", "1", "--layers", "2", "--save", str(saved), "--json")
    assert code == 0, err
    cap = load_capture(saved)
    token = cap.grid.token_of(2, 3)
    assert (cap.layer_ids, cap.head_ids, cap.query_ids) == ([0, 2], [1, 3], None)  # an image keeps every row
    ref = eager_image(models["vit"], pictures[1])
    np.testing.assert_allclose(cap.attentions, ref[[0, 2]][:, [1, 3]], atol=1e-5)
    assert json.loads(out)["patch_sinks"] is None  # two of four heads cannot say what the heads' mean does
    doc = json.loads(out)
    assert (doc["layer"], doc["head"], doc["query"]["cell"]) == (0, 1, [2, 3])
    # what it kept re-renders: the other kept layer, the other kept head, the same query
    code, out, err = cli("heatmap", str(saved), "--layer", "2", "--head", "3", "--query", "2,3", "--json")
    assert code == 0, err
    again = np.array(json.loads(out)["weights"]).reshape(-1)
    np.testing.assert_allclose(again, ref[2, 3, token, 1:], atol=1e-5)


def test_rerendering_what_the_capture_lacks_says_how_to_capture_it(cli, models, pictures, tmp_path, isolated_cache):
    assert cli("heatmap", str(pictures[0]), "--model", str(models["vit"]), "--terminal")[0] == 0
    refused(cli("heatmap", "--layer", "0", "--terminal"), "kept layer 2 of", "not layer 0", "--layers 0")
    assert cli("heatmap", "--query", "1,1", "--terminal")[0] == 0  # an image capture keeps every row of its layer
    refused(cli("heatmap", "--method", "rollout", "--terminal"), "--method rollout needs the whole model",
            "layer 2 of 3", "--layers all")
    refused(cli("heatmap", "--method", "grad-rollout", "--terminal"), "--method grad-rollout", "--layers all")
    assert cli("stats", "--last")[0] == 0  # every row of the kept layer: stats reads that layer
    code, _, err = cli("heatmap", "-o", str(tmp_path / "page.html"))  # every row of one layer: a page of that layer
    assert code == 0 and "the page shows attention only" in err, err
    refused(cli("heatmap", "--layers", "0", "--terminal"), "saved capture", code=2)
    code, out, err = cli("heatmap", "--all-heads", "--terminal")  # every head of the kept layer and row
    assert code == 0 and "all 4 heads" in out, err


def test_layers_all_keeps_everything(cli, models, pictures, tmp_path):
    saved = tmp_path / "all.npz"
    code, _, err = cli("heatmap", str(pictures[0]), "--model", str(models["deit"]), "--layers", "all",
                       "--save", str(saved), "-o", str(tmp_path / "h.png"))
    assert code == 0, err
    cap = load_capture(saved)
    assert cap.complete and cap.attentions.shape == (3, 4, cap.grid.n_tokens, cap.grid.n_tokens)
    np.testing.assert_allclose(cap.attentions, eager_image(models["deit"], pictures[0]), atol=1e-5)
    for args in (("--layer", "0", "--query", "1,1"), ("--method", "rollout"), ("--all-heads", "--query", "dist")):
        code, _, err = cli("heatmap", *args, "--terminal")
        assert code == 0, (args, err)
    assert cli("stats", "--last")[0] == 0


def test_a_page_keeps_everything_and_grad_rollout_still_runs_eager(cli, models, pictures, tmp_path, isolated_cache):
    code, _, err = cli("heatmap", str(pictures[0]), "--model", str(models["vit"]), "-o", str(tmp_path / "p.html"))
    assert code == 0, err
    assert load_capture(isolated_cache / "last.npz").complete  # the page shows every layer, head and row
    code, out, err = cli("heatmap", str(pictures[0]), "--model", str(models["vit"]), "--method", "grad-rollout",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["method"] == "grad-rollout"


# --- classify, patches ---------------------------------------------------------------------------------------


def test_classify_batches_keep_the_last_layers_cls_row(cli, models, pictures, isolated_cache):
    from attncli.families.vit import capture_images
    from attncli.models import load_model
    from attncli.views.classify import needs

    loaded = load_model(str(models["registers"]), Purpose.image_classification)
    caps = list(capture_images(pictures, loaded, batch_size=2, selection=needs()))
    for picture, cap in zip(pictures, caps):
        tokens = cap.grid.n_tokens
        assert (cap.layer_ids, cap.query_ids, cap.attentions.shape[:3]) == ([2], None, (1, 4, tokens))
        np.testing.assert_allclose(cap.attentions[0], eager_image(models["registers"], picture)[2], atol=1e-5)
    folder = pictures[0].parent
    code, out, err = cli("classify", str(folder), "--model", str(models["vit"]), "--json", "--batch-size", "2")
    assert code == 0, err
    last = load_capture(isolated_cache / "last.npz")
    assert (last.layer_ids, last.query_ids) == ([2], None)
    code, whole, err = cli("classify", str(folder), "--model", str(models["vit"]), "--json", "--layers", "all")
    assert code == 0, err
    assert load_capture(isolated_cache / "last.npz").complete
    for a, b in zip(json.loads(out)["images"], json.loads(whole)["images"]):  # the summary read only what was kept
        assert [p["label"] for p in a["predictions"]] == [p["label"] for p in b["predictions"]]
        assert [(c["row"], c["col"]) for c in a["cls_top_patches"]] == [(c["row"], c["col"]) for c in b["cls_top_patches"]]
        np.testing.assert_allclose([c["weight"] for c in a["cls_top_patches"]],
                                   [c["weight"] for c in b["cls_top_patches"]], atol=1e-5)


def test_patches_keeps_what_a_plain_heatmap_rerenders(cli, models, pictures, tmp_path, isolated_cache):
    code, _, err = cli("patches", str(pictures[0]), "--model", str(models["vit"]), "-o", str(tmp_path / "p.png"))
    assert code == 0, err
    cap = load_capture(isolated_cache / "last.npz")
    assert (cap.layer_ids, cap.query_ids) == ([2], None)
    assert cli("heatmap", "--terminal")[0] == 0


# --- stats, heatmap --text ---------------------------------------------------------------------------------------


def test_stats_keeps_every_row_of_the_asked_layers_and_heads(cli, models, pictures, tiny_bert, tmp_path):
    code, out, err = cli("stats", TEXT, "--model", str(tiny_bert), "--json", "--save", str(tmp_path / "all.npz"))
    assert code == 0, err
    full = json.loads(out)["heads"]
    assert load_capture(tmp_path / "all.npz").complete
    np.testing.assert_allclose(load_capture(tmp_path / "all.npz").attentions, eager_text(tiny_bert, TEXT), atol=1e-5)
    code, out, err = cli("stats", TEXT, "--model", str(tiny_bert), "--layer", "1", "--json",
                         "--save", str(tmp_path / "one.npz"))
    assert code == 0, err
    one = load_capture(tmp_path / "one.npz")
    assert (one.layer_ids, one.query_ids) == ([1], None)
    assert json.loads(out)["heads"] == [h for h in full if h["layer"] == 1]
    code, out, err = cli("stats", "--last")  # all the capture kept, named by model layer, with what it lacks
    assert code == 0 and "kept layer 1 of 2" in out and "--layers all" in out, err
    refused(cli("stats", "--last", "--layer", "0"), "kept layer 1", "--layers 0")
    code, out, err = cli("stats", str(pictures[0]), "--model", str(models["vit"]), "--heads", "1,3", "--json",
                         "--save", str(tmp_path / "heads.npz"))
    assert code == 0, err
    kept = load_capture(tmp_path / "heads.npz")
    assert (kept.layer_ids, kept.head_ids, kept.query_ids) == (None, [1, 3], None)
    np.testing.assert_allclose(kept.attentions, eager_image(models["vit"], pictures[0])[:, [1, 3]], atol=1e-5)
    assert [(h["layer"], h["head"]) for h in json.loads(out)["heads"]] == [(0, 1), (0, 3), (1, 1), (1, 3), (2, 1),
                                                                          (2, 3)]


def test_heatmap_text_keeps_the_layer_and_the_query_row(cli, tiny_bert, tmp_path):
    saved = tmp_path / "t.npz"
    code, out, err = cli("heatmap", "--text", TEXT, "--model", str(tiny_bert), "--query", "cat", "--json",
                         "--save", str(saved))
    assert code == 0, err
    cap = load_capture(saved)
    assert (cap.layer_ids, cap.query_ids) == ([1], [2])
    ref = eager_text(tiny_bert, TEXT)
    np.testing.assert_allclose(cap.attentions[0, :, 0], ref[1, :, 2], atol=1e-5)
    np.testing.assert_allclose(json.loads(out)["weights"], ref[1, :, 2].mean(axis=0), atol=1e-5)
    refused(cli("heatmap", "--terminal"), "token matrix needs every query row", "--token")
    code, _, err = cli("heatmap", "--text", TEXT, "--model", str(tiny_bert), "--save", str(saved), "--terminal")
    assert code == 0, err
    cap = load_capture(saved)  # the matrix: every row of the layer
    assert (cap.layer_ids, cap.query_ids) == ([1], None)
    np.testing.assert_allclose(cap.attentions[0], ref[1], atol=1e-5)


# --- align, caption ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encdec(tmp_path_factory) -> dict[str, Path]:
    from tiny_seq2seq import make_marian, make_vit_gpt2

    root = tmp_path_factory.mktemp("selective-encdec")
    return {"marian": make_marian(root / "marian"), "ved": make_vit_gpt2(root / "ved")}


def test_align_and_caption_keep_the_asked_encoder_layers_and_all_cross_attention(cli, encdec, pictures, tmp_path):
    runs = {"align": ("align", TEXT, "--model", str(encdec["marian"]), "--max-new-tokens", "3"),
            "caption": ("caption", str(pictures[0]), "--model", str(encdec["ved"]), "--max-new-tokens", "3")}
    for name, args in runs.items():
        full, some = tmp_path / f"{name}-full.npz", tmp_path / f"{name}-some.npz"
        assert cli(*args, "--save", str(full), "--json")[0] == 0
        code, out, err = cli(*args, "--layers", "-1", "--heads", "0", "--save", str(some), "--json")
        assert code == 0, err
        whole, kept = load_capture(full), load_capture(some)
        assert whole.complete and (kept.layer_ids, kept.head_ids, kept.total_layers) == ([1], [0], 2)
        np.testing.assert_allclose(kept.attentions, whole.attentions[1:, :1], atol=1e-6)
        np.testing.assert_allclose(kept.cross_attentions, whole.cross_attentions, atol=1e-6)  # always whole
        code, _, err = cli("heatmap", str(some), "--layer", "0", "--head", "1", "--json")  # any decoder layer
        assert code == 0, (name, err)
        code, out, err = cli("stats", str(some))
        assert code == 0 and "kept layer 1 of 2" in out, (name, err)


def test_a_page_of_some_layers_names_them_and_shows_attention_only(cli, tiny_bert, isolated_cache):
    from attncli.views.interactive import interactive_view

    assert cli("explain", TEXT, "--model", str(tiny_bert), "--heads", "all")[0] == 0  # keeps layer 1 of 2, every head
    view = interactive_view(load_capture(isolated_cache / "last.npz"), methods=("attention", "rollout"))
    assert (view.layers, view.n_layers, view.methods, list(view.arrays)) == ([1], 2, ["attention"], ["attention"])
    assert view.arrays["attention"].layers == (1,) and any("--layers all" in w for w in view.warnings)
