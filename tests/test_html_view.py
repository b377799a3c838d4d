"""The interactive HTML view without a browser: packing precision, size budgets, dropping, every capture kind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attncli.capture import Capture
from attncli.choices import Fuse
from attncli.errors import NotSupportedError, UsageError
from attncli.grid import PatchGrid
from attncli.views.interactive import DEFAULT_MAX_BYTES, InteractiveView, interactive_view, pack
from attncli.render.html import html_document, write_html

MB = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
CAT = "The cat sat on the mat because it was tired."


def softmaxed(shape: tuple[int, ...], seed: int = 0, sharpness: float = 1.0) -> np.ndarray:
    """Random attention: standard-normal logits (times sharpness) softmaxed over keys, float32."""
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * sharpness
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def text_capture(layers: int = 3, heads: int = 2, n: int = 7) -> Capture:
    tokens = ["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"]
    return Capture(softmaxed((layers, heads, n, n)), tokens, [True] + [False] * (n - 2) + [True], "tiny-bert",
                   text=" ".join(tokens[1:-1]))


def image_capture(layers: int = 2, heads: int = 2, rows: int = 3, cols: int = 4, prefix: int = 1,
                  patch: int = 8, noise: bool = False, seed: int = 1) -> Capture:
    grid = PatchGrid(rows, cols, patch, patch, rows * patch, cols * patch, prefix,
                     ("[CLS]", "[DIST]", "[REG]")[:prefix])
    n = grid.n_tokens
    labels = list(grid.prefix_labels) + [f"({r},{c})" for r in range(rows) for c in range(cols)]
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, 256, (grid.image_height, grid.image_width, 3), dtype=np.uint8) if noise else
             np.full((grid.image_height, grid.image_width, 3), 120, dtype=np.uint8))
    return Capture(softmaxed((layers, heads, n, n), seed), labels, [True] * prefix + [False] * (n - prefix),
                   "tiny-vit", kind="image", grid=grid, image=image, source="photo.png")


def cross_capture(kind: str) -> Capture:
    source = image_capture() if kind == "image" else text_capture()
    target = ["▁die", "▁katze", "</s>"]
    source.cross_attentions = softmaxed((2, 2, len(target), source.n_tokens), seed=5)
    source.target_tokens, source.target_special, source.target_scores = target, [False, False, True], [0.5, 0.25, 0.9]
    source.target_text = "die katze"
    return source


# --- packing ---------------------------------------------------------------------------------------------------

def test_pack_round_trip_error_is_within_half_a_step_of_each_row():
    weights = softmaxed((3, 4, 9, 11), seed=3)
    weights[1, 2, 4] *= 0.01  # a row of tiny weights gets its own, finer scale
    packed = pack(weights, [0, 1, 2])
    decoded = packed.unpack()
    scales = packed.scales()  # (layers, heads, query)
    err = np.abs(decoded - weights).max(axis=-1)
    assert np.all(err <= scales / 2 * (1 + 1e-6) + 1e-9)
    assert scales[1, 2, 4] < scales[1, 2, 3] / 10
    assert np.all(scales <= weights.max(axis=-1) / 255 * (1 + 1e-6))  # error ≤ the row's largest weight / 510


def test_pack_keeps_every_rows_top_weights_exactly_and_in_order():
    weights = softmaxed((2, 3, 40, 40), seed=4, sharpness=0.3)  # near-uniform: close values, hard to rank
    weights[0, 0, 0, :6] = weights[0, 0, 0, 6]  # ties are ranked by index, as a stable sort does
    packed = pack(weights, [0, 1])
    decoded = packed.unpack()
    idx, val = packed.top_table()
    want = np.argsort(-weights.astype(np.float64), axis=-1, kind="stable")[..., :5]
    assert np.array_equal(idx[:, :3], want)
    assert np.array_equal(val[:, :3], np.take_along_axis(weights, want, axis=-1))  # float32, bit for bit
    # decoded as the page does: the top entries exact, every other key capped at the smallest of them, so the
    # page's ranking (exact entries first, in stored order, then the rest) is the capture's
    assert np.array_equal(np.take_along_axis(decoded, want, axis=-1), np.take_along_axis(weights, want, axis=-1))
    rest = decoded.copy()
    np.put_along_axis(rest, want, -np.inf, axis=-1)
    assert np.all(rest.max(axis=-1) <= np.take_along_axis(decoded, want[..., -1:], axis=-1)[..., 0])
    mean = weights.astype(np.float64).mean(axis=1)  # (layers, query, key): the fused row's top is kept too
    assert np.array_equal(idx[:, 3], np.argsort(-mean, axis=-1, kind="stable")[..., :5])


def test_pack_keeps_small_weights_of_a_long_row():
    row = np.full(512, 1e-4, dtype=np.float32)
    row[0] = 0.5
    row[1:20] = np.linspace(1e-3, 2e-2, 19)
    packed = pack(row.reshape(1, 1, 1, 512), [0])
    decoded = packed.unpack()[0, 0, 0]
    assert np.abs(decoded - row).max() <= 0.5 / 510 + 1e-9
    assert np.array_equal(np.argsort(-decoded, kind="stable")[:5], np.argsort(-row, kind="stable")[:5])


def test_pack_handles_negative_and_constant_rows():
    weights = np.zeros((1, 2, 3, 3), dtype=np.float32)
    weights[0, 0] = [[-1.0, 0.5, 2.0], [0, 0, 0], [1, 1, 1]]
    packed = pack(weights, [4])
    assert packed.layers == (4,) and packed.negative and packed.scales()[0, 1].max() == 0.0
    assert np.abs(packed.unpack() - weights).max() <= 3.0 / 255 / 2 + 1e-9


# --- size budgets: the two captures, with real attention statistics -----------------------------------
# No ViT-B/16 or BERT-base weights are offline, so each is built at its real shape from real attention: the
# DINOv2-S heads of two photos (cropped to 197 tokens, rows renormalised) and MiniLM's heads over two 512-token
# texts. Random softmaxed noise is the worst case (every code equally likely): scripts/html_screenshots.py
# prints its sizes, and such a page drops its earliest layers and says so (test below).

def vit_b16_like() -> Capture:
    """12 layers × 12 heads × 197 × 197 of real DINOv2-S attention (two photos' 6 heads each)."""
    from attncli.sources import capture_image

    heads = [capture_image(f"samples/{name}.png", "dinov2-small").attentions for name in ("chelsea", "coffee")]
    att = np.concatenate(heads, axis=1)[..., :197, :197].astype(np.float64)  # (12, 12, 197, 197)
    att = (att / att.sum(axis=-1, keepdims=True)).astype(np.float32)
    cap = image_capture(layers=1, heads=1, rows=14, cols=14, patch=16, noise=True)  # labels, grid, noise image
    cap.attentions = att
    return cap


def bert_512_like() -> Capture:
    """12 layers × 12 heads × 512 × 512 of real MiniLM attention (6 layers each over two long texts)."""
    from attncli.sources import capture_text

    words = " ".join(open("samples/sentences.txt", encoding="utf-8").read().split())
    caps = [capture_text((words + " ") * 20, "minilm"), capture_text((CAT + " ") * 60, "minilm")]
    att = np.concatenate([c.attentions[..., :512, :512] for c in caps], axis=0)
    assert att.shape == (12, 12, 512, 512)
    return Capture(att, caps[0].tokens[:512], caps[0].special[:512], "bert-base-like", text="long")


def test_vit_b16_capture_fits_in_5_mb_without_dropping(real_dinov2, monkeypatch):
    monkeypatch.chdir(ROOT)
    view = interactive_view(vit_b16_like())
    size = len(html_document(view).encode())
    assert size <= 5 * MB and view.dropped == [] and view.layers == list(range(12)), size
    assert size <= view.nbytes  # the view's estimate is an upper bound of the page


@pytest.mark.slow  # a size measurement on a BERT-base-sized capture: pytest -m slow
def test_bert_512_capture_fits_in_25_mb(monkeypatch):
    monkeypatch.chdir(ROOT)
    view = interactive_view(bert_512_like())
    assert view.max_bytes == DEFAULT_MAX_BYTES == 25 * MB
    size = len(html_document(view).encode())
    assert size <= 25 * MB and view.dropped == [], size


def test_too_big_drops_the_earliest_layers_and_says_how_to_keep_them():
    cap = text_capture(layers=6, heads=4, n=40)
    full = interactive_view(cap)
    per_layer = full.arrays["attention"].layer_bytes(0)
    limit = full.nbytes - 2 * per_layer - per_layer // 2  # room for all but three layers
    view = interactive_view(cap, max_bytes=limit)
    assert view.layers == [3, 4, 5] and view.dropped == [0, 1, 2]
    assert view.nbytes <= limit and len(html_document(view).encode()) <= limit
    assert view.arrays["attention"].shape == (3, 4, 40, 40)
    assert any("dropped layers 0–2" in w and "--layers 0-2" in w for w in view.warnings)
    np.testing.assert_allclose(view.arrays["attention"].unpack()[0], cap.attentions[3], atol=1 / 510)


def test_asked_layers_are_kept_from_the_last_one_down():
    cap = text_capture(layers=6, heads=4, n=40)
    one = interactive_view(cap, layers=[1]).nbytes
    view = interactive_view(cap, layers=[1, 2, -1], max_bytes=one)
    assert view.layers == [5] and view.dropped == [1, 2]
    assert any("the layers asked for" in w for w in view.warnings)
    tiny = interactive_view(cap, layers=[0], max_bytes=10)
    assert tiny.layers == [0] and any("keeps it anyway" in w for w in tiny.warnings)


def test_layers_are_resolved_and_checked():
    cap = text_capture(layers=3)
    assert interactive_view(cap, layers=[-1, 0, 0]).layers == [0, 2]
    with pytest.raises(UsageError, match="layer 3 is out of range"):
        interactive_view(cap, layers=[3])


# --- one view per capture kind ---------------------------------------------------------------------------------

def test_text_view_with_rollout_and_flow():
    from attncli.methods.flow import attention_flow
    from attncli.methods.rollout import rollout_layers

    cap = text_capture()
    view = interactive_view(cap, methods=("rollout", "flow"), layers=[0, 2])
    assert view.kind == "text" and view.methods == ["rollout", "flow", "attention"] and view.focus == 1
    assert set(view.arrays) == {"attention", "rollout-mean", "rollout-max", "rollout-min", "flow"}
    for fuse in Fuse:
        rolled = view.arrays[f"rollout-{fuse.value}"].unpack()[:, 0]  # (2, Q, K)
        np.testing.assert_allclose(rolled, rollout_layers(cap.attentions, fuse)[[0, 2]], atol=1 / 510)
    flow = view.arrays["flow"].unpack()[:, 0]
    np.testing.assert_allclose(flow[1], attention_flow(cap.attentions, 2), atol=1 / 510)
    assert view.max_error <= 1 / 510


def test_image_view_stores_flow_for_prefix_rows_only_and_the_picture():
    cap = image_capture(prefix=2)
    view = interactive_view(cap, methods=("attention", "flow"))
    assert view.kind == "image" and view.focus == 0 and view.grid["rows"] == 3 and view.grid["prefix"] == 2
    assert view.arrays["flow"].queries == (0, 1) and view.arrays["flow"].shape == (2, 1, 2, 14)
    assert view.image_uri.startswith("data:image/png;base64,")
    import base64
    import io

    from PIL import Image

    pic = Image.open(io.BytesIO(base64.b64decode(view.image_uri.split(",", 1)[1])))
    assert pic.size == (32, 24) and np.array_equal(np.asarray(pic), cap.image)


def test_grad_rollout_view_matches_gradient_rollout_at_every_layer():
    from attncli.methods.gradients import gradient_rollout

    cap = image_capture(layers=3)
    grads = np.random.default_rng(9).standard_normal(cap.attentions.shape).astype(np.float32)
    view = interactive_view(cap, methods=("grad-rollout",), gradients=grads, target_label="cat")
    got = view.arrays["grad-rollout"].unpack()[:, 0]
    for layer in range(3):
        want = gradient_rollout(cap.attentions, grads, layer)
        scale = view.arrays["grad-rollout"].scales()[layer, 0]  # (query,)
        assert np.all(np.abs(got[layer] - want).max(axis=-1) <= scale / 2 + 1e-6)
    assert view.target_label == "cat" and view.methods[0] == "grad-rollout"
    with pytest.raises(UsageError, match="gradients"):
        interactive_view(cap, methods=("grad-rollout",))


@pytest.mark.parametrize("source, kind", [("text", "align"), ("image", "caption")])
def test_cross_attention_views(source, kind):
    cap = cross_capture(source)
    view = interactive_view(cap, methods=("attention", "rollout"))
    extra = ["encoder"]  # the encoder's self-attention (a caption's: the image tokens', drawn as patch maps)
    assert view.kind == kind and view.methods == ["attention", *extra] and list(view.arrays) == ["attention", *extra]
    assert view.warnings == []  # nothing unasked: the page shows what a cross capture holds
    np.testing.assert_allclose(view.arrays["encoder"].unpack(), cap.attentions, atol=1 / 510)
    np.testing.assert_allclose(view.arrays["attention"].unpack(), cap.cross_attentions, atol=1 / 510)
    assert view.target_tokens == cap.target_tokens and view.target_scores == [0.5, 0.25, 0.9]
    assert view.input.endswith("→ die katze") and view.focus == 0
    assert (view.image_uri is not None) == (kind == "caption")


def test_flow_that_is_too_expensive_is_refused_with_a_hint():
    cap = text_capture(layers=12, heads=1, n=60)
    with pytest.raises(NotSupportedError, match="too large"):
        interactive_view(cap, methods=("flow",))


# --- the document ----------------------------------------------------------------------------------------------

def test_document_is_self_contained_and_fetches_nothing(tmp_path):
    for cap in (text_capture(), image_capture(), cross_capture("text"), cross_capture("image")):
        doc = html_document(interactive_view(cap, methods=("attention",)))
        assert "http://" not in doc and "https://" not in doc and "//cdn" not in doc
        assert "Content-Security-Policy" in doc and "default-src 'none'" in doc
        assert not re.search(r"<(link|iframe|object|embed)\b", doc)
        assert not re.search(r"<script[^>]*\bsrc=", doc) and "@import" not in doc and "url(" not in doc
        assert "DecompressionStream" in doc
        assert doc.count("<script") == 2 and doc.count("</script>") == 2


def test_document_survives_hostile_labels(tmp_path):
    cap = text_capture(n=4)
    cap.tokens[1] = "</script><script>alert(1)</script>"
    cap.text = "<b>bold</b>"
    doc = html_document(interactive_view(cap))
    assert doc.count("</script>") == 2 and "<b>bold</b>" not in doc
    data = doc.split('<script id="attn-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["tokens"][1] == cap.tokens[1]


def test_write_html_is_atomic_and_returns_the_path(tmp_path):
    view = interactive_view(image_capture())
    out = write_html(view, tmp_path / "sub" / "view.html")
    assert out == tmp_path / "sub" / "view.html" and out.read_text(encoding="utf-8") == html_document(view)
    assert [p.name for p in out.parent.iterdir()] == ["view.html"]


def test_view_round_trips_through_its_dict():
    view = interactive_view(text_capture(), methods=("rollout",))
    d = json.loads(json.dumps(view.to_dict()))
    assert d["arrays"]["attention"]["shape"] == [3, 2, 7, 7] and d["layers"] == [0, 1, 2]
    assert "8-bit codes with one scale per row" in d["precision"] and "5 largest weights exactly" in d["precision"]
    assert isinstance(view, InteractiveView)


def test_view_and_renderer_modules_import_nothing_heavy():
    code = ("import sys, attncli.views.interactive, attncli.render.html; "
            "print([m for m in ('numpy', 'torch', 'matplotlib', 'rich', 'PIL', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_command_writes_the_page(cli, tiny_bert, tmp_path):
    """-o FILE.html on explain, heatmap (also re-rendering the last capture), stats, classify, align, caption."""
    from PIL import Image

    from tiny_seq2seq import make_marian, make_vit_gpt2
    from tiny_vision import make_vit

    vit = make_vit(tmp_path / "vit")
    image = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(3).random((32, 32, 3)) * 255).astype("uint8")).save(image)
    marian, captioner = make_marian(tmp_path / "marian"), make_vit_gpt2(tmp_path / "ved")
    runs = {
        "explain": ("explain", "the cat sat on the mat", "--model", str(tiny_bert)),
        "heatmap-text": ("heatmap", "--text", "the cat sat", "--model", str(tiny_bert), "--method", "rollout"),
        "stats": ("stats", "--last"),
        "classify": ("classify", str(image), "--model", str(vit)),
        "heatmap-last": ("heatmap", "--layer", "0"),
        "align": ("align", "the cat sat on the mat", "--model", str(marian), "--max-new-tokens", "3"),
        "caption": ("caption", str(image), "--model", str(captioner), "--max-new-tokens", "3"),
    }
    kinds = {}
    for name, args in runs.items():
        page = tmp_path / f"{name}.html"
        code, out, err = cli(*args, "-o", str(page))
        assert code == 0, (name, err)
        assert f"wrote {page}" in err
        text = page.read_text()
        data = text.split('<script id="attn-data" type="application/json">', 1)[1].split("</script>", 1)[0]
        kinds[name] = json.loads(data)["kind"]
    assert kinds == {"explain": "text", "heatmap-text": "text", "stats": "text", "classify": "image",
                     "heatmap-last": "image", "align": "align", "caption": "caption"}
