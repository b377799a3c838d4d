"""The options of `attn stats --corpus`, written once (help panel: Corpus)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.cli.corpus import Engine

P = "Corpus (--corpus)"
CorpusOpt = Annotated[Optional[str], typer.Option(
    "--corpus", metavar="PATH", rich_help_panel=P,
    help="Statistics over many inputs: a .txt (one per line), .jsonl, .csv, .parquet, a folder of images, or a "
         "Hugging Face dataset (load_from_disk folder or cached name). With it, --save FILE.parquet writes a row "
         "per input × layer × head and --plot/-o a layers × heads grid of each statistic (docs/corpus.md).")]
FieldOpt = Annotated[Optional[str], typer.Option("--field", metavar="NAME", rich_help_panel=P,
                                                  help=".jsonl: the field holding the text (default text).")]
ColumnOpt = Annotated[Optional[str], typer.Option(
    "--column", metavar="NAME", rich_help_panel=P,
    help=".csv/.parquet/dataset: the column (default text; a dataset's images: image).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", metavar="NAME", rich_help_panel=P,
                                                  help="A dataset with several splits: which one.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", metavar="N", rich_help_panel=P,
                                                  help="Only the first N inputs.")]
SampleOpt = Annotated[Optional[int], typer.Option("--sample", metavar="N", rich_help_panel=P,
                                                   help="A uniform random sample of N inputs (see --seed).")]
SeedOpt = Annotated[int, typer.Option("--seed", metavar="S", rich_help_panel=P, help="Seed of --sample.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", metavar="N", rich_help_panel=P,
                                       help="Inputs per forward pass (text: batched by length, padded).")]
MaxTokensOpt = Annotated[Optional[int], typer.Option("--max-tokens", metavar="N", rich_help_panel=P,
                                                     help="Leave out (and count) texts longer than N tokens.")]
WorkersOpt = Annotated[int, typer.Option("--workers", metavar="N", rich_help_panel=P,
                                         help="N processes (local engine) or model actors (Ray), each with the model.")]
EngineOpt = Annotated[Engine, typer.Option("--engine", metavar="local|ray", rich_help_panel=P,
                                           help='Run here, or on Ray (pip install "attncli[ray]").')]
AddressOpt = Annotated[Optional[str], typer.Option("--address", metavar="ADDR", rich_help_panel=P,
                                                    help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")]
CpusOpt = Annotated[float, typer.Option("--num-cpus", metavar="N", rich_help_panel=P,
                                        help="Ray: CPUs per model actor.")]
GpusOpt = Annotated[float, typer.Option("--num-gpus", metavar="N", rich_help_panel=P,
                                        help="Ray: GPUs per model actor.")]
CheckpointOpt = Annotated[Optional[Path], typer.Option(
    "--checkpoint", metavar="FILE", rich_help_panel=P,
    help="Where the run's checkpoint goes (default: the cache folder); a run stopped early resumes from it.")]
RestartOpt = Annotated[bool, typer.Option("--restart", rich_help_panel=P,
                                          help="Ignore a checkpoint of this run and start over.")]
