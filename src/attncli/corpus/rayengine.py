"""The corpus run on a Ray cluster (``pip install "attncli[ray]"``): Ray Data reads, actors capture, the driver adds.

- Ray Data reads the inputs with its own readers (``read_text``, ``read_json``, ``read_csv``, ``read_parquet``,
  a folder of images as a list of paths, a datasets dataset (its images as stored bytes) and ``--sample`` through
  the local readers on the driver);
- ``map_batches`` runs :class:`ChunkActor` — one model per actor, ``workers`` actors with ``num_cpus`` /
  ``num_gpus`` each — on batches of ``chunk`` inputs: capture, per-input statistics, the batch's running sums;
- the driver receives each batch's sums in order (``preserve_order``) and adds them, as the local engine adds
  its chunks, then writes the same outputs. Only sums (and, with ``--save``, rows) travel back.

Failed tasks and actors are retried by Ray. The driver itself (Ctrl-C, ``kill -9``, a lost head node) is covered
by the local engine's checkpoint, in the same file format: after each batch it writes the sums and how many
leading inputs they cover. A run of the same corpus, model and options resumes from it (from a local run's
checkpoint too) — Ray Data has no row offset, so the remaining inputs are found with ``split_at_indices``, which
reads the inputs once into Ray's object store (spilled to disk when large) before the model actors start.
Ray forms its own batches, so a resumed run ends with the uninterrupted run's counts exactly and its means to
float rounding.
"""

from __future__ import annotations

import itertools
import os
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.corpus import checkpoint
from attncli.corpus.aggregate import Running
from attncli.corpus.engine import (CorpusRun, Progress, RunOptions, _clear, _combine, _model_info, _parts_dir,
                                   _write_part, run_key)
from attncli.corpus.readers import Corpus
from attncli.errors import UsageError

if TYPE_CHECKING:
    import ray.data


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and what each model actor asks of it."""

    address: str | None = None  # None: RAY_ADDRESS, else start a local Ray
    num_cpus: float = 1.0
    num_gpus: float = 0.0


class ChunkActor:
    """A Ray actor holding one model: a batch of inputs in, that batch's sums (and rows) out."""

    def __init__(self, options: dict, modality: str, threads: int) -> None:
        import torch

        from attncli.corpus.engine import load

        torch.set_num_threads(max(1, threads))
        self.options = RunOptions(**options)
        self.modality = modality
        self.loaded = load(self.options, modality)

    def __call__(self, batch: dict) -> dict:
        from attncli.corpus.engine import process_chunk

        # numbered within the batch: the driver adds the batch's offset; a dataset's image stays a dict of bytes
        items = [dict(i) if isinstance(i, dict) else str(i) for i in batch["item"]]
        part, table = process_chunk(self.loaded, self.modality, list(enumerate(items)),
                                    self.options.batch_size, self.options.max_tokens, self.options.save is not None)
        return {"state": [pickle.dumps(part.state())], "rows": [pickle.dumps(table)], "n": [len(items)]}


def _dataset(corpus: Corpus, skip: int = 0) -> "ray.data.Dataset":
    """The corpus as a Ray dataset with one column, ``item`` (text or image path), after its first ``skip`` inputs."""
    import ray.data

    spec, fmt = corpus.spec, corpus.fmt
    if spec.sample is not None or fmt in ("images", "dataset"):
        # a sample is drawn on the driver exactly as locally; a folder is a list of paths; a dataset goes through
        # our reader so blank rows are dropped the same way
        items = [item for _, item in itertools.islice(iter(corpus), skip, None)]
        if fmt == "dataset" and corpus.modality == "image":  # {"bytes", "path", "row"}: each actor decodes its own
            return ray.data.from_items([{"item": item} for item in items])
        return ray.data.from_items([{"item": str(item)} for item in items])
    elif fmt == "txt":
        ds = ray.data.read_text(spec.path).map_batches(_strip, batch_format="pandas")
        ds = ds.rename_columns({"text": "item"})
    else:
        column = spec.field or spec.column or "text"
        if fmt == "jsonl":
            ds = ray.data.read_json(spec.path, lines=True)
        elif fmt == "csv":
            ds = ray.data.read_csv(spec.path)
        else:
            ds = ray.data.read_parquet(spec.path, columns=[column])
        if column not in ds.columns():
            raise UsageError(f"{spec.path} has no column {column!r}", "name it with --field or --column")
        ds = ds.select_columns([column]).rename_columns({column: "item"}).map_batches(_strip, batch_format="pandas")
    if spec.limit is not None:
        ds = ds.limit(spec.limit)
    if skip:  # no row offset in Ray Data: split (this reads the inputs into the object store once)
        ds = ds.split_at_indices([skip])[1]
    return ds


def _strip(batch: Any) -> Any:
    """Text stripped, blank inputs dropped (as the local readers do)."""
    col = batch.columns[0]
    values = batch[col].astype(str).str.strip()
    keep = batch[col].notna() & (values != "")
    return batch.assign(**{col: values})[keep]


def connect(options: RayOptions) -> None:
    """Join the cluster at --address or RAY_ADDRESS, or start a local Ray; reuse one already joined."""
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray", 'pip install "attncli[ray]"') from None
    if ray.is_initialized():
        return
    address = options.address or os.environ.get("RAY_ADDRESS")
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def run_ray(corpus: Corpus, options: RunOptions, ray_options: RayOptions,
            progress: Progress | None = None) -> CorpusRun:
    """Stream the corpus through model actors on Ray; the same sums (to float rounding) as the local engine."""
    connect(ray_options)
    import ray
    import ray.data

    cpus = float(ray.cluster_resources().get("CPU", 0))
    if max(1, options.workers) * ray_options.num_cpus >= cpus:  # Ray Data's read tasks would wait forever
        raise UsageError(f"{options.workers} actors × {ray_options.num_cpus:g} CPU take all {cpus:g} CPUs of the "
                         "Ray cluster, and Ray Data needs one more to read the inputs",
                         "use fewer --workers or a smaller --num-cpus")
    key = run_key(corpus, options)
    ck_path = Path(options.checkpoint) if options.checkpoint else checkpoint.default_path(key)
    state = None if options.restart else checkpoint.load(ck_path, key)
    total, found = state if state is not None else (Running(), {"key": key, "done": 0, "chunks": 0})
    meta: dict[str, Any] = dict(found)
    resumed = meta["done"]
    parts = _parts_dir(options.save)
    if options.save and not resumed and parts.exists():
        _clear(parts)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # sums are added in input order, as the local engine adds them
    ctx.enable_progress_bars = False
    out = _dataset(corpus, resumed).map_batches(
        ChunkActor, batch_size=options.chunk_size, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=max(1, options.workers)), num_cpus=ray_options.num_cpus,
        num_gpus=ray_options.num_gpus, fn_constructor_kwargs={"options": asdict(options), "modality": corpus.modality,
                                                               "threads": int(max(1, ray_options.num_cpus))})
    expected = corpus.count()
    started = time.monotonic()
    if progress is not None:
        progress(resumed, expected, 0.0)
    for row in out.iter_rows():  # in input order: each row is the batch right after the rows before it
        total.merge(Running(pickle.loads(row["state"])))
        table = pickle.loads(row["rows"])
        if table is not None:
            table["input"] = [meta["done"] + i for i in table["input"]]  # the batch's positions, made the run's
            _write_part(parts / f"part-{meta['chunks']:06d}.parquet", table)
        meta["done"] += int(row["n"])
        meta["chunks"] += 1
        checkpoint.save(ck_path, total, meta)
        if progress is not None:
            progress(meta["done"], expected, (meta["done"] - resumed) / max(time.monotonic() - started, 1e-9))
    if total.empty:
        raise UsageError(f"--corpus {corpus.spec.path}: no input to analyse")
    info = _model_info(None, options, corpus.modality)
    result = CorpusRun(total, info["model_id"], corpus.modality, corpus.name, info["layers"], info["heads"],
                       resumed_from=resumed, seconds=time.monotonic() - started,
                       notes=[f"engine: Ray, {options.workers} model actor(s)"])
    if "_grid" in total.a:
        result.grid = tuple(int(v) for v in total.a["_grid"])
    if options.save:
        result.saved = str(_combine(parts, Path(options.save)))
    checkpoint.remove(ck_path)
    return result
