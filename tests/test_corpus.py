"""`attn stats --corpus`: equal to the mean of `attn stats INPUT --json`, padding-neutral, resumable, one row per head."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attncli.corpus.engine import RunOptions, run
from attncli.corpus.readers import CorpusSpec, open_corpus
from attncli.corpus.records import STATS
from attncli.corpus.report import CorpusReport
from attncli.errors import UsageError

SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "hello world",
    "The big red dog ran to the house, and it was tired.",
    "a cat",
    "The dog is in the house of the cat.",
    "play the red world",
    "It was a big, big dog.",
]
SINGLE = ("entropy", "entropy_norm", "distance", "distance_rel", "sink", "self", "prev", "next")


@pytest.fixture
def corpus_txt(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES[:3]) + "\n\n" + "\n".join(SENTENCES[3:]) + "\n")  # a blank line is skipped
    return path


def _per_input_means(cli, model: str) -> dict:
    """The mean over inputs of each head's values in `attn stats TEXT --json` (None left out, as NaN)."""
    sums: dict = {}
    for text in SENTENCES:
        code, out, err = cli("stats", text, "--model", model, "--json")
        assert code == 0, err
        for h in json.loads(out)["heads"]:
            for s in SINGLE:
                if h[s] is not None:
                    sums.setdefault((h["layer"], h["head"], s), []).append(h[s])
    return {k: float(np.mean(v)) for k, v in sums.items()}


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt2"])
def test_corpus_equals_the_mean_of_per_input_stats(cli, corpus_txt, request, fixture):
    model = str(request.getfixturevalue(fixture))
    code, out, err = cli("stats", "--corpus", str(corpus_txt), "--model", model, "--json", "-b", "3")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.corpus-stats/1" and doc["inputs"] == len(SENTENCES)
    expected = _per_input_means(cli, model)
    for h in doc["heads"]:
        for s in SINGLE:
            want = expected.get((h["layer"], h["head"], s))
            got = h["stats"][s]["input"]["mean"]
            assert (want is None) == (got is None), (h["layer"], h["head"], s)
            if want is not None:
                assert abs(got - want) <= 1e-6, (h["layer"], h["head"], s, got, want)


def test_padding_adds_no_weight_and_matches_the_single_capture(tiny_bert, tiny_gpt2):
    from attncli.choices import Purpose
    from attncli.corpus.batches import _forward, text_captures
    from attncli.families.text_capture import capture_text
    from attncli.inputs import prepare_text
    from attncli.models import load_model

    for folder in (tiny_bert, tiny_gpt2):
        loaded = load_model(str(folder), Purpose.text)
        short, long_ = (prepare_text(t, loaded.processor, loaded.config) for t in (SENTENCES[1], SENTENCES[2]))
        n = short.model_inputs["input_ids"].shape[-1]
        weights = _forward(loaded, [short.model_inputs, long_.model_inputs])  # (2, L, H, N, N)
        assert weights.shape[-1] > n
        assert np.all(weights[0, :, :, :n, n:] == 0)  # padded keys: exactly no weight
        seen = 0
        for _index, text, capture, _ in text_captures(list(enumerate(SENTENCES)), loaded, batch_size=4):
            single = capture_text(text, loaded)
            assert capture.tokens == single.tokens
            np.testing.assert_allclose(capture.attentions, single.attentions, rtol=0, atol=1e-6)
            np.testing.assert_allclose(capture.attentions.sum(-1), 1, atol=1e-5)
            seen += 1
        assert seen == len(SENTENCES)


def test_batch_size_one_is_the_single_capture_bit_for_bit(tiny_bert):
    from attncli.choices import Purpose
    from attncli.corpus.batches import text_captures
    from attncli.families.text_capture import capture_text
    from attncli.models import load_model

    loaded = load_model(str(tiny_bert), Purpose.text)
    for _, text, capture, _ in text_captures(list(enumerate(SENTENCES[:3])), loaded, batch_size=1):
        assert np.array_equal(capture.attentions, capture_text(text, loaded).attentions)


def _sums(result) -> dict:
    return {k: np.asarray(v) for k, v in result.running.state().items()}


def test_interrupted_run_resumes_and_ends_with_the_same_sums(tiny_bert, corpus_txt, tmp_path):
    corpus = open_corpus(CorpusSpec(str(corpus_txt)))
    ck = tmp_path / "run.npz"
    opts = RunOptions(model=str(tiny_bert), batch_size=2, chunk=2, checkpoint=str(ck))
    whole = run(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=2, checkpoint=str(tmp_path / "w.npz")))
    assert not (tmp_path / "w.npz").exists()  # a finished run removes its checkpoint

    def stop_after_two_chunks(done, total, rate):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(corpus, opts, stop_after_two_chunks)
    assert ck.exists()
    resumed = run(corpus, opts)
    assert resumed.resumed_from == 4
    a, b = _sums(whole), _sums(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    other = RunOptions(model=str(tiny_bert), batch_size=3, chunk=2, checkpoint=str(ck))
    with pytest.raises(KeyboardInterrupt):
        run(corpus, opts, stop_after_two_chunks)
    with pytest.raises(UsageError, match="another run"):
        run(corpus, other)
    assert run(corpus, RunOptions(**{**other.__dict__, "restart": True})).resumed_from == 0


def test_token_weighted_means_and_counts(tiny_bert, corpus_txt):
    from attncli.choices import Purpose
    from attncli.families.text_capture import capture_text
    from attncli.models import load_model
    from attncli.views.stats import capture_stats

    result = run(open_corpus(CorpusSpec(str(corpus_txt))), RunOptions(model=str(tiny_bert), batch_size=1))
    report = CorpusReport(result)
    loaded = load_model(str(tiny_bert), Purpose.text)
    num, den = 0.0, 0
    for text in SENTENCES:  # the sink share of layer 1 head 0, weighted by each input's non-sink queries
        stats = capture_stats(capture_text(text, loaded))
        h = [x for x in stats.heads if (x.layer, x.head) == (1, 0)][0]
        plain = stats.n_tokens - len(stats.sinks)
        num, den = num + h.sink * plain, den + plain
    assert report.value("sink", "token")[1, 0] == pytest.approx(num / den, abs=1e-12)
    assert result.running.a["tc"][STATS.index("sink"), 1, 0] == den
    assert report.interval("sink")[1, 0] > 0


def test_save_parquet_has_one_row_per_input_layer_head(cli, tiny_bert, corpus_txt, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "rows.parquet"
    code, out, err = cli("stats", "--corpus", str(corpus_txt), "--model", str(tiny_bert), "--save", str(target),
                         "--json", "-b", "2")
    assert code == 0, err
    table = pq.read_table(target).to_pydict()
    assert len(table["input"]) == len(SENTENCES) * 2 * 2
    assert table["layer"][:4] == [0, 0, 1, 1] and table["head"][:4] == [0, 1, 0, 1]
    doc = json.loads(out)
    rows = [i for i, (l, h) in enumerate(zip(table["layer"], table["head"])) if (l, h) == (1, 1)]
    mean = float(np.mean([table["prev"][i] for i in rows]))
    assert mean == pytest.approx(doc["heads"][3]["stats"]["prev"]["input"]["mean"], abs=1e-6)
    assert not (tmp_path / "rows.parquet.parts").exists()


def test_readers_formats_limit_and_sample(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": s, "n": i}) for i, s in enumerate(SENTENCES)) + "\n")
    assert [t for _, t in open_corpus(CorpusSpec(str(jsonl), field="body"))] == SENTENCES
    with pytest.raises(UsageError, match="no field 'text'"):
        list(open_corpus(CorpusSpec(str(jsonl))))
    csv = tmp_path / "c.csv"
    csv.write_text("id,sentence\n" + "".join(f'{i},"{s}"\n' for i, s in enumerate(SENTENCES)))
    corpus = open_corpus(CorpusSpec(str(csv), column="sentence", limit=3))
    assert [t for _, t in corpus] == SENTENCES[:3] and corpus.count() == 3
    sample = open_corpus(CorpusSpec(str(csv), column="sentence", sample=3, seed=7))
    picked = list(sample)
    assert len(picked) == 3 and picked == list(sample) and [i for i, _ in picked] == sorted(i for i, _ in picked)
    assert list(open_corpus(CorpusSpec(str(csv), column="sentence", sample=3, seed=8))) != picked or True
    with pytest.raises(UsageError, match="--limit and --sample"):
        open_corpus(CorpusSpec(str(csv), limit=2, sample=2))
    with pytest.raises(UsageError, match="not a corpus format"):
        (tmp_path / "x.docx").write_text("x")
        open_corpus(CorpusSpec(str(tmp_path / "x.docx")))
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": SENTENCES}), tmp_path / "c.parquet")
    assert [t for _, t in open_corpus(CorpusSpec(str(tmp_path / "c.parquet")))] == SENTENCES


def test_hf_dataset_folder(tmp_path, tiny_bert):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"sentence": SENTENCES}).save_to_disk(str(tmp_path / "ds"))
    corpus = open_corpus(CorpusSpec(str(tmp_path / "ds"), column="sentence"))
    assert corpus.fmt == "dataset" and corpus.modality == "text" and corpus.count() == len(SENTENCES)
    assert [t for _, t in corpus] == SENTENCES


def test_max_tokens_leaves_long_inputs_out_and_says_so(tiny_bert, corpus_txt):
    result = run(open_corpus(CorpusSpec(str(corpus_txt))), RunOptions(model=str(tiny_bert), max_tokens=6))
    report = CorpusReport(result)
    assert report.inputs + result.running.count("skipped") == len(SENTENCES)
    assert result.running.count("skipped") > 0
    assert any("longer than --max-tokens" in n for n in report.to_dict()["notes"])


def test_image_folder_equals_per_image_stats(tmp_path, cli):
    from PIL import Image

    from tiny_vision import make_vit

    model = make_vit(tmp_path / "vit")
    folder = tmp_path / "imgs" / "sub"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    code, out, err = cli("stats", "--corpus", str(tmp_path / "imgs"), "--model", str(model), "--json", "-b", "2")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "image" and doc["inputs"] == 3 and doc["grid"] == [4, 4]
    assert len(doc["cls_map"]) == 2 and len(doc["cls_map"][0]) == 4
    per = [json.loads(cli("stats", str(folder / f"{i}.png"), "--model", str(model), "--json")[1]) for i in range(3)]
    for h in doc["heads"]:
        want = np.mean([p["heads"][2 * h["layer"] + h["head"]]["distance"] for p in per])
        assert h["stats"]["distance"]["input"]["mean"] == pytest.approx(want, abs=1e-5)
        assert h["stats"]["sep"]["input"]["mean"] is None


def test_images_inside_a_dataset_equal_the_same_images_in_a_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    pq = pytest.importorskip("pyarrow.parquet")
    from PIL import Image

    from tiny_vision import make_vit

    model = str(make_vit(tmp_path / "vit"))
    rng = np.random.default_rng(1)
    pictures = [Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 40, 3), dtype=np.uint8)) for i in range(3)]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(pictures):
        im.save(folder / f"{i}.png")
    features = datasets.Features({"label": datasets.Value("int64"), "picture": datasets.Image()})
    datasets.Dataset.from_dict({"label": [0, 1, 2], "picture": pictures}, features=features).save_to_disk(
        str(tmp_path / "ds"))
    corpus = open_corpus(CorpusSpec(str(tmp_path / "ds"), column="picture"))
    assert corpus.fmt == "dataset" and corpus.modality == "image" and corpus.count() == 3
    opts = dict(model=model, batch_size=2, chunk=2)
    from_folder = run(open_corpus(CorpusSpec(str(folder))), RunOptions(**opts))
    from_dataset = run(corpus, RunOptions(**opts, save=str(tmp_path / "rows.parquet")))
    a, b = from_folder.running.state(), from_dataset.running.state()
    assert a.keys() == b.keys() and from_dataset.grid == from_folder.grid
    for k in a:
        assert np.array_equal(a[k], b[k]), k  # the same pixels, batches and additions: the same sums
    assert sorted(set(pq.read_table(tmp_path / "rows.parquet").column("item").to_pylist())) == [
        "row 0", "row 1", "row 2"]
    with pytest.raises(UsageError, match="int64 values, neither text nor images"):
        open_corpus(CorpusSpec(str(tmp_path / "ds"), column="label"))


def test_cli_refuses_single_input_options_and_npz_save(cli, corpus_txt, tiny_bert):
    code, _, err = cli("stats", "hello", "--corpus", str(corpus_txt))
    assert code != 0 and "INPUT applies to one input" in err
    code, _, err = cli("stats", "--corpus", str(corpus_txt), "--model", str(tiny_bert), "--save", "x.npz")
    assert code != 0 and ".parquet" in err
    code, _, err = cli("stats", "--corpus", str(corpus_txt), "--address", "x:1")
    assert code != 0 and "--engine ray" in err


def test_terminal_table_and_page(cli, tiny_bert, corpus_txt, tmp_path):
    code, out, err = cli("stats", "--corpus", str(corpus_txt), "--model", str(tiny_bert), "-o",
                         str(tmp_path / "p.html"), "--plot", str(tmp_path / "f.png"))
    assert code == 0, err
    assert out.startswith("Head statistics over corpus.txt") and "role (inputs)" in out
    assert "input-weighted means ±95% interval" in out
    assert (tmp_path / "p.html").read_text().count("<tr>") == 1 + 4
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert "inputs: 7/7" in err


@pytest.mark.slow  # spawns worker processes that each load a model: pytest -m slow
def test_workers_give_the_same_sums_as_one_process(tiny_bert, corpus_txt):
    corpus = open_corpus(CorpusSpec(str(corpus_txt)))
    one = run(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=2))
    two = run(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=2, workers=2, threads=1))
    a, b = _sums(one), _sums(two)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert two.model_id == one.model_id and (two.layers, two.heads) == (2, 2)
    assert not math.isnan(CorpusReport(two).value("entropy")[0, 0])


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_result(tiny_bert, tmp_path, attn):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "many.txt"
    path.write_text("\n".join(SENTENCES * 300) + "\n")
    args = ["stats", "--corpus", str(path), "--model", str(tiny_bert), "--json", "-b", "4"]
    whole = attn(*args, "--checkpoint", str(tmp_path / "a.npz"))
    assert whole.returncode == 0, whole.stderr
    ck = tmp_path / "b.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "attncli", *args, "--checkpoint", str(ck)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not ck.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "the run ended before it could be killed: make the corpus longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists()
    resumed = attn(*args, "--checkpoint", str(ck))
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(whole.stdout), json.loads(resumed.stdout)
    assert a["heads"] == b["heads"] and a["inputs"] == b["inputs"] == len(SENTENCES) * 300
    assert any("resumed from a checkpoint" in n for n in b["notes"])
