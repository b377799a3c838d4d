"""The corpus run on one machine: inputs streamed in chunks, one process or ``workers`` processes, resumable.

A chunk is ``chunk`` consecutive inputs (default 8 batches). Each chunk is captured in batches (sorted by length
inside it), turned into per-input records and folded into a chunk-sized :class:`Running`, which is then added
to the run's total in chunk order. Only one chunk's captures exist at a time (per worker), so memory does not
grow with the corpus. With ``workers`` > 1, a pool of processes (spawned, each loading the model once) does the
chunks and the parent adds them up in order — the same additions in the same order as one process, so the
result is the same to the last bit. After each chunk the checkpoint is written (see attncli.corpus.checkpoint).
"""

from __future__ import annotations

import collections
import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from attncli.choices import Device, Purpose
from attncli.corpus import checkpoint
from attncli.corpus.aggregate import Running
from attncli.corpus.readers import Corpus, fingerprint

if TYPE_CHECKING:
    from attncli.families.loaded import LoadedModel

# progress(done, total or None, inputs per second): the CLI draws it; the core never prints.
Progress = Callable[[int, "int | None", float], None]


@dataclass(frozen=True)
class RunOptions:
    """How a corpus run goes: model, batching, engine, where the checkpoint and the rows go."""

    model: str
    device: str = Device.cpu.value
    batch_size: int = 16
    max_tokens: int | None = None  # text inputs with more tokens are left out (counted as skipped)
    chunk: int | None = None  # inputs per chunk (default 8 batches)
    workers: int = 1
    save: str | None = None  # --save FILE.parquet: one row per input × layer × head
    checkpoint: str | None = None  # default: the cache folder, named by the run's key
    restart: bool = False
    threads: int | None = None  # torch threads per process (default: cores / workers)

    @property
    def chunk_size(self) -> int:
        """Inputs per chunk."""
        return self.chunk or 8 * max(1, self.batch_size)


@dataclass
class CorpusRun:
    """A finished (or resumed-and-finished) run: the sums, the model it ran, and what it said along the way."""

    running: Running
    model_id: str
    modality: str
    corpus: str
    layers: int
    heads: int
    grid: tuple[int, int] | None = None  # images: the patch grid (rows, cols)
    resumed_from: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    saved: str | None = None


def run_key(corpus: Corpus, options: RunOptions) -> dict:
    """What makes two runs the same run (a checkpoint is only resumed under the same key)."""
    return {"corpus": fingerprint(corpus), "model": options.model, "batch_size": options.batch_size,
            "max_tokens": options.max_tokens, "chunk": options.chunk_size, "save": options.save}


def chunks(corpus: Corpus, size: int, skip: int = 0) -> Iterator[list[tuple[int, Any]]]:
    """Consecutive lists of ``size`` (position, item) pairs, after the first ``skip`` inputs.

    An input's number is its position in the run (0-based, after blank lines, --limit or --sample), the same
    whichever engine reads it.
    """
    items = itertools.islice(iter(corpus), skip, None)
    position = skip
    while True:
        chunk = [(position + i, item) for i, (_, item) in enumerate(itertools.islice(items, size))]
        if not chunk:
            return
        position += len(chunk)
        yield chunk


def process_chunk(loaded: "LoadedModel", modality: str, items: list[tuple[int, Any]], batch_size: int,
                  max_tokens: int | None, rows: bool) -> tuple[Running, "dict | None"]:
    """One chunk's sums (and its parquet rows, ordered by input, when asked)."""
    from attncli.corpus.batches import image_captures, text_captures
    from attncli.corpus.records import record
    from attncli.corpus.records import rows as record_rows

    part = Running()
    table: dict[str, list] | None = {} if rows else None
    captures = (image_captures(items, loaded, batch_size) if modality == "image"
                else text_captures(items, loaded, batch_size, max_tokens))
    found = []
    for index, item, capture, truncated in captures:
        if capture is None:
            part.skip()
            continue
        found.append(record(index, str(item), capture, truncated))
    for rec in sorted(found, key=lambda r: r.index):  # input order: the sums do not depend on batching order
        part.add(rec)
        if table is not None:
            for name, values in record_rows(rec).items():
                table.setdefault(name, []).extend(values)
    return part, table


def load(options: RunOptions, modality: str) -> "LoadedModel":
    """The model, loaded for text or images."""
    from attncli.sources import load as load_model

    purpose = Purpose.image if modality == "image" else Purpose.text
    return load_model(options.model, purpose, device=options.device)


def run(corpus: Corpus, options: RunOptions, progress: Progress | None = None,
        loaded: "LoadedModel | None" = None) -> CorpusRun:
    """Stream the corpus through the model and return the sums; resumes from a checkpoint of the same run."""
    key = run_key(corpus, options)
    ck_path = Path(options.checkpoint) if options.checkpoint else checkpoint.default_path(key)
    state = None if options.restart else checkpoint.load(ck_path, key)
    total, meta = (state if state is not None else (Running(), {"key": key, "done": 0, "chunks": 0}))
    resumed = meta["done"]
    parts = _parts_dir(options.save)
    if options.save and not resumed and parts.exists():
        _clear(parts)
    expected = corpus.count()
    if progress is not None:
        progress(resumed, expected, 0.0)
    loaded = loaded if loaded is not None or options.workers > 1 else load(options, corpus.modality)
    started, before = time.monotonic(), resumed  # the rate counts inputs, not the model's loading
    results = _results(corpus, options, resumed, loaded)
    for items, (part, table) in results:
        if items is None:  # the workers have loaded the model: the rate counts inputs from here
            started = time.monotonic()
            continue
        if table is not None:
            _write_part(parts / f"part-{meta['chunks']:06d}.parquet", table)
        total.merge(part)
        meta["done"] += len(items)
        meta["chunks"] += 1
        checkpoint.save(ck_path, total, meta)
        if progress is not None:
            rate = (meta["done"] - before) / max(time.monotonic() - started, 1e-9)
            progress(meta["done"], expected, rate)
    info = _model_info(loaded, options, corpus.modality) if loaded is not None else _model_info(None, options,
                                                                                                 corpus.modality)
    out = CorpusRun(total, info["model_id"], corpus.modality, corpus.name, info["layers"], info["heads"],
                    resumed_from=resumed, seconds=time.monotonic() - started)
    if "_grid" in total.a:
        out.grid = tuple(int(v) for v in total.a["_grid"])
    if total.empty:
        from attncli.errors import UsageError

        raise UsageError(f"--corpus {corpus.spec.path}: no input to analyse"
                         + (f" ({total.count('skipped')} longer than --max-tokens)" if total.count("skipped") else ""),
                         "check the file, --field/--column, and --max-tokens")
    if options.save:
        out.saved = str(_combine(parts, Path(options.save)))
    checkpoint.remove(ck_path)
    return out


def _results(corpus: Corpus, options: RunOptions, skip: int, loaded: "LoadedModel | None") -> Iterator:
    """(chunk items, (chunk sums, rows)) in chunk order, from this process or a pool of workers."""
    wanted = options.save is not None
    if options.workers <= 1:
        if options.threads:
            import torch

            torch.set_num_threads(options.threads)
        for items in chunks(corpus, options.chunk_size, skip):
            yield items, process_chunk(loaded, corpus.modality, items, options.batch_size, options.max_tokens, wanted)
        return
    import multiprocessing
    import os

    threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
    ctx = multiprocessing.get_context("spawn")  # not fork: OpenMP and loaded torch state are not fork-safe
    with ctx.Pool(options.workers, initializer=_worker_init, initargs=(asdict(options), corpus.modality, threads)) as pool:
        pool.map(_ready, range(options.workers), chunksize=1)  # every worker started, its model loaded
        yield None, (None, None)
        window: "collections.deque" = collections.deque()  # chunks under way, oldest first: results in chunk order
        for items in chunks(corpus, options.chunk_size, skip):
            window.append((items, pool.apply_async(_worker_chunk, (items,))))
            if len(window) >= 2 * options.workers:  # a bounded look-ahead: memory stays a few chunks per worker
                done, result = window.popleft()
                yield done, _unpack(result.get())
        while window:
            done, result = window.popleft()
            yield done, _unpack(result.get())


def _ready(_: int) -> bool:
    return "loaded" in _WORKER


def _unpack(result: tuple[dict, "dict | None"]) -> tuple[Running, "dict | None"]:
    return Running(result[0]), result[1]


_WORKER: dict[str, Any] = {}


def _worker_init(options: dict, modality: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    opts = RunOptions(**options)
    _WORKER.update(loaded=load(opts, modality), modality=modality, options=opts)


def _worker_chunk(items: list) -> tuple[dict, "dict | None"]:
    opts: RunOptions = _WORKER["options"]
    part, table = process_chunk(_WORKER["loaded"], _WORKER["modality"], items, opts.batch_size, opts.max_tokens,
                                opts.save is not None)
    return part.state(), table


def _model_info(loaded: "LoadedModel | None", options: RunOptions, modality: str) -> dict:
    """Model id, layers and heads (from the config alone when the model was loaded in workers)."""
    if loaded is not None:
        config, model_id = loaded.config, loaded.ref.model_id
    else:
        import transformers

        from attncli.models import resolve_model

        ref = resolve_model(options.model)
        config, model_id = transformers.AutoConfig.from_pretrained(ref.location), ref.model_id
    return {"model_id": model_id, "layers": int(config.num_hidden_layers), "heads": int(config.num_attention_heads)}


def _parts_dir(save: str | None) -> Path:
    """Where the parquet rows of finished chunks wait until the run ends."""
    return Path(f"{save}.parts") if save else Path(".")


def _clear(parts: Path) -> None:
    for old in parts.glob("part-*.parquet"):
        old.unlink()


def _write_part(path: Path, table: dict) -> None:
    """One chunk's rows as a parquet file, written atomically."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from attncli.cache import write_atomic

    buf = io.BytesIO()
    pq.write_table(pa.table(table), buf)
    write_atomic(path, buf.getvalue())


def _combine(parts: Path, target: Path) -> Path:
    """Stream the chunks' parquet files into one file (atomically) and remove them."""
    import pyarrow.parquet as pq

    from attncli.cache import write_atomic

    files = sorted(parts.glob("part-*.parquet"))

    def stream(fh: Any) -> None:
        writer = None
        for f in files:
            table = pq.read_table(f)
            if writer is None:
                writer = pq.ParquetWriter(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()

    write_atomic(target, stream)
    for f in files:
        f.unlink()
    parts.rmdir()
    return target
