"""Tests for the synthetic shapes generator (attncli.synthetic)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attncli.synthetic import CLASSES, DEFAULT_SIZE, ShapeSample, make_dataset, make_sample, save_samples

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def dataset() -> list[ShapeSample]:
    return make_dataset(60, seed=7)


def test_same_seed_same_dataset():
    a = make_dataset(12, seed=3)
    b = make_dataset(12, seed=3)
    for sa, sb in zip(a, b):
        assert sa.label == sb.label
        assert sa.box == sb.box
        np.testing.assert_array_equal(np.asarray(sa.image), np.asarray(sb.image))
        np.testing.assert_array_equal(sa.mask, sb.mask)


def test_different_seed_different_dataset():
    a = make_dataset(6, seed=3)
    b = make_dataset(6, seed=4)
    assert any(not np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b))


def test_make_sample_is_determined_by_rng():
    s1 = make_sample(np.random.default_rng(11), label=2)
    s2 = make_sample(np.random.default_rng(11), label=2)
    np.testing.assert_array_equal(np.asarray(s1.image), np.asarray(s2.image))
    assert s1.label == 2 and s1.box == s2.box


def test_balanced_labels():
    n = 10 * len(CLASSES) + 3
    labels = [s.label for s in make_dataset(n, seed=1)]
    counts = np.bincount(labels, minlength=len(CLASSES))
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1


def test_classes():
    assert 5 <= len(CLASSES) <= 8
    assert len(set(CLASSES)) == len(CLASSES)


def test_image_mask_box(dataset):
    for s in dataset:
        assert isinstance(s.image, Image.Image)
        assert s.image.mode == "RGB"
        assert s.image.size == (DEFAULT_SIZE, DEFAULT_SIZE)
        assert 0 <= s.label < len(CLASSES)
        assert s.mask.dtype == bool
        assert s.mask.shape == (DEFAULT_SIZE, DEFAULT_SIZE)
        area = int(s.mask.sum())
        # non-empty, and a sizeable but not dominating part of the image
        assert 0.02 * s.mask.size < area < 0.6 * s.mask.size, (s.name, area)
        # box is the tight bounding box of the mask and lies within the image
        left, top, right, bottom = s.box
        assert 0 <= left < right <= DEFAULT_SIZE
        assert 0 <= top < bottom <= DEFAULT_SIZE
        ys, xs = np.nonzero(s.mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == s.box


def test_object_stands_out_from_background(dataset):
    # the object's colour is chosen to contrast with what is under it, so the
    # mean colour inside the mask differs clearly from the mean just outside it
    for s in dataset:
        img = np.asarray(s.image, dtype=np.float32)
        inside = img[s.mask].mean(axis=0)
        left, top, right, bottom = s.box
        ring = np.zeros_like(s.mask)
        ring[max(0, top - 3):bottom + 3, max(0, left - 3):right + 3] = True
        ring &= ~s.mask
        outside = img[ring].mean(axis=0)
        assert np.abs(inside - outside).sum() > 40, s.name


def test_ring_has_hole_and_circle_does_not():
    rng = np.random.default_rng(0)
    ring = make_sample(rng, label=CLASSES.index("ring"))
    circle = make_sample(rng, label=CLASSES.index("circle"))
    for s, expect_hole in ((ring, True), (circle, False)):
        left, top, right, bottom = s.box
        cy, cx = (top + bottom) // 2, (left + right) // 2
        assert bool(s.mask[cy, cx]) is (not expect_hole)


def test_explicit_label_and_size():
    rng = np.random.default_rng(5)
    for label in range(len(CLASSES)):
        s = make_sample(rng, size=96, label=label)
        assert s.label == label and s.image.size == (96, 96) and s.mask.shape == (96, 96)
    with pytest.raises(ValueError):
        make_sample(rng, label=len(CLASSES))


def test_save_samples(tmp_path, dataset):
    paths = save_samples(dataset[:3], tmp_path / "out")
    assert [p.name for p in paths] == [f"{i:03d}_{dataset[i].name}.png" for i in range(3)]
    for p, s in zip(paths, dataset):
        np.testing.assert_array_equal(np.asarray(Image.open(p).convert("RGB")), np.asarray(s.image))


def test_import_does_not_load_torch():
    code = (
        "import sys, attncli.synthetic\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"modules loaded: {res.stdout} {res.stderr}"
