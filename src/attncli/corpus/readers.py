"""Corpus inputs, read lazily: a .txt (one input per line), .jsonl (a field), .csv/.parquet (a column), a folder of
images (recursively) or a Hugging Face ``datasets`` dataset (a ``load_from_disk`` folder or a cached name).

:func:`open_corpus` checks the path cheaply (no model, no full read) and returns a :class:`Corpus`; iterating it
yields ``(index, item)`` in a fixed order — ``index`` is the input's position in the source (0-based line, row or
file number), ``item`` a string (text) or a path (image). Blank text lines and rows are skipped; their indexes
are not reused. ``--limit`` keeps the first N inputs; ``--sample N --seed S`` a uniform sample of N found by
reservoir sampling (one pass, N items held), returned in source order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from attncli.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image

TEXT_SUFFIXES = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class CorpusSpec:
    """What to read and which inputs to keep."""

    path: str
    field: str | None = None  # .jsonl: the field holding the text (default "text")
    column: str | None = None  # .csv/.parquet/dataset: the column (default "text", or "image" for a dataset)
    limit: int | None = None
    sample: int | None = None
    seed: int = 0
    split: str | None = None  # a dataset with several splits: which one


@dataclass(frozen=True)
class Corpus:
    """A checked corpus: its format ("txt", "jsonl", "csv", "parquet", "images", "dataset") and modality."""

    spec: CorpusSpec
    fmt: str
    modality: str  # "text" or "image"

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        """(index, item) pairs: the limit or the sample applied."""
        items = _raw(self)
        if self.spec.sample is not None:
            return iter(reservoir(items, self.spec.sample, self.spec.seed))
        if self.spec.limit is not None:
            import itertools

            return itertools.islice(items, self.spec.limit)
        return items

    def count(self) -> int | None:
        """How many inputs a run will see (None when counting would cost a pass over a large source)."""
        n = _count(self)
        if n is None:
            return None
        for cap in (self.spec.limit, self.spec.sample):
            if cap is not None:
                n = min(n, cap)
        return n

    @property
    def remote(self) -> bool:
        """A URI (s3://, gs://, …) that only Ray Data reads."""
        return "://" in self.spec.path

    @property
    def name(self) -> str:
        """How the corpus is named in titles: its file or folder name, or the dataset name."""
        return Path(self.spec.path).name or self.spec.path


def open_corpus(spec: CorpusSpec) -> Corpus:
    """Classify and check a corpus path (exists, known format, options that fit it) without reading it all."""
    if spec.limit is not None and spec.sample is not None:
        raise UsageError("--limit and --sample both choose the inputs", "give one of them")
    for name, value in (("--limit", spec.limit), ("--sample", spec.sample)):
        if value is not None and value < 1:
            raise UsageError(f"{name} {value}: must be at least 1")
    if "://" in spec.path:  # s3://, gs://, hdfs://: read by Ray Data on the cluster
        fmt = TEXT_SUFFIXES.get(Path(spec.path).suffix.lower())
        if fmt is None:
            raise UsageError(f"--corpus {spec.path}: a remote corpus is a .txt, .jsonl, .csv or .parquet file")
        return _checked(Corpus(spec, fmt, "text"))
    path = Path(spec.path)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return _checked(Corpus(spec, "dataset", _dataset_modality(spec)))
        return _checked(Corpus(spec, "images", "image"))
    if path.is_file():
        fmt = TEXT_SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise UsageError(f"--corpus {spec.path}: not a corpus format",
                             "give a .txt (one input per line), .jsonl, .csv or .parquet file, a folder of images, "
                             "or a datasets folder")
        return _checked(Corpus(spec, fmt, "text"))
    if "/" in spec.path and not spec.path.startswith((".", "/")) or path.suffix == "":
        return _checked(Corpus(spec, "dataset", _dataset_modality(spec)))  # a hub dataset name, cached
    raise UsageError(f"--corpus {spec.path}: no such file or folder", "check the path")


def _checked(corpus: Corpus) -> Corpus:
    """Refuse options that do not apply to the corpus format."""
    spec = corpus.spec
    if spec.field is not None and corpus.fmt != "jsonl":
        raise UsageError("--field names a field of a .jsonl corpus", "use --column for .csv, .parquet and datasets")
    if spec.column is not None and corpus.fmt not in ("csv", "parquet", "dataset"):
        raise UsageError("--column names a column of a .csv, .parquet or datasets corpus",
                         "use --field for .jsonl; a .txt has one input per line")
    if corpus.fmt == "parquet":
        _require("pyarrow", "reading .parquet")
    if corpus.fmt == "dataset":
        _require("datasets", "reading a Hugging Face dataset")
    return corpus


def _require(module: str, what: str) -> None:
    """Refuse (one line) when an optional package is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{what} needs the {module} package", f'pip install "attncli[corpus]" (or pip install {module})')


def _raw(corpus: Corpus) -> Iterator[tuple[int, Any]]:
    """Every input of the source, in order, lazily."""
    fmt, spec = corpus.fmt, corpus.spec
    if corpus.remote:
        raise UsageError(f"--corpus {spec.path}: a remote path is read by Ray Data", "add --engine ray")
    if fmt == "txt":
        return _txt(Path(spec.path))
    if fmt == "jsonl":
        return _jsonl(Path(spec.path), spec.field or "text")
    if fmt == "csv":
        return _csv(Path(spec.path), spec.column or "text")
    if fmt == "parquet":
        return _parquet(Path(spec.path), spec.column or "text")
    if fmt == "images":
        return enumerate(str(p) for p in image_paths(Path(spec.path)))
    return _dataset_items(spec, corpus.modality)


def _txt(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path) as handle:
        for i, line in enumerate(handle):
            if line.strip():
                yield i, line.strip()


def _open_text(path: Path) -> Any:
    """A UTF-8 text handle; a file that is not UTF-8 fails with the line it was on, when that line is read."""
    return open(path, encoding="utf-8", errors="strict", newline=None)


def _jsonl(path: Path, field: str) -> Iterator[tuple[int, str]]:
    with _open_text(path) as handle:
        for i, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path} line {i + 1} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or field not in row:
                raise UsageError(f"{path} line {i + 1} has no field {field!r}", "name the field with --field NAME")
            value = row[field]
            if isinstance(value, str) and value.strip():
                yield i, value.strip()


def _csv(path: Path, column: str) -> Iterator[tuple[int, str]]:
    import csv

    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or []):
            raise UsageError(f"{path} has no column {column!r} (columns: {', '.join(reader.fieldnames or [])})",
                             "name it with --column NAME")
        for i, row in enumerate(reader):
            value = row.get(column) or ""
            if value.strip():
                yield i, value.strip()


def _parquet(path: Path, column: str) -> Iterator[tuple[int, str]]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    names = table.schema_arrow.names
    if column not in names:
        raise UsageError(f"{path} has no column {column!r} (columns: {', '.join(names)})", "name it with --column NAME")
    i = 0
    for batch in table.iter_batches(columns=[column], batch_size=4096):
        for value in batch.column(0).to_pylist():
            if isinstance(value, str) and value.strip():
                yield i, value.strip()
            i += 1


def image_paths(folder: Path) -> list[Path]:
    """Image files under a folder, recursively, sorted by their path (names only: headers are read when used)."""
    from attncli.images import image_extensions

    suffixes = image_extensions()
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not found:
        raise UsageError(f"--corpus {folder}: no image files in this folder (looked recursively)",
                         "give a folder of images, or a .txt/.jsonl/.csv/.parquet file")
    return found


def _load_dataset(spec: CorpusSpec) -> Any:
    """The dataset (one split) from a load_from_disk folder or the local Hugging Face cache (never the network)."""
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    try:
        if Path(spec.path).is_dir():
            data = datasets.load_from_disk(spec.path)
        else:
            data = datasets.load_dataset(spec.path, split=spec.split)
    except Exception as exc:  # datasets raises many kinds; one line says which
        raise UsageError(f"--corpus {spec.path}: cannot load this dataset ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})",
                         "give a load_from_disk folder, or a dataset name already in the local cache") from None
    if isinstance(data, datasets.DatasetDict):
        splits = list(data)
        if spec.split is None and len(splits) > 1:
            raise UsageError(f"--corpus {spec.path} has splits {', '.join(splits)}", "choose one with --split NAME")
        split = spec.split or splits[0]
        if split not in data:
            raise UsageError(f"--split {split}: the dataset has {', '.join(splits)}")
        data = data[split]
    return data


def _dataset_modality(spec: CorpusSpec) -> str:
    """'image' when the chosen (or default) column holds images, else 'text'."""
    _require("datasets", "reading a Hugging Face dataset")
    data = _load_dataset(spec)
    column = spec.column or ("text" if "text" in data.column_names else
                             "image" if "image" in data.column_names else None)
    if column is None or column not in data.column_names:
        raise UsageError(f"--corpus {spec.path} has no column {column or 'text'!r} "
                         f"(columns: {', '.join(data.column_names)})", "name it with --column NAME")
    feature = data.features[column]
    stored = isinstance(feature, dict) and "bytes" in feature  # an image column cast to its stored form
    if type(feature).__name__ == "Image" or stored:
        return "image"
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        kind = getattr(feature, "dtype", None) or type(feature).__name__
        raise UsageError(f"--corpus {spec.path}: column {column!r} holds {kind} values, neither text nor images",
                         "name a text or image column with --column")
    return "text"


def _dataset_items(spec: CorpusSpec, modality: str) -> Iterator[tuple[int, Any]]:
    data = _load_dataset(spec)
    column = spec.column or ("image" if modality == "image" else "text")
    data = data.select_columns([column])
    if modality == "image" and type(data.features[column]).__name__ == "Image":
        import datasets

        data = data.cast_column(column, datasets.Image(decode=False))  # the stored bytes: decoded as a file is
    for i, value in enumerate(data):
        item = value[column]
        if modality == "image":
            yield i, {**item, "row": i} if isinstance(item, dict) else item  # decoded when captured
        elif isinstance(item, str) and item.strip():
            yield i, item.strip()


def picture(item: Any) -> "Image.Image":
    """An image of a dataset (a PIL image, or a ``{"bytes", "path"}`` dict) as RGB, as a file would be loaded."""
    import io

    from PIL import Image, ImageOps

    from attncli.images import load_image, to_rgb

    if isinstance(item, dict):
        if item.get("bytes"):
            try:
                with Image.open(io.BytesIO(item["bytes"])) as im:
                    im.load()
                    return to_rgb(ImageOps.exif_transpose(im))
            except OSError as exc:
                raise UsageError(f"an image of the dataset cannot be decoded ({exc})") from None
        if item.get("path"):
            return load_image(item["path"])
        raise UsageError("an image of the dataset has neither bytes nor a path")
    if isinstance(item, Image.Image):
        return to_rgb(ImageOps.exif_transpose(item))
    raise UsageError(f"the image column holds {type(item).__name__} values, not images",
                     "name the column with --column")


def image_label(index: int, item: Any) -> str:
    """How an image input is named in the rows: its path, or its row number in the dataset."""
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, dict) and item.get("path"):
        return str(item["path"])
    return f"row {item['row']}" if isinstance(item, dict) and "row" in item else f"input {index}"


def _count(corpus: Corpus) -> int | None:
    """Inputs in the source (before --limit/--sample), counted cheaply where the format allows."""
    spec = corpus.spec
    if corpus.remote:
        return None
    if corpus.fmt in ("txt", "jsonl"):
        with open(spec.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    if corpus.fmt == "csv":
        return sum(1 for _ in _csv(Path(spec.path), spec.column or "text"))
    if corpus.fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(spec.path).metadata.num_rows
    if corpus.fmt == "images":
        return len(image_paths(Path(spec.path)))
    return len(_load_dataset(spec))


def reservoir(items: Iterator[tuple[int, Any]], n: int, seed: int) -> list[tuple[int, Any]]:
    """A uniform random sample of n items (algorithm R, seeded), in source order."""
    import random

    rng = random.Random(seed)
    kept: list[tuple[int, Any]] = []
    for seen, item in enumerate(items):
        if seen < n:
            kept.append(item)
        else:
            j = rng.randint(0, seen)
            if j < n:
                kept[j] = item
    return sorted(kept, key=lambda pair: pair[0])


def fingerprint(corpus: Corpus) -> dict:
    """What identifies the inputs of a run (for a checkpoint): the path, its size and time, the options."""
    path = Path(corpus.spec.path)
    stat = path.stat() if path.exists() else None
    return {"path": str(path.resolve()) if path.exists() else corpus.spec.path, "format": corpus.fmt,
            "size": stat.st_size if stat and path.is_file() else None,
            "mtime": stat.st_mtime_ns if stat else None, "field": corpus.spec.field, "column": corpus.spec.column,
            "limit": corpus.spec.limit, "sample": corpus.spec.sample, "seed": corpus.spec.seed,
            "split": corpus.spec.split}
