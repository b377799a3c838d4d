"""Issue #19, the first five minutes: no silent wrong input, one exit-code rule, help that teaches."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_repo(monkeypatch):
    """Run from the repository root, where samples/ is."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("args, line", [
    (("explain", "samples/sentences.txt"),
     "attn: error: samples/sentences.txt is a file, not text (to read the text in it, use --file "
     "samples/sentences.txt)\n"),
    (("explain", "samples"), "attn: error: samples is a folder, not text (give a text)\n"),
    (("stats", "samples/shapes"),
     "attn: error: samples/shapes is a folder, not text (give one image file or a text; to analyse the name "
     "itself as text, use --text)\n"),
    (("heatmap", "--text", "--terminal"),
     "attn: error: --text got '--terminal', which looks like an option, as its text (put the text right after "
     "--text, quoted: --text \"The cat sat.\")\n"),
    (("classify", "", "-m", "shapes"), "attn: error: an empty image name (name an image file or a folder)\n"),
    (("evaluate", ""), "attn: error: an empty image name (name an image file or a folder)\n"),
])
def test_wrong_input_is_refused_before_any_model_loads(cli, in_repo, args, line):
    """A path given as TEXT, an option given as --text's value and an empty IMAGE are usage errors (exit 2)."""
    code, out, err = cli(*args)
    assert (code, out, err) == (2, "", line)


def test_text_that_only_mentions_a_path_is_still_text(cli, in_repo):
    """Words with a space are text even when one of them names a file."""
    from attncli import sources

    request = sources.Request(value="see samples/sentences.txt", accepts=sources.TEXTS)
    assert sources.classify_input(request) is sources.InputKind.text


def test_patches_json_writes_no_figure(cli, in_repo, tmp_path, monkeypatch):
    """`patches --json` prints the document and writes no default PNG."""
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("patches", str(ROOT / "samples/shapes/000_star.png"), "-m", "shapes", "--json")
    assert code == 0 and '"schema": "attncli.patches/1"' in out
    assert not list(tmp_path.glob("*.png")) and "wrote" not in err


CAT = "The cat sat on the mat because it was tired."


def test_explain_token_names_the_heads_behind_its_top_word(cli):
    """`explain --token it` names the heads that send the most from "it" to "cat"; --layer keeps to one layer."""
    import json

    code, out, err = cli("explain", CAT, "--token", "it")
    assert code == 0, err
    assert " ".join(out.split()).endswith('Heads that send the most from "it" to "cat": layer 5 head 11 0.712, '
                                          'layer 3 head 1 0.492, layer 5 head 4 0.421.')  # wrapped at 100 columns
    code, out, err = cli("explain", CAT, "--token", "it", "--layer", "3", "--json")
    doc = json.loads(out)
    assert [entry["layer"] for entry in doc["layers"]] == [3]
    assert doc["heads_to"] == {"index": 2, "token": "cat"}
    assert [(h["layer"], h["head"]) for h in doc["heads"]] == [(3, 1), (3, 7), (3, 10)]
    assert abs(doc["heads"][0]["weight"] - 0.492) < 5e-4
    assert doc["title"].startswith('What "it" (token 8) attends to, at layer 3 ·')


def test_heads_are_the_captured_weights(cli, tiny_bert):
    """On a tiny BERT, each named head's weight is that head's own weight from the token to the word."""
    import json

    import numpy as np

    from attncli import capture_text

    code, out, err = cli("explain", "the cat sat on the mat", "--model", str(tiny_bert), "--token", "cat", "--json")
    assert code == 0, err
    doc = json.loads(out)
    capture = capture_text("the cat sat on the mat", str(tiny_bert))
    token = doc["token"]["index"]
    for head in doc["heads"]:
        expected = capture.attentions[head["layer"], head["head"], token, doc["heads_to"]["index"]]
        assert abs(head["weight"] - float(expected)) < 1e-5
    weights = [h["weight"] for h in doc["heads"]]
    assert weights == sorted(weights, reverse=True) and len(weights) == min(3, capture.n_layers * capture.n_heads)
    assert np.isfinite(weights).all()


def test_max_image_pixels_is_honoured_above_pillows_own_limit(tmp_path, monkeypatch):
    """ATTN_MAX_IMAGE_PIXELS=200M lets a 120 MP header through (Pillow's own check would stop it at ~89.5 MP)."""
    import struct
    import zlib

    from attncli.errors import UsageError
    from attncli.images import probe_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 10000, 8, 2, 0, 0, 0))
                    + chunk(b"IEND", b""))
    with pytest.raises(UsageError, match="over the limit of 64,000,000"):
        probe_image(big)
    monkeypatch.setenv("ATTN_MAX_IMAGE_PIXELS", "200000000")
    assert probe_image(big) == (12000, 10000)
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's limit is put back after each read
