"""`attn explain` on the embedded MiniLM and tiny BERT/GPT-2: shapes, labels, views, JSON and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from attncli.capture import Capture
from attncli.sources import capture_text
from attncli.errors import UsageError
from attncli.views.explain import find_token, layer_view, token_profile
from attncli.render.tables import top_table
from conftest import CAT


@pytest.fixture(scope="module")
def minilm_cat() -> Capture:
    return capture_text(CAT, "minilm")


def test_minilm_capture_shapes_and_rows(minilm_cat):
    cap = minilm_cat
    assert cap.attentions.shape == (6, 12, 13, 13)
    assert cap.attentions.dtype == np.float32
    np.testing.assert_allclose(cap.attentions.sum(-1), 1.0, atol=1e-5)
    assert cap.tokens == ["[CLS]", "The", "cat", "sat", "on", "the", "mat", "because", "it", "was", "tired", ".",
                          "[SEP]"]
    assert cap.special == [True] + [False] * 11 + [True]
    assert cap.arch["layers"] == 6 and cap.arch["heads"] == 12


def test_minilm_it_looks_at_cat_in_the_last_layers(minilm_cat):
    # Observed on the real weights: with heads averaged, "it" (token 8) puts most of its non-special,
    # non-self attention on "cat" (token 2) in layers 3, 4 and 5.
    profile = token_profile(minilm_cat, find_token(minilm_cat, "it"), skip_special=True)
    others = [j for j, i in enumerate(profile.indices) if i != 8]
    winners = [profile.indices[others[int(np.argmax(row[others]))]] for row in profile.rows]
    assert winners[3:] == [2, 2, 2]
    np.testing.assert_allclose(profile.rows.sum(-1), 1.0, atol=1e-5)


def test_cli_token_it_summary(cli):
    code, out, err = cli("explain", CAT, "--token", "it")
    assert code == 0, err
    assert 'attends most to "cat" (token 2): the top such token in 3 of 6 layers (3, 4, 5)' in " ".join(out.split())


def test_skip_special_renormalises_rows(minilm_cat):
    view = layer_view(minilm_cat, skip_special=True)
    assert view.labels[0] == "The" and "[SEP]" not in view.labels
    np.testing.assert_allclose(view.matrix.sum(-1), 1.0, atol=1e-5)
    full = minilm_cat.map(-1)[1:12, 1:12]
    np.testing.assert_allclose(view.matrix, full / full.sum(-1, keepdims=True), atol=1e-6)


def _capture(matrix: list[list[float]], tokens: list[str], special: list[bool]) -> Capture:
    att = np.array(matrix, dtype=np.float32)[None, None]  # (1 layer, 1 head, q, k)
    return Capture(attentions=att, tokens=tokens, special=special, model_id="hand-made")


def test_top_table_exact_rendering():
    cap = _capture([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], ["[CLS]", "hi", "[SEP]"],
                   [True, False, True])
    console = Console(record=True, width=60, color_system=None)
    console.print(top_table(layer_view(cap), 2, n_heads=1))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert "\n".join(lines) + "\n" == (
        "Layer 0 · its only head · hand-made\n"
        "┏━━━┳━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━┓\n"
        "┃ # ┃ token ┃ 1st         ┃ 2nd         ┃\n"
        "┡━━━╇━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━┩\n"
        "│ 0 │ [CLS] │ [CLS] 0.500 │ hi 0.300    │\n"
        "│ 1 │ hi    │ hi 0.600    │ [SEP] 0.300 │\n"
        "│ 2 │ [SEP] │ [SEP] 0.500 │ [CLS] 0.250 │\n"
        "└───┴───────┴─────────────┴─────────────┘\n"
    )


def test_json_schema(cli, tiny_bert):
    code, out, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--json", "--top-k", "2",
                         "--layer", "0", "--head", "1")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"schema", "title", "notes", "model", "method", "layer", "head", "fuse", "skip_special", "tokens",
                        "weights", "top"}
    assert doc["schema"] == "attncli.explain/1"
    assert (doc["layer"], doc["head"], doc["fuse"]) == (0, 1, None)
    assert len(doc["weights"]) == len(doc["tokens"]) == 5
    assert all(abs(sum(row) - 1) < 1e-4 for row in doc["weights"])
    assert [len(t["attends"]) for t in doc["top"]] == [2] * 5
    first = doc["top"][0]["attends"][0]
    assert set(first) == {"index", "token", "weight"}


def test_gpt2_labels_have_no_byte_markers(tiny_gpt2):
    cap = capture_text(CAT, str(tiny_gpt2))
    assert "".join(cap.tokens).replace(" ", "") == CAT.replace(" ", "")
    assert not any("Ġ" in t for t in cap.tokens)
    # causal model: nothing attends to the future
    upper = np.triu(cap.attentions, k=1)
    assert float(np.abs(upper).max()) == 0.0


def test_truncation_warns_with_count(cli, tiny_bert):
    long_text = " ".join(["cat"] * 40)  # 42 tokens with [CLS]/[SEP]; the tiny model takes 32
    code, out, err = cli("explain", long_text, "--model", str(tiny_bert), "--json")
    assert code == 0
    assert "dropped the last 10" in err
    assert len(json.loads(out)["tokens"]) == 32


def test_text_from_stdin_and_file(cli, tiny_bert, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"the dog ran\n"), encoding="utf-8"))
    code, out, err = cli("explain", "-", "--model", str(tiny_bert), "--json")
    assert code == 0, err
    assert [t["text"] for t in json.loads(out)["tokens"]][1:4] == ["the", "dog", "ran"]
    f = tmp_path / "s.txt"
    f.write_text("hello world")
    code, out, err = cli("explain", "--file", str(f), "--model", str(tiny_bert), "--json")
    assert [t["text"] for t in json.loads(out)["tokens"]][1:3] == ["hello", "world"]


@pytest.mark.parametrize("args, code, message", [
    (["   "], 2, "the text is empty"),
    ([], 2, "no text given"),
    (["the cat", "--layer", "7"], 2, "layer 7 is out of range: the model has 2 layers (0..1, or -1 for the last)"),
    (["the cat", "--head", "2"], 2, "head 2 is out of range: the model has 2 heads (0..1"),
    (["the cat the", "--token", "the"], 2, '--token "the" occurs 2 times (at 1, 3)'),
    (["the cat", "--token", "dog"], 2, "is not one of the tokens"),
    (["the cat", "--token", "9"], 2, "token 9 is out of range"),
    (["the cat", "--token", "cat", "--matrix"], 2, "--token and --matrix"),
    (["the cat", "--save", "out.txt"], 2, "saved as .npz"),
    (["the cat", "--file", "x.txt"], 2, "not both"),
    (["the cat", "--fuse", "median"], 2, "Invalid value for '--fuse'"),
])
def test_bad_input(cli, tiny_bert, args, code, message):
    got, out, err = cli("explain", *args, "--model", str(tiny_bert))
    assert got == code
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_model_without_attention_weights_is_an_error(tiny_bert, monkeypatch):
    from attncli.errors import CaptureError
    from attncli.models import load_model

    loaded = load_model(str(tiny_bert))
    loaded.model.set_attn_implementation("eager")  # the fallback for models that bypass AttentionInterface
    forward = loaded.model.forward

    def no_weights(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.attentions = None
        return out

    monkeypatch.setattr(loaded.model, "forward", no_weights)
    with pytest.raises(CaptureError, match="no attention weights"):
        capture_text("the cat", loaded)


def test_selective_model_whose_layers_are_not_found_is_an_error(tiny_bert, monkeypatch):
    from attncli.errors import CaptureError
    from attncli.families import selective
    from attncli.models import load_model

    loaded = load_model(str(tiny_bert))
    assert selective.is_selective(loaded.model)
    monkeypatch.setattr(selective, "self_attention_layers", lambda model: {})
    with pytest.raises(CaptureError, match="never ran attention layer"):
        capture_text("the cat", loaded)


def test_find_token_accepts_negative_index(minilm_cat):
    assert find_token(minilm_cat, "-1") == 12
    with pytest.raises(UsageError):
        find_token(minilm_cat, "-14")
