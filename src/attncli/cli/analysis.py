"""`attn stats` (per-head statistics) and `attn evaluate` (faithfulness of attention maps)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from attncli.choices import Device
from attncli.cli.common import check_save_path, err, keep_capture, out, print_json, warn
from attncli.cli.options import DeviceOpt, JsonOpt, ModelOpt, SaveOpt, TrustOpt
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
        from attncli.choices import Task
        from attncli.models import DEFAULT_MODELS
        from attncli.vision import capture_image

        return capture_image(value, model or DEFAULT_MODELS[Task.image_classification], device=device,
                             trust_remote_code=trust_remote_code)
    from attncli.capture import capture_text
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
