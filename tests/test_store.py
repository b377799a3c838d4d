"""The last-capture store: round trip, atomic writes, and explain writing it."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.capture import Capture, Prediction
from attncli.errors import StoreError, UsageError
from attncli.grid import PatchGrid
from attncli.store import last_capture_path, load_capture, save_capture


def _capture() -> Capture:
    att = np.random.default_rng(0).random((2, 3, 5, 5)).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    return Capture(attentions=att, tokens=list("abcde"), special=[True, False, False, False, False],
                   model_id="m", kind="image", grid=PatchGrid(2, 2, 8, 8, 16, 16),
                   image=np.zeros((16, 16, 3), np.uint8), predictions=[Prediction(1, "dog", 0.9)], source="x.png")


def test_round_trip(tmp_path):
    cap = _capture()
    path = save_capture(cap, tmp_path / "c.npz")
    back = load_capture(path)
    np.testing.assert_array_equal(back.attentions, cap.attentions)
    assert back.grid == cap.grid and back.predictions == cap.predictions and back.tokens == cap.tokens
    assert back.image.shape == (16, 16, 3) and back.source == "x.png"


def test_failed_write_leaves_old_file_untouched(tmp_path, monkeypatch):
    path = save_capture(_capture(), tmp_path / "c.npz")
    before = path.read_bytes()
    import attncli.store as store

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(StoreError, match="No space left"):
        save_capture(_capture(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temp file left behind


def test_missing_last_capture_says_what_to_do():
    with pytest.raises(StoreError, match="attn explain"):
        load_capture()


def test_not_a_capture(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(UsageError, match="not a whole attncli capture: it is not a zip archive"):
        load_capture(bad)
    with pytest.raises(UsageError):
        save_capture(_capture(), tmp_path / "c.txt")


def test_explain_stores_last_capture_and_save(cli, tiny_bert, tmp_path):
    target = tmp_path / "mine.npz"
    code, _, err = cli("explain", "the cat", "--model", str(tiny_bert), "--save", str(target))
    assert code == 0, err
    last = load_capture(last_capture_path())
    saved = load_capture(target)
    assert last.tokens == saved.tokens == ["[CLS]", "the", "cat", "[SEP]"]
    assert saved.attentions.shape == (2, 2, 4, 4)
    assert f"saved capture to {target}" in " ".join(err.split())
