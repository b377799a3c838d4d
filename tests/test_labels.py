"""Honest token labels, whole words for --token, and model safety (pickle, missing weights, quiet libraries)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from attncli.errors import ModelLoadError, UsageError


@pytest.fixture(scope="module")
def t5(tmp_path_factory) -> Path:
    from tiny_seq2seq import make_t5

    return make_t5(tmp_path_factory.mktemp("t5"))


def _labels(model: Path, text: str) -> tuple[list[str], list]:
    """(labels, word ids) of text under a model's own tokenizer."""
    from transformers import AutoTokenizer

    from attncli.inputs import prepare_text

    tok = AutoTokenizer.from_pretrained(model)
    prepared = prepare_text(text, tok, type("Config", (), {})())
    return prepared.labels, prepared.words


def test_wordpiece_labels_are_source_text(tiny_bert):
    labels, words = _labels(tiny_bert, "the cats played")
    assert labels == ["[CLS]", "the", "cat", "s", "play", "ed", "[SEP]"]
    assert words == [None, 0, 1, 1, 2, 2, None]


def test_byte_level_pieces_of_one_character_are_numbered(tiny_gpt2):
    labels, _ = _labels(tiny_gpt2, "The cat 🙂 café")
    assert labels[:2] == ["The", "cat"]
    assert [t for t in labels if t.startswith("🙂")] == ["🙂[1/4]", "🙂[2/4]", "🙂[3/4]", "🙂[4/4]"]
    assert labels[-2:] == ["é[1/2]", "é[2/2]"]


def test_sentencepiece_lone_marker_is_a_space_not_a_copy(t5):
    labels, _ = _labels(t5, "the cat sat")
    from transformers import AutoTokenizer

    raw = AutoTokenizer.from_pretrained(t5).tokenize("the cat sat")
    lone = [i for i, r in enumerate(raw) if r == "▁"]
    assert lone, raw  # the tiny unigram model does split a lone ▁ off
    assert all(labels[i] == "␣" for i in lone)
    assert "".join(t for t in labels if t not in ("␣", "</s>")) == "thecatsat"


def test_token_takes_a_whole_word_and_averages_its_pieces(tiny_gpt2):
    from attncli.sources import capture_text
    from attncli.views.explain import find_word, token_profile

    capture = capture_text("to tomorow to", str(tiny_gpt2))
    pieces = find_word(capture, "tomorow")
    assert len(pieces) > 1 and "".join(capture.tokens[i] for i in pieces) == "tomorow"
    profile = token_profile(capture, pieces)
    alone = [token_profile(capture, i).rows for i in pieces]
    np.testing.assert_allclose(profile.rows, np.mean(alone, axis=0), atol=1e-6)
    np.testing.assert_allclose(profile.rows.sum(-1), 1.0, atol=1e-5)
    assert profile.label == "tomorow" and "their rows averaged" in profile.title
    with pytest.raises(UsageError, match=r'"to" occurs 2 times'):  # words, not the piece "to" of tomorow
        find_word(capture, "to")


def test_explain_token_word_on_the_cli(cli, tiny_bert):
    code, out, err = cli("explain", "the cats played", "--model", str(tiny_bert), "--token", "cats", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["token"] == {"index": 2, "text": "cats", "pieces": [2, 3]}


def test_align_drops_inputs_the_model_does_not_take(cli, tmp_path):
    from tiny_seq2seq import make_bart

    bart = make_bart(tmp_path / "bart")
    config = json.loads((bart / "tokenizer_config.json").read_text())
    config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    (bart / "tokenizer_config.json").write_text(json.dumps(config))
    code, out, err = cli("align", "the cat sat", "--model", str(bart), "--max-new-tokens", "3")
    assert code == 0, err


def test_pickle_is_refused_then_loaded_tensors_only(cli, tiny_bert, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = shutil.copytree(tiny_bert, tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    torch.save(load_file(tiny_bert / "model.safetensors"), folder / "pytorch_model.bin")
    code, _, err = cli("explain", "the cat", "--model", str(folder))
    assert code == 2 and "--allow-pickle" in err and "pytorch_model.bin" in err
    code, out, err = cli("explain", "the cat", "--model", str(folder), "--allow-pickle")
    assert code == 0, err
    # A payload that is not plain tensors does not load even when pickle is allowed.
    torch.save({"x": Path("boom")}, folder / "pytorch_model.bin")
    code, _, err = cli("explain", "the cat", "--model", str(folder), "--allow-pickle")
    assert code == 1 and len(err.splitlines()) == 1


def test_missing_weights_are_named(tiny_bert, tmp_path):
    from safetensors.torch import load_file, save_file

    from attncli.models import load_model

    folder = shutil.copytree(tiny_bert, tmp_path / "partial")
    tensors = load_file(tiny_bert / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if "layer.1.attention" not in k}, folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"weights were not in the checkpoint.*layer\.1\.attention"):
        load_model(str(folder))


def test_stale_temp_files_are_removed_on_the_next_write(tmp_path):
    from attncli.cache import write_atomic

    target = tmp_path / "last.npz"
    dead = tmp_path / f".last.npz.{2 ** 22 + 7}.abcd.tmp"  # a pid above Linux's pid_max: its writer is gone
    old = tmp_path / ".last.npz.kq3x.tmp"  # the old naming, without a pid
    live = tmp_path / f".last.npz.{os.getpid()}.zzzz.tmp"  # this process's own write in progress
    other = tmp_path / ".notes.npz.1.abcd.tmp"
    for f in (dead, old, live, other):
        f.write_bytes(b"x" * 100)
    os.utime(old, (1, 1))
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    assert not dead.exists() and not old.exists() and live.exists() and other.exists()


def test_library_chatter_stays_off_stderr(attn, tiny_bert, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_bert, tmp_path / "extra")
    tensors = load_file(tiny_bert / "model.safetensors")
    tensors["encoder.extra.weight"] = tensors["embeddings.word_embeddings.weight"][:, 0].clone()
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})  # an unexpected key: a LOAD REPORT
    done = attn("explain", "the cat", "--model", str(folder), "--save", str(tmp_path / "c.npz"),
                env={"ATTN_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"saved capture to {tmp_path / 'c.npz'}"]
