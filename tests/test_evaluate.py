"""attn evaluate: the metrics worked by hand, and a tiny seeded run end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from attncli.evaluate import deletion_insertion, pointing_hit, ranking, topk_iou
from attncli.grid import PatchGrid

GRID = PatchGrid(rows=2, cols=2, patch_height=8, patch_width=8, image_height=16, image_width=16)


def test_pointing_game_by_hand():
    heat = np.array([[0.9, 0.1], [0.0, 0.0]])  # top patch (0, 0), centre at pixel (4, 4)
    mask = np.zeros((16, 16), dtype=bool)
    mask[3, 3] = True  # pixel centre (3.5, 3.5): 0.71 px from the top patch centre
    assert pointing_hit(heat, mask, GRID, tolerance=4)
    far = np.zeros((16, 16), dtype=bool)
    far[12, 12] = True  # centre (12.5, 12.5): 12.02 px away
    assert not pointing_hit(heat, far, GRID, tolerance=4)
    assert pointing_hit(heat, far, GRID, tolerance=12.1)


def test_pointing_game_scores_the_share_of_tied_top_patches():
    mask = np.zeros((16, 16), dtype=bool)
    mask[:8, :8] = True  # the object fills patch (0, 0)
    tied = np.array([[0.3, 0.3], [0.3, 0.1]])  # three patches tie at the top, one of them on the object
    assert pointing_hit(tied, mask, GRID, tolerance=1) == pytest.approx(1 / 3)


def test_ties_are_ordered_by_the_tie_break_keys_not_by_position():
    heat = np.array([[0.2, 0.5], [0.5, 0.1]])
    assert ranking(heat).tolist() == [1, 2, 0, 3]  # stable without keys
    assert ranking(heat, np.array([0.0, 0.9, 0.1, 0.0])).tolist() == [2, 1, 0, 3]


def test_topk_iou_by_hand():
    mask = np.zeros((16, 16), dtype=bool)
    mask[:8, :8] = True  # exactly patch (0, 0)
    heat = np.array([[0.9, 0.5], [0.1, 0.0]])
    assert topk_iou(heat, mask, GRID, 25) == 1.0  # 1 patch: the object itself
    assert topk_iou(heat, mask, GRID, 50) == 0.5  # 2 patches: 64 of 128 pixels
    assert topk_iou(heat[::-1], mask, GRID, 25) == 0.0


class TopLeftModel:
    """P(class 0) = mean pixel value of patch (0, 0): the only evidence is there."""

    def __call__(self, pixel_values):
        import torch

        p = pixel_values[:, :, :8, :8].mean(dim=(1, 2, 3)).clamp(1e-7, 1 - 1e-7)
        return SimpleNamespace(logits=torch.stack([p.log(), (1 - p).log()], dim=1))


def test_deletion_and_insertion_auc_by_hand():
    import torch

    pixels = torch.ones(3, 16, 16)
    model = TopLeftModel()
    # Evidence first: deletion probabilities 1,0,0,0,0 over x = 0,.25,.5,.75,1 → area .125; insertion 0,1,1,1,1 → .875
    first = deletion_insertion(model, pixels, np.array([0, 1, 2, 3]), GRID, 0, baseline="black")
    np.testing.assert_allclose(first, (0.125, 0.875), atol=1e-5)
    # Evidence last: deletion 1,1,1,1,0 → .875; insertion 0,0,0,0,1 → .125
    last = deletion_insertion(model, pixels, np.array([3, 2, 1, 0]), GRID, 0, baseline="black", batch_size=3)
    np.testing.assert_allclose(last, (0.875, 0.125), atol=1e-5)
    # Two patches per step: x = 0, .5, 1 → deletion 1,0,0 → .25
    np.testing.assert_allclose(deletion_insertion(model, pixels, np.array([0, 1, 2, 3]), GRID, 0, "black", step=2),
                               (0.25, 0.75), atol=1e-5)


@pytest.fixture(scope="module")
def shapes_like_vit(tmp_path_factory):
    """A tiny random ViT whose labels are the shapes classes (so the shapes set applies to it)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    from attncli.synthetic import CLASSES

    torch.manual_seed(0)
    labels = dict(enumerate(CLASSES))
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, num_labels=len(CLASSES), id2label=labels,
                       label2id={v: k for k, v in labels.items()})
    folder = tmp_path_factory.mktemp("shapes-vit")
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _without_timing(doc: dict) -> dict:
    return {**doc, "methods": [{k: v for k, v in m.items() if k != "map_seconds"} for m in doc["methods"]]}


@pytest.mark.slow  # runs evaluate twice: pytest -m slow
def test_cli_evaluate_shapes_is_repeatable_and_has_a_random_baseline(cli, shapes_like_vit):
    args = ("evaluate", "--model", str(shapes_like_vit), "--n", "6", "--seed", "3", "--json")
    code, out, err = cli(*args)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.evaluate/1" and doc["dataset"] == "shapes" and doc["n"] == 6
    assert [m["method"] for m in doc["methods"]] == ["attention", "rollout", "flow", "grad-rollout", "random"]
    for m in doc["methods"]:
        assert 0 <= m["pointing"] <= 1 and 0 <= m["iou"] <= 1
        assert 0 <= m["deletion_auc"] <= 1 and 0 <= m["insertion_auc"] <= 1
    assert doc["settings"]["tolerance_px"] == 4 and doc["settings"]["target"] == "true class"
    code, again, err = cli(*args)
    assert _without_timing(json.loads(again)) == _without_timing(doc)
    code, other, err = cli("evaluate", "--model", str(shapes_like_vit), "--n", "6", "--seed", "4", "--json", "--no-auc")
    other_doc = json.loads(other)
    assert [m["pointing"] for m in other_doc["methods"]] != [m["pointing"] for m in doc["methods"]] or \
        [m["iou"] for m in other_doc["methods"]] != [m["iou"] for m in doc["methods"]]
    assert other_doc["methods"][0]["deletion_auc"] is None


def test_cli_evaluate_folder_table(cli, shapes_like_vit, tmp_path):
    from PIL import Image

    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((32, 32, 3)) * 255).astype("uint8")).save(tmp_path / f"{i}.png")
    code, out, err = cli("evaluate", str(tmp_path), "--model", str(shapes_like_vit), "--methods", "rollout,attention",
                         "--step", "4")
    assert code == 0, err
    lines = out.splitlines()
    assert "2 images" in lines[0]
    header = lines[1].split()
    assert header[:4] == ["method", "deletion", "AUC", "↓"] and "pointing" not in out
    assert [line.split()[0] for line in lines[2:5]] == ["rollout", "attention", "random"]


@pytest.mark.parametrize("args, message", [
    (("--methods", "rollout,bogus"), "unknown method bogus"),
    (("--baseline", "grey"), "--baseline grey"),
    (("x.png", "--n", "3"), "--n applies to the shapes set only"),
])
def test_cli_evaluate_usage_errors(cli, args, message):
    code, out, err = cli("evaluate", *args)
    assert code == 2 and message in err and "Traceback" not in err
