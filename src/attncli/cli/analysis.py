"""`attn stats` (per-head statistics) and `attn evaluate` (faithfulness of attention maps)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from attncli.choices import Device, Fuse
from attncli.cli.common import check_save_path, err, keep_capture, out, print_json, warn
from attncli.cli.options import DeviceOpt, FuseOpt, JsonOpt, ModelOpt, SaveOpt, TrustOpt
from attncli.errors import UsageError

if TYPE_CHECKING:
    from attncli.capture import Capture

CAPTURE_SUFFIX = ".npz"


def input_kind(value: str | None, text: str | None, last: bool) -> str:
    """What INPUT is: "last", "capture" (.npz), "image" (an image file), "stdin" or "text"."""
    from attncli.images import image_extensions

    given = [name for name, on in (("INPUT", value is not None), ("--text", text is not None), ("--last", last)) if on]
    if len(given) != 1:
        raise UsageError("give exactly one input: INPUT (text, image or .npz capture), --text TEXT, or --last"
                         if not given else f"{' and '.join(given)} are different inputs", "use one of them")
    if last:
        return "last"
    if text is not None:
        return "text"
    assert value is not None
    suffix = Path(value).suffix.lower()
    looks_like_file = " " not in value.strip() and suffix in ({CAPTURE_SUFFIX} | image_extensions())
    if value == "-":
        return "stdin"
    if Path(value).is_dir():
        raise UsageError(f"{value} is a folder", "give one image file; attn evaluate takes folders")
    if looks_like_file:
        if not Path(value).is_file():
            raise UsageError(f"{value}: no such file", "check the path, or use --text to analyse it as text")
        return "capture" if suffix == CAPTURE_SUFFIX else "image"
    return "text"


def load_input(kind: str, value: str | None, text: str | None, model: str | None, device: Device,
               trust_remote_code: bool) -> "Capture":
    """The capture to analyse: read from a file (kind "last"/"capture") or made now from text or an image."""
    if kind in ("last", "capture"):
        from attncli.store import load_capture

        return load_capture(None if kind == "last" else value)
    if kind == "image":
        from attncli.choices import Purpose
        from attncli.models import DEFAULT_MODELS
        from attncli.families.vit import capture_image

        return capture_image(value, model or DEFAULT_MODELS[Purpose.image_classification], device=device,
                             trust_remote_code=trust_remote_code)
    from attncli.families.text_capture import capture_text
    from attncli.inputs import read_text

    source = read_text(text if kind == "text" and text is not None else value)
    return capture_text(source, model or "minilm", device=device, trust_remote_code=trust_remote_code)


def check_csv_path(csv: str | None, inputs: list[str]) -> None:
    """Refuse a --csv target before any work: a folder or one of the inputs."""
    if csv is None or csv == "-":
        return
    path = Path(csv)
    if path.is_dir():
        raise UsageError(f"--csv {csv} is a folder", "give a file name such as heads.csv, or - for stdout")
    for item in inputs:
        if Path(item).exists() and path.exists() and path.resolve() == Path(item).resolve():
            raise UsageError(f"--csv {csv} is one of the inputs", "choose another file name; inputs are never overwritten")


def stats(
    source: Annotated[Optional[str], typer.Argument(
        metavar="INPUT",
        help='Text to capture, an image file, a capture saved with --save (.npz), or "-" for text on stdin.')] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Analyse this text (even if it looks like a file name).")] = None,
    last: Annotated[bool, typer.Option("--last", help="Analyse the last capture of any command.")] = False,
    model: ModelOpt = None,
    layer: Annotated[Optional[int], typer.Option("--layer", "-l", help="Only this layer (0-based, -1 the last).")] = None,
    sort: Annotated[Optional[str], typer.Option(
        "--sort", help="Sort by a column: entropy, entropy_norm, distance, distance_rel, sink, self, prev, next, "
                       "role, layer, head (numbers largest first).")] = None,
    ascending: Annotated[bool, typer.Option("--ascending", help="With --sort: smallest first.")] = False,
    as_json: JsonOpt = False,
    csv: Annotated[Optional[str], typer.Option("--csv", metavar="PATH|-", help="Also write the rows as CSV to a file, or - for stdout (instead of the table).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw mean attention distance per head against layer (.png/.svg/.pdf).")] = None,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Per-head statistics: entropy, mean attention distance, sink/self/previous/next scores and a role."""
    if as_json and csv == "-":
        raise UsageError("--json and --csv - both write to stdout", "write the CSV to a file, or drop one")
    from attncli.methods.stats import COLUMNS, capture_stats

    if sort is not None and sort not in COLUMNS:
        raise UsageError(f"--sort {sort}: not a column", "one of " + ", ".join(COLUMNS))
    if ascending and sort is None:
        raise UsageError("--ascending needs --sort COLUMN")
    kind = input_kind(source, text, last)
    fresh = kind not in ("last", "capture")
    if not fresh and model is not None:
        raise UsageError("--model applies when attn captures the input; a saved capture already has its model",
                         "drop --model, or give the text or image instead")
    if not fresh and save is not None:
        raise UsageError("--save stores a new capture; this input is a saved one already", "drop --save")
    inputs = [source] if kind in ("capture", "image") else []
    check_csv_path(csv, inputs)
    if plot is not None:
        from attncli.render.figures import check_output

        check_output(plot, inputs)
    check_save_path(save, [Path(i) for i in inputs])

    capture = load_input(kind, source, text, model, device, trust_remote_code)
    warn(capture.warnings)
    full = capture_stats(capture)
    report = full.select(layer, sort, ascending)
    if fresh:
        keep_capture(capture, save)
    if plot is not None:
        from attncli.render.analysis import distance_plot

        written = distance_plot(full.select(layer), plot)
        err().print(f"wrote {written}", highlight=False)
    if csv is not None and csv != "-":
        from attncli.store import write_atomic

        err().print(f"wrote {write_atomic(Path(csv), report.to_csv().encode('utf-8'))}", highlight=False)
    if as_json:
        print_json(report.to_dict())
    elif csv == "-":
        import sys

        sys.stdout.write(report.to_csv())
    else:
        from attncli.render.analysis import stats_table

        out().print(stats_table(report))


def parse_methods(value: str) -> "list":
    """'attention,rollout' → [Method.attention, Method.rollout]; 'all' → every method."""
    from attncli.choices import Method

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
    images: Annotated[Optional[list[Path]], typer.Argument(
        metavar="[IMAGE...]", show_default=False,
        help="Image files or folders: deletion/insertion AUC. Omit for the synthetic shapes set with its masks.")] = None,
    model: ModelOpt = None,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated methods, or all.")] = "all",
    n: Annotated[Optional[int], typer.Option("--n", min=1, help="Shapes set: how many fresh images (default 100).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shapes set and of the random baseline maps.")] = 0,
    layer: Annotated[int, typer.Option("--layer", "-l", help="Layer of attention maps / last layer of rollout, flow, grad-rollout.")] = -1,
    fuse: FuseOpt = Fuse.mean,
    discard_ratio: Annotated[float, typer.Option("--discard-ratio", help="Rollout: drop this fraction of the lowest weights per layer.")] = 0.0,
    top_percent: Annotated[float, typer.Option("--top-percent", help="Shapes: IoU of the top k% patches with the mask.")] = 15.0,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", help="Shapes: pointing-game tolerance in pixels (default: half a patch).")] = None,
    auc: Annotated[bool, typer.Option("--auc/--no-auc", help="Compute deletion and insertion AUC (a forward pass per step).")] = True,
    baseline: Annotated[str, typer.Option("--baseline", help="What a deleted patch becomes: mean, blur or black.")] = "mean",
    step: Annotated[Optional[int], typer.Option("--step", min=1, help="Patches changed per deletion/insertion step (default: patches/16, rounded up).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass.")] = 16,
    as_json: JsonOpt = False,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Faithfulness of each map method against a random-map baseline: pointing game, IoU, deletion/insertion AUC."""
    from attncli.evaluate import BASELINES

    chosen = parse_methods(methods)
    if baseline not in BASELINES:
        raise UsageError(f"--baseline {baseline}: one of {', '.join(BASELINES)}")
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
    from attncli.images import collect_images

    paths = [] if shapes else collect_images(images)

    from attncli.choices import Purpose
    from attncli.evaluate import evaluate as run_evaluation
    from attncli.evaluate import shapes_set
    from attncli.models import DEFAULT_MODELS, load_model

    loaded = load_model(model or ("shapes" if shapes else DEFAULT_MODELS[Purpose.image_classification]),
                        Purpose.image_classification, device=device, trust_remote_code=trust_remote_code)
    if shapes:
        pictures, masks, labels = shapes_set(loaded, n or 100, seed)
    else:
        from attncli.images import load_image

        pictures, masks, labels = [load_image(p) for p in paths], None, None
    with _Progress(len(pictures)) as progress:
        report = run_evaluation(loaded, pictures, chosen, masks=masks, labels=labels, seed=seed, layer=layer,
                                fuse=fuse, discard_ratio=discard_ratio, tolerance=tolerance, top_percent=top_percent,
                                auc=auc, baseline=baseline, step=step, batch_size=batch_size,
                                dataset="shapes" if shapes else "images", progress=progress)
    if as_json:
        print_json(report.to_dict())
        return
    from attncli.render.analysis import evaluate_table

    out().print(evaluate_table(report))


class _Progress:
    """A rich progress bar on stderr while images are scored (only when stderr is a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = None

    def __enter__(self):
        if err().is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("images", total=self.total)
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
