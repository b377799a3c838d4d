"""Figures stay readable for long inputs, say when an image was resized, and cover the picture edge to edge."""

from __future__ import annotations

import numpy as np

from attncli.capture import Capture
from attncli.grid import PatchGrid
from attncli.views.common import MapSpec


def text_capture(n: int) -> Capture:
    """One layer, one head of random rows over n tokens."""
    att = np.random.default_rng(0).dirichlet(np.ones(n), size=(1, 1, n)).astype(np.float32)
    return Capture(att, [f"tok{i}" for i in range(n)], [False] * n, "tiny/long")


def test_a_113_token_matrix_is_capped_and_thinly_labelled():
    from attncli.render.figures import DPI, MAX_INCHES, matrix_figure
    from attncli.views.explain import TokenMatrix, layer_matrix

    fig = matrix_figure(layer_matrix(text_capture(113), MapSpec(), view=TokenMatrix))
    width, height = fig.get_size_inches()
    assert width * DPI <= MAX_INCHES * DPI <= 1800 and height <= MAX_INCHES  # not a 2700 px image
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert 30 <= len(labels) <= 60 and labels[:2] == ["tok0", "tok2"]  # every 2nd token
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 7
    assert ax.get_xlabel() == "key (attended to) · 1 token in 2 labelled"


def test_a_64_token_align_figure_is_capped():
    from attncli.render.crossfig import align_figure
    from attncli.views.cross import align_view

    n_s, n_t = 64, 64
    cross = np.full((1, 1, n_t, n_s), 1.0 / n_s, dtype=np.float32)
    cap = Capture(np.full((1, 1, n_s, n_s), 1.0 / n_s, dtype=np.float32), [f"s{i}" for i in range(n_s)],
                  [False] * n_s, "tiny/align", cross_attentions=cross, target_tokens=[f"t{i}" for i in range(n_t)],
                  target_special=[False] * n_t, target_scores=[0.5] * n_t, decoding={"mode": "given"})
    fig = align_figure(align_view(cap))
    assert max(fig.get_size_inches()) <= 12.0
    assert len(fig.axes[0].get_xticklabels()) == 32 and len(fig.axes[0].get_yticklabels()) == 32


def image_capture(input_size=(451, 300)) -> Capture:
    """A 2×2-patch image capture whose file was 451×300 before preprocessing to 16×16."""
    grid = PatchGrid(2, 2, 8, 8, 16, 16)
    att = np.full((1, 1, 5, 5), 0.2, dtype=np.float32)
    return Capture(att, ["[CLS]", "(0,0)", "(0,1)", "(1,0)", "(1,1)"], [True] + [False] * 4, "tiny/vit",
                   kind="image", grid=grid, image=np.full((16, 16, 3), 128, np.uint8), source="/x/photo.png",
                   input_size=input_size)


def test_a_resized_image_says_so():
    from attncli.render.figures import overlay_captions
    from attncli.views.maps import patch_map

    amap = patch_map(image_capture(), MapSpec())
    assert amap.facts.resized == "451×300 → 16×16"
    assert overlay_captions(amap.facts)[0] == "photo.png as the model sees it (451×300 → 16×16)"
    same = patch_map(image_capture((16, 16)), MapSpec())
    assert same.facts.resized is None and "(16×16)" in overlay_captions(same.facts)[0]


def test_caption_overlays_cover_the_whole_picture():
    from attncli.render.crossfig import caption_figure
    from attncli.views.cross import caption_view

    cap = image_capture()
    cap.cross_attentions = np.full((1, 1, 2, 5), 0.2, dtype=np.float32)
    cap.target_tokens, cap.target_special, cap.target_scores = ["a", "cat"], [False, False], [0.5, 0.5]
    cap.target_text, cap.decoding = "a cat", {"mode": "given"}
    fig = caption_figure(caption_view(cap))
    panel = fig.axes[1]
    image, overlay = panel.images
    assert overlay.get_array().shape == image.get_array().shape[:2]  # pixels, not a 2×2 array stretched over
    assert "451×300 → 16×16" in fig.axes[0].get_title()
