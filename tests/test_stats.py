"""Head statistics on constructed attention whose roles are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attncli.capture import Capture
from attncli.errors import UsageError
from attncli.grid import PatchGrid
from attncli.methods.stats import is_causal
from attncli.views.stats import capture_stats

N = 8  # [CLS] a b c d e f [SEP]
TOKENS = ["[CLS]", "a", "b", "c", "d", "e", "f", "[SEP]"]
SPECIAL = [True] + [False] * 6 + [True]


def previous_head() -> np.ndarray:
    a = np.zeros((N, N))
    a[0, 0] = 1
    for i in range(1, N):
        a[i, i - 1] = 1
    return a


def next_head() -> np.ndarray:
    a = np.zeros((N, N))
    a[N - 1, N - 1] = 1
    for i in range(N - 1):
        a[i, i + 1] = 1
    return a


def sink_head() -> np.ndarray:
    a = np.zeros((N, N))
    a[:, 0] = 1
    return a


def local_head(n: int) -> np.ndarray:
    """Weight spread evenly over the two tokens either side (never itself): no single score reaches 0.5."""
    a = np.zeros((n, n))
    for i in range(n):
        for j in (i - 2, i - 1, i + 1, i + 2):
            if 0 <= j < n:
                a[i, j] = 1
    return a / a.sum(axis=1, keepdims=True)


def text_capture() -> Capture:
    heads = [previous_head(), sink_head(), np.full((N, N), 1 / N), np.eye(N), next_head()]
    att = np.stack(heads)[None].astype(np.float32)  # (1 layer, 6 heads, N, N)
    att = np.concatenate([att, att[:, ::-1]])  # layer 1 has the heads in reverse order
    return Capture(attentions=att, tokens=TOKENS, special=SPECIAL, model_id="constructed")


def test_roles_of_constructed_text_heads():
    report = capture_stats(text_capture())
    roles = [h.role for h in report.heads]
    expected = ["previous-token", "sink", "global", "self", "next-token"]
    assert roles == expected + expected[::-1]
    assert report.sinks == [0, 7] and report.unit == "tokens" and not report.causal


def test_local_head_is_local_only_when_the_text_is_long_enough():
    for n, role in ((24, "local"), (8, "global")):
        att = local_head(n)[None, None].astype(np.float32)
        capture = Capture(attentions=att, tokens=[f"t{i}" for i in range(n)], special=[True] + [False] * (n - 1),
                          model_id="constructed")
        (head,) = capture_stats(capture).heads
        assert max(head.prev, head.next, head.self_, head.sink) < 0.5
        # ±2 tokens against uniform over n - 1 ordinary tokens: far below half of it at 24, not at 8
        assert head.role == role, (n, head.distance_rel)


def test_previous_token_head_numbers():
    prev = capture_stats(text_capture()).heads[0]
    # non-sink queries 1..6 all put weight 1 on the token before them
    assert prev.prev == pytest.approx(1.0) and prev.next == 0 and prev.self_ == 0
    assert prev.sink == pytest.approx(1 / 6)  # only query 1 ("a") looks at [CLS]
    assert prev.entropy == 0 and prev.entropy_norm == 0
    # query 1 has no weight on non-sink keys and is left out; queries 2..6 look 1 token back
    assert prev.distance == pytest.approx(1.0)


def test_sink_and_uniform_head_numbers():
    report = capture_stats(text_capture())
    sink, uniform = report.heads[1], report.heads[2]
    assert sink.sink == pytest.approx(1.0) and sink.entropy == 0
    assert math.isnan(sink.distance)  # no weight left on ordinary tokens: no distance to report
    assert sink.to_dict()["distance"] is None
    assert uniform.entropy == pytest.approx(math.log(N), rel=1e-6)
    assert uniform.entropy_norm == pytest.approx(1.0, rel=1e-6)
    assert uniform.distance_rel == pytest.approx(1.0, rel=1e-6)
    assert uniform.sink == pytest.approx(2 / N)
    # uniform over the 6 ordinary tokens: mean |i-j| over a 6×6 grid = 70/36
    assert uniform.distance == pytest.approx(70 / 36, rel=1e-6)


def test_image_distance_is_in_pixels():
    grid = PatchGrid(rows=2, cols=2, patch_height=8, patch_width=8, image_height=16, image_width=16)
    att = np.zeros((1, 2, 5, 5))
    att[0, 0, :, 0] = 1  # head 0: everything to CLS
    att[0, 0, 1:, 0] = 0
    for q, k in ((1, 4), (2, 3), (3, 2), (4, 1)):  # head 0 patches: the diagonally opposite patch
        att[0, 0, q, k] = 1
    att[0, 1] = 0.2  # head 1: uniform over all 5 tokens
    capture = Capture(attentions=att.astype(np.float32), tokens=["[CLS]", "(0,0)", "(0,1)", "(1,0)", "(1,1)"],
                      special=[True, False, False, False, False], model_id="constructed", kind="image", grid=grid)
    report = capture_stats(capture)
    opposite, uniform = report.heads
    assert report.unit == "px" and report.sinks == [0]
    assert opposite.distance == pytest.approx(8 * math.sqrt(2))
    # uniform over 4 patches: distances 0, 8, 8 and 8√2 from each query
    assert uniform.distance == pytest.approx((16 + 8 * math.sqrt(2)) / 4, rel=1e-6)
    assert uniform.sink == pytest.approx(0.2) and uniform.role == "global"


def test_causal_text_uses_the_first_token_as_sink_and_visible_keys():
    n = 6
    tri = np.tril(np.ones((n, n)))
    att = (tri / tri.sum(axis=1, keepdims=True))[None, None].astype(np.float32)
    assert is_causal(att)
    capture = Capture(attentions=att, tokens=list("abcdef"), special=[False] * n, model_id="gpt")
    (head,) = capture_stats(capture).heads
    assert capture_stats(capture).sinks == [0]
    assert head.entropy_norm == pytest.approx(1.0, rel=1e-6)  # uniform over what each query can see
    assert head.distance_rel == pytest.approx(1.0, rel=1e-6)
    assert head.next == 0


def test_select_layer_sort_csv_and_json():
    report = capture_stats(text_capture())
    last = report.select(layer=-1)
    assert {h.layer for h in last.heads} == {1} and len(last.heads) == 5
    by_prev = report.select(sort="prev")
    assert by_prev.heads[0].role == "previous-token" and by_prev.heads[0].layer == 0
    by_distance = report.select(sort="distance", ascending=True)
    assert math.isnan(by_distance.heads[-1].distance)  # undefined values go last
    with pytest.raises(UsageError, match="one of layer, head"):
        report.select(sort="nope")
    csv = report.to_csv().splitlines()
    assert csv[0] == "layer,head,entropy,entropy_norm,distance,distance_rel,sink,self,prev,next,role"
    assert csv[1].startswith("0,0,0,0,1,") and csv[1].endswith(",previous-token")
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert doc["schema"] == "attncli.stats/1" and doc["heads"][1]["role"] == "sink"
    assert doc["sinks"] == [{"index": 0, "token": "[CLS]"}, {"index": 7, "token": "[SEP]"}]


# --- the command -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    from tiny_vision import make_vit

    return make_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="module")
def noise_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype("uint8")).save(path)
    return path


def test_cli_stats_text_json_and_csv(cli, tiny_bert, tmp_path):
    code, out, err = cli("stats", "the cat sat on the mat", "--model", str(tiny_bert), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.stats/1" and doc["distance_unit"] == "tokens"
    assert len(doc["heads"]) == 4 and [(h["layer"], h["head"]) for h in doc["heads"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [s["token"] for s in doc["sinks"]] == ["[CLS]", "[SEP]"]
    # the last capture is kept: the same numbers come back from it as CSV on stdout
    code, csv_out, err = cli("stats", "--last", "--csv", "-", "--layer", "1", "--sort", "entropy")
    assert code == 0, err
    lines = csv_out.splitlines()
    assert lines[0].startswith("layer,head,entropy") and len(lines) == 3
    entropies = [float(line.split(",")[2]) for line in lines[1:]]
    assert entropies == sorted(entropies, reverse=True)
    assert {round(e, 4) for e in entropies} == {round(h["entropy"], 4) for h in doc["heads"] if h["layer"] == 1}
    target = tmp_path / "heads.csv"
    code, out, err = cli("stats", "--last", "--csv", str(target))
    assert code == 0, err
    assert target.read_text().splitlines()[0] == lines[0] and "layer" in out
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_stats_image_in_pixels_with_plot_and_saved_capture(cli, tiny_vit_dir, noise_png, tmp_path):
    plot, saved = tmp_path / "distance.png", tmp_path / "cap.npz"
    code, out, err = cli("stats", str(noise_png), "--model", str(tiny_vit_dir), "--plot", str(plot),
                         "--save", str(saved), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["distance_unit"] == "px" and doc["sinks"] == [{"index": 0, "token": "[CLS]"}]
    # 32 px image, 8 px patches: a 4x4 grid; no pair of patch centres is more than 24·√2 px apart
    assert all(0 < h["distance"] <= 24 * 2 ** 0.5 for h in doc["heads"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out2, err = cli("stats", str(saved), "--json")
    assert code == 0, err
    assert json.loads(out2)["heads"] == doc["heads"]


@pytest.mark.parametrize("args, message", [
    ((), "give exactly one input"),
    (("some text", "--last"), "INPUT and --last are different inputs"),
    (("missing.png",), "missing.png: no such file"),
    (("--last", "--model", "minilm"), "a saved capture already has its model"),
    (("--text", "a b", "--json", "--csv", "-"), "both write to stdout"),
    (("--text", "a b", "--sort", "bogus"), "--sort bogus: not a column"),
    (("--text", "a b", "--plot", "out.txt"), "unknown figure format"),
])
def test_cli_stats_usage_errors(cli, args, message):
    code, out, err = cli("stats", *args)
    assert code == 2 and message in err and out == "" and "Traceback" not in err
