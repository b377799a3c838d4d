"""`attn stats` (per-head statistics) and `attn evaluate` (faithfulness of attention maps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, Format, Fuse, Purpose
from attncli.cli.common import (Progress, Target, check_save_path, outputs, resolve, select, show,
                                with_page)
from attncli.cli.options import (DeviceOpt, FuseOpt, HeadsOpt, JsonOpt, LayersOpt, ModelOpt, PickleOpt,
                                 SaveOpt, TrustOpt, WidthOpt, finite)
from attncli.cli.corpus import CorpusArgs, Engine, refuse_single, stats_corpus
from attncli.cli.corpus_options import (AddressOpt, BatchOpt, CheckpointOpt, ColumnOpt, CorpusOpt, CpusOpt,
                                        FieldOpt, GpusOpt, LimitOpt, MaxTokensOpt, RestartOpt, SampleOpt, SeedOpt,
                                        SplitOpt, WorkersOpt, EngineOpt)
from attncli.errors import UsageError


def stats(
    source: Annotated[Optional[str], typer.Argument(
        metavar="INPUT", show_default=False,
        help='Text to capture, an image file, a capture saved with --save (.npz), or "-" for text on stdin.')] = None,
    text: Annotated[Optional[str], typer.Option("--text", metavar="TEXT", rich_help_panel="Input",
                                                help="Analyse this text (even if it looks like a file name).")] = None,
    last: Annotated[bool, typer.Option("--last", rich_help_panel="Input", help="Analyse the last capture of any command.")] = False,
    model: ModelOpt = None,
    layer: Annotated[Optional[int], typer.Option("--layer", "-l", metavar="N",
                                                 help="Only this layer (0-based, -1 the last).")] = None,
    sort: Annotated[Optional[str], typer.Option(
        "--sort", metavar="COLUMN",
        help="Sort by a column: entropy, entropy_norm, distance, distance_rel, sink, self, prev, next, "
             "role, layer, head (numbers largest first).")] = None,
    ascending: Annotated[bool, typer.Option("--ascending", help="With --sort: smallest first.")] = False,
    as_json: JsonOpt = False,
    csv: Annotated[Optional[str], typer.Option("--csv", metavar="PATH|-", help="Also write the rows as CSV to a file, or - for stdout (instead of the table).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", metavar="FILE", help="Draw mean attention distance per head against layer (.png/.svg/.pdf).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", help="Also write an interactive page of the capture (.html), or the "
                                               "distance figure (.png/.svg/.pdf, as --plot).")] = None,
    width: WidthOpt = None,
    save: SaveOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
    corpus: CorpusOpt = None,
    field: FieldOpt = None,
    column: ColumnOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 16,
    max_tokens: MaxTokensOpt = None,
    workers: WorkersOpt = 1,
    engine: EngineOpt = Engine.local,
    address: AddressOpt = None,
    num_cpus: CpusOpt = 1.0,
    num_gpus: GpusOpt = 0.0,
    checkpoint: CheckpointOpt = None,
    restart: RestartOpt = False,
) -> None:
    """Per-head statistics: entropy, mean attention distance, sink/self/previous/next scores and a role.

    Default model: minilm for text, google/vit-base-patch16-224 for images (offline: --model dinov2-small or shapes).
    --corpus PATH aggregates them over a whole dataset (streamed, resumable; see docs/corpus.md).

    \b
    Examples:
      attn stats "The cat sat on the mat because it was tired." --sort prev
      attn stats samples/chelsea.png --model dinov2-small --layer 3
      attn stats --corpus samples/sentences.txt --json
    """
    if corpus is not None:  # a whole corpus: attncli.cli.corpus
        refuse_single(INPUT=source, **{"--text": text, "--last": last, "--layer": layer, "--sort": sort,
                                       "--ascending": ascending, "--csv": csv, "--layers": layers, "--heads": heads})
        return stats_corpus(CorpusArgs(corpus, field, column, split, limit, sample, seed, batch_size, max_tokens,
                                       workers, engine, address, num_cpus, num_gpus, checkpoint, restart),
                            model=model, device=device.value, as_json=as_json, plot=plot, output=output, save=save,
                            width=width)
    from attncli import sources
    from attncli.views.common import MapSpec
    from attncli.views.stats import COLUMNS, capture_stats, needs

    if sort is not None and sort not in COLUMNS:
        raise UsageError(f"--sort {sort}: not a column", "one of " + ", ".join(COLUMNS))
    if ascending and sort is None:
        raise UsageError("--ascending needs --sort COLUMN")
    plan = sources.plan(sources.Request(value=source, text=text, last=last, model=model, device=device,
                                        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                                        accepts=frozenset(sources.InputKind) - {sources.InputKind.text_file}))
    if not plan.fresh and save is not None:
        raise UsageError("--save stores a new capture; this input is a saved one already", "drop --save")
    check_save_path(save, plan.inputs)
    extra = []
    if csv is not None:
        if Path(csv).is_dir() if csv != "-" else False:
            raise UsageError(f"--csv {csv} is a folder", "give a file name such as heads.csv, or - for stdout")
        extra.append(Target(Format.csv, None if csv == "-" else Path(csv)))
    if plot is not None:
        from attncli.outputs import output_format

        output_format(plot, (Format.figure,), "--plot")
        extra.append(Target(Format.figure, plot))
    where = outputs(as_json=as_json, output=output, terminal=csv != "-", width=width, inputs=plan.inputs, extra=extra)
    resolved = resolve(select(plan, where, needs(layer, layers, heads), layers, heads, save))
    full = capture_stats(resolved.capture)
    report = full.select(layer, sort, ascending)
    show(report, with_page(where, resolved.capture, MapSpec(layer=-1 if layer is None else layer), stats=full),
         resolved, save)


def parse_methods(value: str) -> "list":
    """'attention,rollout' → [Method.attention, Method.rollout]; 'all' → every method."""
    from attncli.methods.registry import Method

    if value.strip().lower() == "all":
        return list(Method)
    names = [v.strip() for v in value.split(",") if v.strip()]
    known = [m.value for m in Method]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UsageError(f"--methods {value}: unknown method {', '.join(bad) or '(none)'}",
                         f"a comma-separated list of {', '.join(known)}, or all")
    return [Method(n) for n in dict.fromkeys(names)]


def evaluate(
    images: Annotated[Optional[list[str]], typer.Argument(
        metavar="IMAGE", show_default=False,
        help="Image files or folders: deletion/insertion AUC. Omit for the synthetic shapes set with its masks.")] = None,
    model: ModelOpt = None,
    methods: Annotated[str, typer.Option("--methods", metavar="M,M|all", help="Comma-separated methods, or all.")] = "all",
    n: Annotated[Optional[int], typer.Option("--n", min=1, metavar="N", help="Shapes set: how many fresh images (default 100).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, metavar="N", help="Seed of the shapes set and of the random baseline maps.")] = 0,
    layer: Annotated[int, typer.Option("--layer", "-l", metavar="N", help="Layer of attention maps / last layer of rollout, flow, grad-rollout.")] = -1,
    fuse: FuseOpt = Fuse.mean,
    discard_ratio: Annotated[float, typer.Option("--discard-ratio", metavar="R", callback=finite, help="Rollout: drop this fraction of the lowest weights per layer.")] = 0.0,
    top_percent: Annotated[float, typer.Option("--top-percent", metavar="P", callback=finite, help="Shapes: IoU of the top k% patches with the mask.")] = 15.0,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", metavar="PX", callback=finite, help="Shapes: pointing-game tolerance in pixels (default: half a patch).")] = None,
    auc: Annotated[bool, typer.Option("--auc/--no-auc", help="Compute deletion and insertion AUC (a forward pass per step).")] = True,
    baseline: Annotated[str, typer.Option("--baseline", metavar="mean|blur|black", help="What a deleted patch becomes: mean, blur or black.")] = "mean",
    step: Annotated[Optional[int], typer.Option("--step", min=1, metavar="N", help="Patches changed per deletion/insertion step (default: patches/16, rounded up).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N", help="Images per forward pass.")] = 16,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
) -> None:
    """Faithfulness of each map method against a random-map baseline: pointing game, IoU, deletion/insertion AUC.

    Default: the shapes model on freshly generated shapes (with masks); with IMAGEs, google/vit-base-patch16-224.

    \b
    Examples:
      attn evaluate --n 20
      attn evaluate samples/shapes --model shapes --methods attention,rollout
    """
    from attncli.evaluate import BASELINES

    chosen = parse_methods(methods)
    if baseline not in BASELINES:
        raise UsageError(f"--baseline {baseline}: one of {', '.join(BASELINES)}")
    if tolerance is not None and tolerance < 0:
        raise UsageError(f"--tolerance {tolerance:g}: a distance in pixels cannot be negative", "e.g. --tolerance 8")
    if not 0 < top_percent <= 100:
        raise UsageError(f"--top-percent {top_percent:g}: must be above 0 and at most 100", "e.g. --top-percent 15")
    if discard_ratio and not 0 < discard_ratio < 1:
        raise UsageError(f"--discard-ratio {discard_ratio}: must be at least 0 and below 1")
    shapes = not images
    if not shapes:
        given = [name for name, v in (("--n", n), ("--tolerance", tolerance)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the shapes set only",
                             "drop it, or drop the IMAGE arguments")
        if not auc:
            raise UsageError("--no-auc leaves nothing to measure on your images (they have no masks)",
                             "drop --no-auc, or omit IMAGE to use the shapes set")
    from attncli import sources

    paths = [] if shapes else sources.image_files(images or [])
    where = outputs(as_json=as_json, width=width, inputs=paths)

    from attncli.evaluate import evaluate as run_evaluation
    from attncli.evaluate import shapes_set

    loaded = sources.load(model or ("shapes" if shapes else None), Purpose.image_classification, device=device,
                          trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if shapes:
        pictures, masks, labels = shapes_set(loaded, n or 100, seed)
    else:
        from attncli.images import load_image

        pictures, masks, labels = [load_image(p) for p in paths], None, None
    with Progress(len(pictures), "evaluating") as progress:
        report = run_evaluation(loaded, pictures, chosen, masks=masks, labels=labels, seed=seed, layer=layer,
                                fuse=fuse, discard_ratio=discard_ratio, tolerance=tolerance, top_percent=top_percent,
                                auc=auc, baseline=baseline, step=step, batch_size=batch_size,
                                dataset="shapes" if shapes else "images", progress=progress)
    show(report, where)
