"""A capture keeps what users ask next: under the capture budget every layer, head and row is kept.

The seed's workflow (classify, then heatmap any layer), a plain heatmap after a one-layer heatmap, explain --save,
and over the budget one warning giving the whole command that keeps everything.
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

pytest.importorskip("torch")

from attncli.store import last_capture_path, load_capture  # noqa: E402

STAR = "samples/shapes/000_star.png"
CAT = "The cat sat on the mat because it was tired."


def test_classify_then_heatmap_of_any_layer(cli, tmp_path):
    code, _, err = cli("classify", STAR, "--model", "shapes")
    assert code == 0, err
    kept = load_capture(last_capture_path())
    assert kept.complete and kept.attentions.shape[:2] == (kept.total_layers, kept.total_heads)
    assert "warning: this capture kept only" not in err
    for layer in ("0", "2", "-1"):
        code, out, err = cli("heatmap", "--layer", layer, "--json")
        assert code == 0, err
        assert json.loads(out)["layer"] == int(layer) % kept.total_layers
    code, _, err = cli("heatmap", "--layer", "1", "--head", "3", "--terminal")
    assert code == 0, err


def test_a_one_layer_heatmap_keeps_what_a_plain_terminal_heatmap_reads(cli, tmp_path):
    code, _, err = cli("heatmap", STAR, "--model", "shapes", "--layer", "1", "-o", str(tmp_path / "a.png"))
    assert code == 0, err
    code, out, err = cli("heatmap", "--terminal")
    assert code == 0 and "layer" in out, err
    code, out, err = cli("stats", "--last", "--json")
    assert code == 0, err


def test_explain_save_keeps_every_layer_of_minilm(cli, tmp_path):
    saved = tmp_path / "cap.npz"
    code, _, err = cli("explain", CAT, "--save", str(saved))
    assert code == 0, err
    cap = load_capture(saved)
    assert cap.complete and cap.attentions.shape == (6, 12, 13, 13)
    np.testing.assert_allclose(cap.attentions.sum(-1), 1.0, atol=1e-5)
    for args in (("--layer", "2", "--terminal"), ("--layer", "0", "--head", "5", "--json"),
                 ("--method", "rollout", "-o", str(tmp_path / "m.png"))):
        code, out, err = cli("heatmap", str(saved), *args)
        assert code == 0, (args, err)


def test_over_the_budget_one_warning_gives_the_command_that_keeps_everything(cli, monkeypatch, tiny_bert):
    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", "0")
    code, _, err = cli("explain", CAT, "--model", str(tiny_bert), "--layer", "1")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "capture kept only" in line]
    assert len(warnings) == 1
    kept = load_capture(last_capture_path())
    assert kept.layer_ids == [1] and not kept.complete
    command = warnings[0].split("to keep everything: ", 1)[1]
    assert command.startswith("ATTN_CAPTURE_BUDGET_MB=")
    budget, *argv = shlex.split(command)
    assert argv[:3] == ["attn", "explain", CAT]
    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", budget.split("=", 1)[1])
    code, _, err = cli(*argv[1:])
    assert code == 0 and "capture kept only" not in err, err
    assert load_capture(last_capture_path()).complete


def test_a_bad_budget_is_one_line(cli, monkeypatch, tiny_bert):
    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", "lots")
    before = last_capture_path().exists()
    code, _, err = cli("explain", CAT, "--model", str(tiny_bert))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ATTN_CAPTURE_BUDGET_MB" in err
    assert last_capture_path().exists() == before


@pytest.mark.parametrize("value", ["inf", "-5", "nan", "1e999", "64MB"])
def test_a_budget_that_is_no_size_is_refused_before_the_model_loads(cli, monkeypatch, value):
    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", value)
    code, _, err = cli("explain", CAT, "--model", "no/such-model-anywhere")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ATTN_CAPTURE_BUDGET_MB" in err, err


def test_a_model_with_learned_sinks_says_its_rows_sum_to_at_most_1(cli, tmp_path):
    """gpt-oss: its softmax gives part of each row to a learned sink; the notes say so instead of 'sums to 1'."""
    from tiny_matrix import BY_KEY

    folder = BY_KEY["gpt-oss"].build(tmp_path / "gpt-oss")
    code, out, err = cli("explain", CAT, "--model", str(folder), "--matrix")
    assert code == 0, err
    assert "each row sums to at most 1" in out and "each row sums to 1" not in out
    cap = load_capture(last_capture_path())
    assert cap.arch["sinks"] is True and cap.attentions.sum(-1).min() < 0.99
    code, out, err = cli("heatmap", "--terminal")
    assert code == 0 and "at most 1" in out, err


def test_classify_json_flags_sink_patches(cli):
    """The [CLS] summary's top patches carry the same sink flag as heatmap's top entries."""
    code, out, err = cli("classify", STAR, "--model", "shapes", "--json")
    assert code == 0, err
    top = json.loads(out)["images"][0]["cls_top_patches"]
    code, again, err = cli("heatmap", "--json")
    assert code == 0, err
    want = {(t["row"], t["col"]): t["sink"] for t in json.loads(again)["top"]}
    assert top and all(t["sink"] == want[(t["row"], t["col"])] for t in top if (t["row"], t["col"]) in want)
    assert any(t["sink"] is True for t in top)  # the shapes star's top patches are layer-5 sinks
