"""The last-capture store: round trip, atomic writes, and explain writing it."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.capture import Capture, Prediction
from attncli.errors import CaptureError, StoreError, UsageError
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


@pytest.mark.usefixtures("over_budget")
def test_explain_stores_last_capture_and_save(cli, tiny_bert, tmp_path):
    target = tmp_path / "mine.npz"
    code, _, err = cli("explain", "the cat", "--model", str(tiny_bert), "--save", str(target))
    assert code == 0, err
    last = load_capture(last_capture_path())
    saved = load_capture(target)
    assert last.tokens == saved.tokens == ["[CLS]", "the", "cat", "[SEP]"]
    assert saved.attentions.shape == (1, 2, 4, 4)  # --layer -1 (the default) needs the last layer only
    assert saved.layer_ids == [1] and saved.total_layers == 2
    assert f"saved capture to {target}" in " ".join(err.split())


def test_save_replaces_an_existing_capture_file(cli, tiny_bert, tmp_path):
    target = tmp_path / "c.npz"
    for text in ("the cat", "the dog ran"):
        code, _, err = cli("explain", text, "--model", str(tiny_bert), "--save", str(target))
        assert code == 0 and f"saved capture to {target}" in " ".join(err.split()), err
    assert load_capture(target).text == "the dog ran"


@pytest.mark.usefixtures("over_budget")
def test_layers_all_keeps_every_layer_and_equals_the_one_layer_capture(cli, tiny_bert, tmp_path):
    code, _, err = cli("explain", "the cat", "--model", str(tiny_bert), "--save", str(tmp_path / "one.npz"))
    assert code == 0, err
    code, _, err = cli("explain", "the cat", "--model", str(tiny_bert), "--layers", "all",
                       "--save", str(tmp_path / "all.npz"))
    assert code == 0, err
    one, every = load_capture(tmp_path / "one.npz"), load_capture(tmp_path / "all.npz")
    assert every.attentions.shape == (2, 2, 4, 4) and every.layer_ids is None
    np.testing.assert_allclose(one.attentions[0], every.attentions[1], atol=1e-6)


@pytest.mark.usefixtures("over_budget")
def test_token_view_keeps_one_query_row(cli, tiny_bert, tmp_path):
    code, out, err = cli("explain", "the cat", "--model", str(tiny_bert), "--token", "cat", "--json",
                         "--save", str(tmp_path / "row.npz"))
    assert code == 0, err
    row = load_capture(tmp_path / "row.npz")
    assert row.attentions.shape == (2, 2, 1, 4) and row.query_ids == [2]


def test_a_layer_the_capture_lacks_names_what_it_has():
    cap = _capture()
    cap.layer_ids, cap.total_layers = [3, 5], 6
    assert cap.layer_index(5) == 1 and cap.layer_index(-1) == 1
    with pytest.raises(CaptureError, match="kept layers 3, 5 of m, not layer 4") as info:
        cap.layer_index(4)
    assert "--layers 4" in info.value.hint
    with pytest.raises(CaptureError, match="needs the whole model"):
        cap.require("--method rollout")
    cap.query_ids = [0, 2, 4, 1, 3]  # and some rows: one fix says both
    with pytest.raises(CaptureError, match="kept only layers 3, 5 of 6 and the rows of 5 of 5 tokens") as info:
        cap.require("--method rollout")
    assert info.value.hint == "capture again with --layers all, without --token"


def test_one_layer_loads_alone_and_float16_is_stored_when_asked(tmp_path):
    from attncli.store import load_layer

    cap = _capture()
    path = save_capture(cap, tmp_path / "c.npz", "float16")
    with np.load(path) as data:
        assert data["attentions.1"].dtype == np.float16 and "attentions.0" in data.files
    np.testing.assert_allclose(load_layer(-1, path), cap.attentions[1], atol=1e-3)
    assert load_capture(path).attentions.dtype == np.float32


def test_float16_by_default_above_the_threshold(monkeypatch):
    import attncli.store as store

    cap = _capture()
    assert store.stored_dtype(cap).value == "float32"
    monkeypatch.setattr(store, "FLOAT16_ABOVE_MB", 0)
    assert store.stored_dtype(cap).value == "float16"


def test_last_capture_keeps_to_its_budget():
    from attncli.choices import StoreDtype
    from attncli.store import fit_budget

    cap = _capture()  # 2 layers of 3 x 5 x 5 float32 = 300 bytes each
    kept, note = fit_budget(cap, 350, StoreDtype.float32)
    assert kept.attentions.shape[0] == 1 and kept.layer_ids == [0] and kept.total_layers == 2
    assert "kept layer 0 of the 2 captured" in note and "--save" in note
    assert fit_budget(cap, 600, StoreDtype.float32) == (cap, None)


@pytest.mark.usefixtures("over_budget")
def test_a_view_of_fused_heads_keeps_only_the_fused_map_and_shows_the_same(cli, tiny_bert, tmp_path):
    """`explain --layer 1` (no --save, no page) keeps one map, the heads' mean; what it shows is unchanged."""
    code, fused_out, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1", "--json")
    assert code == 0, err
    fused = load_capture(last_capture_path())
    code, every_out, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1", "--json",
                               "--save", str(tmp_path / "heads.npz"))
    assert code == 0, err
    heads = load_capture(tmp_path / "heads.npz")
    assert fused.attentions.shape == (1, 1, 5, 5) and fused.fused_heads == "mean" and fused.heads_total == 2
    assert heads.attentions.shape == (1, 2, 5, 5) and heads.fused_heads is None
    np.testing.assert_allclose(fused.attentions[0, 0], heads.attentions[0].mean(axis=0), atol=1e-6)
    assert fused_out == every_out  # the same view, title "mean of 2 heads" included
    code, max_out, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1", "--fuse", "max")
    assert code == 0, err
    assert "max of 2 heads" in max_out and load_capture(last_capture_path()).fused_heads == "max"


@pytest.mark.usefixtures("over_budget")
@pytest.mark.parametrize("args, says", [
    (["heatmap", "--terminal", "--layer", "1", "--head", "0"],
     "this capture kept only the mean of its 2 heads, not head 0 (capture it again with --head 0 (or --heads all))"),
    (["heatmap", "--terminal", "--layer", "1", "--fuse", "min"],
     "this capture kept only the mean of its 2 heads, not their min (capture it again with --fuse min"),
    (["stats", "--last"], "attn stats reads each head, but this capture kept only the mean of its 2 heads"),
    (["heatmap", "--layer", "1", "-o", "page.html"], "the interactive page reads each head"),
])
def test_a_fused_capture_refuses_views_of_single_heads(cli, tiny_bert, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    assert cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1")[0] == 0
    before = last_capture_path().read_bytes()
    code, _, err = cli(*args)
    assert code != 0 and says in " ".join(err.split()) and not (tmp_path / "page.html").exists()
    assert last_capture_path().read_bytes() == before
    code, _, err = cli("heatmap", "--terminal", "--layer", "1")  # the mean it kept still re-renders
    assert code == 0, err


@pytest.mark.usefixtures("over_budget")
def test_saving_or_writing_a_page_keeps_every_head(cli, tiny_bert, tmp_path):
    code, _, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1",
                       "-o", str(tmp_path / "page.html"))
    assert code == 0, err
    assert load_capture(last_capture_path()).attentions.shape == (2, 2, 5, 5)  # the page shows every layer and head
    code, _, err = cli("explain", "the cat sat", "--model", str(tiny_bert), "--layer", "1",
                       "--save", str(tmp_path / "kept.npz"))
    assert code == 0, err
    assert load_capture(tmp_path / "kept.npz").attentions.shape == (1, 2, 5, 5)
