"""attn classify / patches / heatmap end to end with tiny random vision transformers, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_images import png_header_only
from tiny_vision import make_deit, make_registers, make_swin, make_vit, photo

SHAPES = Path(__file__).resolve().parents[1] / "src" / "attncli" / "assets" / "shapes"


@pytest.fixture(scope="module")
def vit(tmp_path_factory) -> Path:
    return make_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture
def pics(tmp_path) -> Path:
    """A folder of three small pictures of different sizes."""
    folder = tmp_path / "pics"
    for i, name in enumerate(("c.png", "a.png", "b.jpg")):
        photo(folder / name, size=(40 + 16 * i, 40))
    return folder


def last_capture(cache: Path):
    from attncli.store import load_capture

    return load_capture(cache / "last.npz")


# --- classify ----------------------------------------------------------------------------------------------


def test_classify_one_image_prints_table_seed_line_and_cls_summary(cli, vit, pics, isolated_cache):
    code, out, err = cli("classify", str(pics / "a.png"), "--model", str(vit), "--top-k", "2")
    assert code == 0, err
    cap = last_capture(isolated_cache)
    best = cap.predictions[0]
    assert f"Prediction: {best.label} (Confidence: {best.score:.1%})" in out
    assert out.count("%") >= 3 and "rank" in out and "a.png" in out
    assert "[CLS] (layer 1 · mean of 2 heads) looks most at patches (row,col): (" in out
    assert cap.kind == "image" and cap.source == str(pics / "a.png")
    # the summary reads the last layer's [CLS] row, but a capture this small keeps every layer, head and row
    assert cap.attentions.shape == (2, 2, 17, 17) and cap.complete


def test_classify_folder_json_is_batched_and_matches_single_runs(cli, vit, pics, isolated_cache):
    code, out, err = cli("classify", str(pics), "--model", str(vit), "--json", "--batch-size", "2", "-k", "3")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.classify/1" and doc["grid"]["rows"] == 4 and doc["grid"]["prefix"] == 1
    assert [Path(i["source"]).name for i in doc["images"]] == ["a.png", "b.jpg", "c.png"]
    for item in doc["images"]:
        assert len(item["predictions"]) == 3 and len(item["cls_top_patches"]) == 3
        assert item["cls_layer"] == 1
    assert doc["last_capture"] == str(pics / "a.png")
    assert "the first image" in err
    assert last_capture(isolated_cache).source == str(pics / "a.png")
    code, out, _ = cli("classify", str(pics / "b.jpg"), "--model", str(vit), "--json", "-k", "3")
    single = json.loads(out)["images"][0]
    assert [p["label"] for p in single["predictions"]] == [p["label"] for p in doc["images"][1]["predictions"]]
    assert np.allclose([p["score"] for p in single["predictions"]],
                       [p["score"] for p in doc["images"][1]["predictions"]], atol=1e-5)


def test_classify_table_for_many_images(cli, vit, pics):
    code, out, err = cli("classify", str(pics), "--model", str(vit))
    assert code == 0, err
    assert "3 images" in out and "CLS → (row,col)" in out
    assert out.index("a.png") < out.index("b.jpg") < out.index("c.png")


@pytest.mark.parametrize("builder,prefix", [(make_deit, 2), (make_registers, 4)])
def test_classify_with_prefix_tokens(cli, builder, prefix, tmp_path, pics, isolated_cache):
    folder = builder(tmp_path / "m")
    code, out, err = cli("classify", str(pics / "a.png"), "--model", str(folder))
    assert code == 0, err
    assert last_capture(isolated_cache).grid.prefix == prefix


def test_classify_default_model_offline_names_the_embedded_image_model(cli, pics):
    code, out, err = cli("classify", str(pics / "a.png"))
    assert code == 1 and out == ""
    assert "google/vit-base-patch16-224" in err and "--model shapes" in err and len(err.strip().splitlines()) == 1


def test_swin_is_not_supported_yet(cli, tmp_path, pics):
    code, _, err = cli("classify", str(pics / "a.png"), "--model", str(make_swin(tmp_path / "swin")))
    assert code == 2 and "not supported yet" in err and len(err.strip().splitlines()) == 1  # another --model fixes it


# --- heatmap -----------------------------------------------------------------------------------------------


def test_heatmap_of_an_image_writes_a_sane_png(cli, vit, pics, tmp_path, isolated_cache):
    out_file = tmp_path / "figs" / "h.png"
    code, out, err = cli("heatmap", str(pics / "a.png"), "--model", str(vit), "--layer", "0", "-o", str(out_file))
    assert code == 0, err
    assert out == "" and err.strip() == f"wrote {out_file}"  # data on stdout, what was written on stderr
    with Image.open(out_file) as im:
        assert im.format == "PNG" and 900 <= im.width <= 2000 and 400 <= im.height <= 1200
    assert 10_000 < out_file.stat().st_size < 2_000_000
    assert not [p for p in out_file.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind
    assert last_capture(isolated_cache).source == str(pics / "a.png")  # a fresh capture becomes the last one


def test_heatmap_formats_and_views_from_the_last_capture(cli, vit, pics, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("classify", str(pics / "a.png"), "--model", str(vit), "--layers", "all")[0] == 0  # kept whole
    code, out, err = cli("heatmap", "--layer", "1", "--head", "1")
    assert code == 0, err
    assert out == "" and err.strip() == "wrote heatmap-a-L1-h1.png"
    assert (tmp_path / "heatmap-a-L1-h1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("heatmap", "--fuse", "max", "-o", "m.svg")[0] == 0
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    assert cli("heatmap", "--all-heads", "-o", "heads.pdf")[0] == 0
    assert (tmp_path / "heads.pdf").read_bytes()[:5] == b"%PDF-"
    code, out, err = cli("heatmap", "--query", "3,3")
    assert code == 0, err
    assert err.strip() == "wrote heatmap-a-L1-mean-r3c3.png"  # patches are named (row, col) everywhere


def test_heatmap_terminal_draws_the_grid(cli, vit, pics):
    assert cli("classify", str(pics / "a.png"), "--model", str(vit), "--layers", "0")[0] == 0
    code, out, err = cli("heatmap", "--terminal", "--layer", "0")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Layer 0 · mean of 2 heads · [CLS] → patches · ")
    assert lines[1] == "a.png: 56×40 → 32×32, aspect not kept"  # the processor squeezed it: said under the title
    assert lines[2] == "    0  1  2  3"
    assert [line[:2] for line in lines[3:7]] == ["0 ", "1 ", "2 ", "3 "]
    assert "top patches (row,col):" in out


def test_heatmap_of_a_saved_capture_and_of_text(cli, vit, pics, tiny_bert, tmp_path, isolated_cache):
    saved = tmp_path / "a.npz"
    assert cli("classify", str(pics / "a.png"), "--model", str(vit), "--save", str(saved), "--layers", "all")[0] == 0
    code, out, err = cli("heatmap", str(saved), "--layer", "0", "-o", str(tmp_path / "s.png"))
    assert code == 0, err
    code, out, err = cli("heatmap", "--text", "the cat sat on the mat", "--model", str(tiny_bert),
                         "-o", str(tmp_path / "t.png"))
    assert code == 0, err
    assert last_capture(isolated_cache).kind == "text"
    with Image.open(tmp_path / "t.png") as im:
        assert im.width > 400 and im.height > 400
    code, out, err = cli("heatmap", "--terminal")
    assert code == 0 and "query ↓ key →" in out and "cat" in out
    code, out, err = cli("heatmap", "--terminal", "--query", "cat")
    assert code == 0 and 'what "cat" (token 2) attends to' in out


def test_heatmap_rerender_never_imports_torch(vit, pics, tmp_path, isolated_cache):
    env = {**os.environ, "ATTN_CACHE_DIR": str(isolated_cache), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "attncli", "classify", str(pics / "a.png"), "--model", str(vit), "--layers",
                    "all"],
                   check=True, capture_output=True, env=env)
    code = (
        "import sys\n"
        "from attncli.cli.app import main\n"
        "def run(*args):\n"
        "    try:\n"
        "        main(list(args))\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "    print('torch' in sys.modules, 'transformers' in sys.modules, 'matplotlib' in sys.modules)\n"
        "run('heatmap', '--layer', '0', '-o', sys.argv[1])\n"  # the default PNG overlay: Pillow only
        "run('heatmap', '--terminal')\n"
        "run('heatmap', '--all-heads', '-o', sys.argv[2])\n"  # matplotlib, still no torch
        "run('heatmap', '-o', sys.argv[3])\n"  # the interactive page: numpy and Pillow only
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.png"), str(tmp_path / "all.svg"),
                           str(tmp_path / "page.html")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    flags = [line for line in done.stdout.splitlines() if line.startswith(("True", "False"))]
    assert flags == ["False False False", "False False False", "False False True", "False False True"]
    page = (tmp_path / "page.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "https://" not in page and "http://" not in page
    assert (tmp_path / "r.png").stat().st_size > 10_000 and (tmp_path / "all.svg").stat().st_size > 10_000


def test_heatmap_without_a_last_capture(cli):
    code, out, err = cli("heatmap")
    assert code == 1 and "no last capture yet" in err


# --- patches -----------------------------------------------------------------------------------------------


def test_patches_figure(cli, vit, pics, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the first line read whole (it wraps at the terminal's width)
    code, out, err = cli("patches", str(pics / "b.jpg"), "--model", str(vit), "-o", str(tmp_path / "p.png"))
    assert code == 0, err
    assert out.splitlines()[0] == ("32×32 input (resized from the 72×40 file) → 4×4 patches of 8×8 px; 1 prefix "
                                   "token ([CLS]) + 16 patches = 17 tokens")
    assert err.strip() == f"wrote {tmp_path / 'p.png'}"
    with Image.open(tmp_path / "p.png") as im:
        assert im.width > 1000 and im.height > 500


# --- bad input: one line, exit 1/2, nothing written or clobbered -------------------------------------------


def _one_line_error(result, code: int, *needles: str) -> None:
    got, out, err = result
    assert got == code, err
    assert err.startswith("attn: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize("command", ["classify", "patches", "heatmap"])
def test_bad_image_inputs(cli, vit, tmp_path, command):
    missing = tmp_path / "missing.png"
    text = tmp_path / "notes.png"
    text.write_text("hello")
    truncated = tmp_path / "cut.png"
    full = photo(tmp_path / "full.png", size=(64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    truncated.write_bytes(full.read_bytes()[:400])
    bomb = png_header_only(tmp_path / "bomb.png", 40_000, 40_000)
    cases = [(missing, "no such file"), (text, "is not an image"), (truncated, "truncated or corrupt"),
             (bomb, "decompression bomb")]
    for path, needle in cases:
        _one_line_error(cli(command, str(path), "--model", str(vit), "-o" if command != "classify" else "-k",
                            str(tmp_path / "o.png") if command != "classify" else "1"), 2, str(path), needle)
    assert not (tmp_path / "o.png").exists()


def test_folder_errors(cli, vit, tmp_path):
    (tmp_path / "empty").mkdir()
    _one_line_error(cli("classify", str(tmp_path / "empty"), "--model", str(vit)), 2, "no images in this folder")
    _one_line_error(cli("classify", str(tmp_path / "nope"), "--model", str(vit)), 2, "no such file or folder")
    _one_line_error(cli("heatmap", str(tmp_path / "empty"), "--model", str(vit)), 2, "is a folder")


def test_output_errors_leave_files_alone(cli, vit, pics, tmp_path):
    image = pics / "a.png"
    before = image.read_bytes()
    _one_line_error(cli("heatmap", str(image), "--model", str(vit), "-o", str(image)), 2, "is one of the inputs")
    _one_line_error(cli("patches", str(image), "--model", str(vit), "-o", str(image)), 2, "is one of the inputs")
    assert image.read_bytes() == before
    _one_line_error(cli("heatmap", str(image), "--model", str(vit), "-o", str(tmp_path / "x.gif")), 2,
                    "unknown figure format .gif")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    _one_line_error(cli("heatmap", str(image), "--model", str(vit), "-o", str(blocker / "h.png")), 2,
                    "is a file, not a folder")
    _one_line_error(cli("heatmap", str(image), "--model", str(vit), "-o", str(tmp_path)), 2, "is a folder")
    # a failing render leaves an existing figure untouched
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"previous figure")
    assert cli("classify", str(image), "--model", str(vit))[0] == 0
    _one_line_error(cli("heatmap", "--layer", "7", "-o", str(keep)), 2, "layer 7 is out of range")
    _one_line_error(cli("heatmap", "--query", "9,0", "-o", str(keep)), 2, "row 9 is out of range")
    assert keep.read_bytes() == b"previous figure"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root can write anywhere")
def test_read_only_folder(cli, vit, pics, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _one_line_error(cli("heatmap", str(pics / "a.png"), "--model", str(vit), "-o", str(locked / "h.png")), 2,
                        "cannot write in")
    finally:
        locked.chmod(0o700)


def test_conflicting_options(cli, vit, pics, tmp_path):
    _one_line_error(cli("heatmap", "--head", "0", "--all-heads"), 2, "--all-heads")
    _one_line_error(cli("heatmap", "--terminal", "-o", str(tmp_path / "a.png")), 2, "--terminal")
    _one_line_error(cli("heatmap", str(pics / "a.png"), "--text", "hi"), 2, "not both")
    _one_line_error(cli("heatmap", "--model", str(vit)), 2, "--model applies")
    _one_line_error(cli("classify", str(pics / "a.png"), "--model", str(vit), "--save", str(tmp_path / "a.txt")),
                    2, ".npz")


# --- the embedded shapes model -----------------------------------------------------------------------------


@pytest.mark.skipif(not (SHAPES / "config.json").is_file(), reason="the shapes model has not been trained yet")
def test_shapes_model_classifies_fresh_held_out_images(tmp_path):
    from attncli.synthetic import CLASSES, make_dataset, save_samples
    from attncli.sources import capture_images

    samples = make_dataset(48, seed=424242)  # a seed neither training (1000) nor validation (2000) used
    paths = save_samples(samples, tmp_path)
    caps = list(capture_images(paths, "shapes", batch_size=16, top_k=1))
    predicted = [c.predictions[0].label for c in caps]
    truth = [CLASSES[s.label] for s in samples]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
    assert accuracy >= 0.95, list(zip(predicted, truth))  # the bar the README states for held-out images
    assert caps[0].grid.rows >= 8 and caps[0].grid.cols >= 8
