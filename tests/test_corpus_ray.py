"""The Ray engine on a local Ray started here (3 logical CPUs: 2 model actors of 1 CPU each, and one for Ray Data's reading): the local engine's numbers and rows."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.corpus.engine import RunOptions, run
from attncli.corpus.readers import CorpusSpec, open_corpus
from attncli.corpus.report import CorpusReport

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

SENTENCES = ["The cat sat on the mat because it was tired.", "hello world", "a cat", "It was a big, big dog.",
             "The big red dog ran to the house, and it was tired.", "play the red world", "the dog is in the house"]


@pytest.fixture
def local_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_ray_equals_the_local_engine(local_ray, tiny_bert, tmp_path):
    from attncli.corpus.rayengine import RayOptions, run_ray

    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "c.txt"
    path.write_text("\n".join(SENTENCES * 3) + "\n")
    corpus = open_corpus(CorpusSpec(str(path)))
    local = run(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=4, save=str(tmp_path / "l.parquet")))
    seen = []
    on_ray = run_ray(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=4, workers=2,
                                        save=str(tmp_path / "r.parquet")),
                     RayOptions(num_cpus=1), lambda done, total, rate: seen.append(done))
    assert seen[-1] == len(SENTENCES) * 3
    a, b = local.running.state(), on_ray.running.state()
    assert a.keys() == b.keys()
    for k in ("n", "tc", "roles", "inputs", "tokens"):  # counts: exactly
        assert np.array_equal(a[k], b[k]), k
    # Ray forms its own batches, so float32 weights differ in the last bits (as any other batching would)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
    ra, rb = CorpusReport(local), CorpusReport(on_ray)
    np.testing.assert_allclose(rb.mean_in, ra.mean_in, atol=1e-6)
    np.testing.assert_allclose(rb.mean_tok, ra.mean_tok, atol=1e-6)
    rows_l, rows_r = pq.read_table(tmp_path / "l.parquet").to_pydict(), pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert rows_l["input"] == rows_r["input"] and rows_l["item"] == rows_r["item"]
    np.testing.assert_allclose(np.array(rows_r["entropy"], float), np.array(rows_l["entropy"], float), atol=1e-9)


def test_interrupted_ray_run_resumes_from_its_checkpoint(local_ray, tiny_bert, tmp_path):
    from attncli.corpus.rayengine import RayOptions, run_ray

    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "c.txt"
    path.write_text("\n".join(SENTENCES * 3) + "\n")
    corpus = open_corpus(CorpusSpec(str(path)))
    whole = run(corpus, RunOptions(model=str(tiny_bert), batch_size=2, chunk=4, checkpoint=str(tmp_path / "w.npz")))
    ck, rows = tmp_path / "ray.npz", tmp_path / "rows.parquet"
    opts = RunOptions(model=str(tiny_bert), batch_size=2, chunk=4, workers=2, checkpoint=str(ck), save=str(rows))

    def stop(done, total, rate):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ray(corpus, opts, RayOptions(num_cpus=1), stop)
    assert ck.exists()
    resumed = run_ray(corpus, opts, RayOptions(num_cpus=1))
    assert 8 <= resumed.resumed_from < len(SENTENCES) * 3
    assert not ck.exists()  # a finished run removes its checkpoint
    a, b = whole.running.state(), resumed.running.state()
    assert a.keys() == b.keys()
    for k in ("n", "tc", "roles", "inputs", "tokens"):  # every input counted once: counts exactly
        assert np.array_equal(a[k], b[k]), k
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
    table = pq.read_table(rows).to_pydict()
    heads = 2 * 2  # tiny_bert: 2 layers × 2 heads
    assert sorted(set(table["input"])) == list(range(len(SENTENCES) * 3))
    assert len(table["input"]) == len(SENTENCES) * 3 * heads

    # a local run's checkpoint is the same file: a run stopped locally goes on on Ray
    local_opts = RunOptions(model=str(tiny_bert), batch_size=2, chunk=4, workers=2, checkpoint=str(ck))
    with pytest.raises(KeyboardInterrupt):
        run(corpus, RunOptions(**{**local_opts.__dict__, "workers": 1}), stop)
    on_ray = run_ray(corpus, local_opts, RayOptions(num_cpus=1))
    assert on_ray.resumed_from >= 8
    for k in ("n", "tc", "roles", "inputs", "tokens"):
        assert np.array_equal(a[k], on_ray.running.state()[k]), k


def test_ray_reads_images_inside_a_dataset(local_ray, tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    from attncli.corpus.rayengine import RayOptions, run_ray
    from tiny_vision import make_vit

    model = str(make_vit(tmp_path / "vit"))
    rng = np.random.default_rng(2)
    pictures = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(5)]
    datasets.Dataset.from_dict({"image": pictures}, features=datasets.Features({"image": datasets.Image()})
                               ).save_to_disk(str(tmp_path / "ds"))
    corpus = open_corpus(CorpusSpec(str(tmp_path / "ds")))
    assert corpus.modality == "image"
    opts = RunOptions(model=model, batch_size=2, chunk=2, workers=2, checkpoint=str(tmp_path / "ck.npz"))
    local = run(corpus, RunOptions(**{**opts.__dict__, "workers": 1}))
    on_ray = run_ray(corpus, opts, RayOptions(num_cpus=1))
    a, b = local.running.state(), on_ray.running.state()
    assert a.keys() == b.keys() and b["inputs"] == 5
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
