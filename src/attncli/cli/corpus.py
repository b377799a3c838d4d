"""`attn stats --corpus PATH`: per-head statistics over a whole corpus (attncli.corpus), on one machine or Ray."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional

from attncli.choices import Format
from attncli.errors import UsageError


class Engine(str, Enum):
    """Where a corpus run goes."""

    local = "local"
    ray = "ray"


@dataclass(frozen=True)
class CorpusArgs:
    """The corpus options of `attn stats`, as typed."""

    path: str
    field: Optional[str] = None
    column: Optional[str] = None
    split: Optional[str] = None
    limit: Optional[int] = None
    sample: Optional[int] = None
    seed: int = 0
    batch_size: int = 16
    max_tokens: Optional[int] = None
    workers: int = 1
    engine: Engine = Engine.local
    address: Optional[str] = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    checkpoint: Optional[Path] = None
    restart: bool = False


def refuse_single(**given: object) -> None:
    """Options of the single-input mode that --corpus does not take."""
    used = [name for name, value in given.items() if value not in (None, False)]
    if used:
        raise UsageError(f"{', '.join(used)} appl{'ies' if len(used) == 1 else 'y'} to one input, not to --corpus",
                         "drop it")


def stats_corpus(args: CorpusArgs, *, model: Optional[str], device: str, as_json: bool, plot: Optional[Path],
                 output: Optional[Path], save: Optional[Path], width: Optional[int]) -> None:
    """Run the corpus and show the report on every output asked for."""
    from attncli.cli.common import Target, outputs, show
    from attncli.corpus.engine import RunOptions
    from attncli.corpus.readers import CorpusSpec, open_corpus

    if args.batch_size < 1 or args.workers < 1:
        raise UsageError("--batch-size and --workers must be at least 1")
    if args.engine is Engine.local and (args.address is not None):
        raise UsageError("--address is the Ray cluster's", "add --engine ray")
    corpus = open_corpus(CorpusSpec(args.path, args.field, args.column, args.limit, args.sample, args.seed,
                                    args.split))
    if corpus.remote and args.engine is Engine.local:
        raise UsageError(f"--corpus {args.path}: a remote path is read by Ray Data", "add --engine ray")
    if save is not None and save.suffix.lower() != ".parquet":
        raise UsageError(f"--save {save}: with --corpus the rows are saved as .parquet",
                         "give a file name ending in .parquet")
    if save is not None:
        from attncli.corpus.readers import _require

        _require("pyarrow", "--save FILE.parquet")
    extra = [Target(Format.figure, plot)] if plot is not None else []
    inputs = [Path(args.path)] if Path(args.path).exists() else []
    where = outputs(as_json=as_json, output=output, width=width, inputs=inputs, extra=extra)
    from attncli.choices import Purpose
    from attncli.sources import default_model

    purpose = Purpose.image if corpus.modality == "image" else Purpose.text
    options = RunOptions(model=model or default_model(purpose), device=device, batch_size=args.batch_size,
                         max_tokens=args.max_tokens, workers=args.workers, save=str(save) if save else None,
                         checkpoint=str(args.checkpoint) if args.checkpoint else None, restart=args.restart)
    with _progress() as report:
        if args.engine is Engine.ray:
            from attncli.corpus.rayengine import RayOptions, run_ray

            result = run_ray(corpus, options, RayOptions(args.address, args.num_cpus, args.num_gpus), report)
        else:
            from attncli.corpus.engine import run

            result = run(corpus, options, report)
    from attncli.corpus.report import CorpusReport

    show(CorpusReport(result), where)
    if result.saved:
        from attncli.cli.common import say

        say(f"wrote {result.saved}")


class _progress:
    """Progress on stderr: a rich bar with rate and ETA on a terminal, a plain line every 10 s when piped."""

    def __enter__(self):
        from attncli.cli.common import err

        self.console = err()
        self.bar, self.last = None, 0.0
        if self.console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("inputs"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("inputs", total=None, rate="")
        return self.report

    def report(self, done: int, total: Optional[int], rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, rate=f"{rate:,.3g}/s" if rate else "")
            return
        now = time.monotonic()
        if now - self.last >= 10 or (total is not None and done >= total) or done == 0:
            self.last = now
            eta = f", ETA {(total - done) / rate:,.0f} s" if rate and total else ""
            print(f"inputs: {done:,}" + (f"/{total:,}" if total else "") + (f", {rate:,.3g}/s" if rate else "")
                  + eta, file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
