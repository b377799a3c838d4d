"""One view, every renderer: terminal tables that fit, the same numbers and title words in every format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from attncli.capture import Capture
from attncli.choices import Format
from attncli.methods.registry import METHODS, Method
from attncli.render import render
from attncli.views.common import MapSpec

FOX = "[CLS] The quick brown fox jumps over the lazy dog while the cat sleeps . [SEP]".split()


def fox_capture() -> Capture:
    """One layer, one head over the 16 tokens of the fox sentence; row i puts 0.5 on token i, the rest evenly."""
    n = len(FOX)
    att = np.full((1, 1, n, n), 0.5 / (n - 1), dtype=np.float32)
    att[0, 0, np.arange(n), np.arange(n)] = 0.5
    return Capture(att, FOX, [True] + [False] * (n - 2) + [True], "tiny/fox")


def terminal_text(view, width: int) -> str:
    """What the terminal renderer prints at a width, without colours."""
    console = Console(record=True, width=width, color_system=None)
    console.print(render(view, Format.terminal, width=width), crop=False)
    return console.export_text(styles=False)


def test_matrix_at_80_columns_shows_every_number():
    from attncli.views.explain import TokenMatrix, layer_matrix

    text = terminal_text(layer_matrix(fox_capture(), MapSpec(), view=TokenMatrix), 80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert text.splitlines()[:4] == [
        "Layer 0 · its only head · tiny/fox",
        "rows attend to columns; each row sums to 1",
        "columns: 0=[CLS]  1=The  2=quick  3=brown  4=fox  5=jumps  6=over  7=the  8=lazy",
        "9=dog  10=while  11=the  12=cat  13=sleeps  14=.  15=[SEP]",
    ]
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 16
    assert rows[0] == "│ 0 [CLS]     │.50│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│"
    assert rows[4] == "│ 4 fox       │.03│.03│.03│.03│.50│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│.03│"


def test_matrix_piped_keeps_the_labels_and_its_own_width():
    from attncli.cli.common import DATA_WIDTH
    from attncli.views.explain import TokenMatrix, layer_matrix

    text = terminal_text(layer_matrix(fox_capture(), MapSpec(), view=TokenMatrix), DATA_WIDTH)
    header = text.splitlines()[3]
    assert header == ("┃query ↓ key →┃[CLS]┃The┃quick┃brown┃fox┃jumps┃over┃the┃lazy┃dog┃while┃the┃cat┃sleeps┃  .┃"
                      "[SEP]┃")
    assert "columns: 0=" not in text and max(len(line) for line in text.splitlines()) == len(header)


def test_very_wide_matrix_splits_into_column_blocks():
    from attncli.views.explain import TokenMatrix, layer_matrix

    text = terminal_text(layer_matrix(fox_capture(), MapSpec(), view=TokenMatrix), 50)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 50
    assert "columns 0–7" in text and "columns 8–15" in text
    assert sum(line.count(".50") for line in text.splitlines()) == 16  # every diagonal weight, once


def align_capture(n_source: int = 14) -> Capture:
    """A cross-attention capture: 3 target tokens over n_source source tokens; target t looks at source t."""
    source = [f"w{i}" for i in range(n_source - 1)] + ["</s>"]
    cross = np.full((1, 2, 3, n_source), 0.2 / (n_source - 1), dtype=np.float32)
    for t in range(3):
        cross[0, :, t, t] = 0.8
    return Capture(np.full((1, 2, n_source, n_source), 1 / n_source, dtype=np.float32), source,
                   [False] * (n_source - 1) + [True], "tiny/marian", text=" ".join(source[:-1]),
                   cross_attentions=cross, target_tokens=["Das", "Haus", "</s>"],
                   target_special=[False, False, True], target_scores=[0.5, 0.25, 0.9], target_text="Das Haus",
                   decoding={"mode": "given", "scored": "teacher-forced"})


def test_align_with_14_source_tokens_at_80_columns():
    from attncli.views.cross import align_view

    text = terminal_text(align_view(align_capture()), 80)
    lines = text.splitlines()
    assert "…" not in text and max(len(line) for line in lines) <= 80
    body = [line for line in lines if line.startswith("│")]
    assert body[:3] == [
        "│Das              │.80│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│",
        "│Haus             │.02│.80│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│",
        "│</s>             │.02│.02│.80│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│.02│",
    ]
    assert body[3:] == ["│Das              │ w0 0.80    │.50│",  # best source and p: a block of their own
                        "│Haus             │ w1 0.80    │.25│",
                        "│</s>             │ w2 0.80    │.90│"]
    wide = terminal_text(align_view(align_capture()), 10_000)
    assert "┃w12┃</s>┃ best source┃  p┃" in wide and "columns: 0=" not in wide  # piped: labels as headers, one table


# --- the same view in every format -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_capture(tmp_path_factory):
    """A tiny BERT sequence classifier's capture and its attention gradients."""
    from tiny_classifier import make_bert_classifier

    from attncli.capture import Selection
    from attncli.choices import Purpose
    from attncli.families.text_capture import capture_text as text_capture
    from attncli.gradcapture import gradients_for
    from attncli.sources import load

    folder = make_bert_classifier(tmp_path_factory.mktemp("clf"))
    extras = tuple(dict.fromkeys(e for m in METHODS.values() for e in m.extras))  # what every method reads
    capture = text_capture("the cat sat on the mat", load(str(folder), Purpose.text), Selection(extras=extras))
    return capture, gradients_for(capture)


@pytest.mark.parametrize("method", list(Method))
def test_terminal_json_and_figure_carry_the_same_numbers_and_title(classifier_capture, method, tmp_path):
    from attncli.render.figures import matrix_figure
    from attncli.views.explain import TokenMatrix, layer_matrix

    capture, grads = classifier_capture
    view = layer_matrix(capture, MapSpec(method=method), grads.gradients, grads.label, TokenMatrix)
    assert view.method_note and view.title.startswith(f"Layer 1 · {view.method_note}")
    text = terminal_text(view, 200)
    assert text.splitlines()[0] == view.title
    cells = [line.split("│")[2:-1] for line in text.splitlines() if line.startswith("│")]
    shown = np.array([[float(c) if c.strip() != "1.0" else 1.0 for c in row] for row in cells])
    # two decimals in the table below 1, one decimal from 1 to 10 (value-norm's norms)
    assert (np.abs(shown - view.matrix) <= np.where(view.matrix < 0.995, 0.005, 0.05) + 1e-6).all()
    doc = json.loads(render(view, Format.json))
    assert doc["title"] == view.title and doc["method"] == method.value
    np.testing.assert_allclose(doc["weights"], view.matrix, atol=1e-6)
    fig = matrix_figure(view)
    assert fig._suptitle.get_text().splitlines()[0] == view.title
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), view.matrix)
    assert render(view, Format.figure, path=tmp_path / "m.png").stat().st_size > 1000


def test_heatmap_text_rollout_in_the_terminal_is_the_rollout(cli, tiny_bert):
    from attncli.methods.rollout import rollout
    from attncli.store import load_capture

    code, out, err = cli("heatmap", "--text", "the cat sat on the mat", "--model", str(tiny_bert), "--method",
                         "rollout", "--terminal")
    assert code == 0, err
    assert out.splitlines()[0].startswith("Layer 1 · rollout of layers 0–1 (mean)")
    expected = rollout(load_capture().attentions, -1)
    cells = [line.split("│")[2:-1] for line in out.splitlines() if line.startswith("│")]
    assert np.abs(np.array([[float(c) for c in row] for row in cells]) - expected).max() <= 0.005 + 1e-6


def test_classify_summary_names_the_method(cli, tmp_path):
    from PIL import Image

    from tiny_vision import make_vit

    vit = make_vit(tmp_path / "vit")
    for name, seed in (("a.png", 1), ("b.png", 2)):
        Image.fromarray((np.random.default_rng(seed).random((32, 32, 3)) * 255).astype("uint8")).save(tmp_path / name)
    code, out, err = cli("classify", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(vit),
                         "--method", "rollout")
    assert code == 0, err
    assert "CLS → (row,col): where [CLS] looks most (rollout of layers 0–1 (mean))" in out
    assert "(heads averaged)" not in out


def test_piped_output_is_not_cut_to_80_columns(cli, tiny_bert, monkeypatch):
    monkeypatch.setenv("COLUMNS", "")  # stdout is captured (not a terminal) and no width is set
    text = "the cat sat on the mat because it was tired . the dog ran to a big red house"
    code, out, err = cli("explain", text, "--model", str(tiny_bert), "--matrix")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) > 80 and "…" not in out and "columns: 0=" not in out
    code, narrow, err = cli("explain", text, "--model", str(tiny_bert), "--matrix", "--width", "80")
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "columns: 0=" in narrow


def test_a_capture_with_relative_paths_rerenders_and_grad_rolls_out_elsewhere(cli, tmp_path, monkeypatch):
    from PIL import Image

    from tiny_vision import make_vit

    work, other = tmp_path / "work", tmp_path / "other"
    other.mkdir()
    make_vit(work / "vit")
    Image.fromarray((np.random.default_rng(2).random((32, 32, 3)) * 255).astype("uint8")).save(work / "a.png")
    monkeypatch.chdir(work)
    code, _, err = cli("heatmap", "a.png", "--model", "vit", "--save", "cap.npz", "-o", "h.png", "--layers", "all")
    assert code == 0, err
    monkeypatch.chdir(other)  # the capture names the model folder and the image by absolute paths
    code, _, err = cli("heatmap", "../work/cap.npz", "--method", "grad-rollout", "-o", "g.png")
    assert code == 0, err
    assert (other / "g.png").stat().st_size > 1000
    code, out, err = cli("heatmap", "../work/cap.npz", "--method", "grad-rollout", "--json")
    doc = json.loads(out)
    assert doc["method"] == "grad-rollout" and doc["image"] == str(work / "a.png")
