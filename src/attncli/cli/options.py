"""Options shared by several commands, written once as Annotated aliases (metavars keep --help plain)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, DeviceMap, Fuse, Scale, StoreDtype, TorchDtype
from attncli.methods.registry import Method
from attncli.methods.registry import choices as method_choices
from attncli.methods.registry import help_text as method_help


def finite(value: float | None) -> float | None:
    """Refuse nan and inf where a number is parsed (typer's float type accepts both)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def max_memory(text: str) -> dict:
    """--max-memory's text as accelerate's max_memory dict; a bad value is a usage error naming the form."""
    from attncli.errors import UsageError
    from attncli.placement import parse_max_memory

    try:
        return parse_max_memory(text)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None


ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="NAME|PATH",
                 rich_help_panel="Model", help="Embedded alias (minilm for text; shapes, dinov2-small for images), Hugging Face hub id, or local folder."),
]
LayerOpt = Annotated[int, typer.Option("--layer", "-l", metavar="N", rich_help_panel="View", help="Layer, 0-based; -1 is the last.")]
HeadOpt = Annotated[
    Optional[int],
    typer.Option("--head", metavar="N", rich_help_panel="View", help="One head, 0-based (-1 the last). Default: all heads fused."),
]
FuseOpt = Annotated[Fuse, typer.Option("--fuse", metavar="mean|max|min",
                                       rich_help_panel="View", help="How heads are combined when --head is not given.")]
DeviceOpt = Annotated[Device, typer.Option("--device", metavar="cpu|cuda|mps", rich_help_panel="Model", help="Where the model runs.")]
TrustOpt = Annotated[
    bool, typer.Option("--trust-remote-code", rich_help_panel="Model", help="Allow a hub model to run its own Python code.")
]
PickleOpt = Annotated[
    bool, typer.Option("--allow-pickle", rich_help_panel="Model", help="Allow a checkpoint saved only as pickle (pytorch_model.bin, .pt); "
                                              "its tensors are loaded with weights_only=True.")
]
JsonOpt = Annotated[bool, typer.Option("--json", rich_help_panel="Output", help="Print machine-readable JSON to stdout instead of tables.")]
SaveOpt = Annotated[
    Optional[Path], typer.Option("--save", metavar="FILE.npz",
                                 rich_help_panel="Output", help="Also save the capture to this .npz file (re-render it later).")
]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, metavar="K", rich_help_panel="View", help="How many attended tokens to list.")]
MethodOpt = Annotated[
    Method,
    typer.Option("--method", metavar=method_choices(), rich_help_panel="View", help=method_help()),
]
DiscardOpt = Annotated[
    float, typer.Option("--discard-ratio", metavar="R", callback=finite, rich_help_panel="View", help="rollout: zero this fraction of the lowest weights per "
                                                             "layer (never the CLS column), as vit-explain does.")
]
DropSinksOpt = Annotated[
    bool, typer.Option("--drop-sinks", help="rollout/flow on an image: remove each layer's patch sinks (see attn "
                                            "stats) and renormalise its rows before the product of layers.")
]
TargetOpt = Annotated[
    Optional[str], typer.Option("--target", metavar="CLASS", rich_help_panel="View", help="grad-rollout: the class to explain, a label or "
                                                                   "index (default: the prediction).")
]
OutOpt = Annotated[
    Optional[Path], typer.Option("--output", "-o", metavar="FILE",
                                 rich_help_panel="Output", help="Also write the view to FILE: a figure (.png, .svg, .pdf) or an interactive "
                                      "page that opens offline in any browser (.html).")
]
WidthOpt = Annotated[
    Optional[int], typer.Option("--width", min=20, metavar="N",
                                rich_help_panel="View", help="Lay tables out for N columns (default: the terminal's, or COLUMNS; "
                                     "unlimited when stdout is not a terminal).")
]
ScaleOpt = Annotated[
    Optional[Scale], typer.Option("--scale", metavar="zero|minmax|percentile",
                                  rich_help_panel="View", help="Colour range of maps: 0..max, min..max, or the 1st..99th percentile "
                                       "(default: zero for attention and grad-rollout, minmax for rollout and flow).")
]
QkOpt = Annotated[
    bool, typer.Option("--qk", help="Also keep each layer's query and key vectors and show them on the page "
                                    "(-o FILE.html): a token's q, each k, q∘k, the scores, scaling and softmax.")
]
SkipSpecialOpt = Annotated[
    bool, typer.Option("--skip-special", rich_help_panel="View", help="Hide [CLS]/[SEP]-like tokens and renormalise rows over the rest.")
]
LayersOpt = Annotated[
    Optional[str], typer.Option("--layers", metavar="N|A-B|all",
                                rich_help_panel="Output", help="Also keep these layers' weights in the capture (e.g. 3, 0-5, 1,3,-1); all "
                                     "keeps every layer and query row (explain --token: that token's rows). "
                                     "Default: everything when the whole capture is under ATTN_CAPTURE_BUDGET_MB "
                                     "(64 MB), else only what the view needs (other layers run fused SDPA).")
]
HeadsOpt = Annotated[
    Optional[str], typer.Option("--heads", metavar="N|A-B|all",
                                rich_help_panel="Output", help="Keep only these heads' weights (e.g. 0-3). Default: all heads.")
]
StoreDtypeOpt = Annotated[
    Optional[StoreDtype], typer.Option("--dtype", metavar="float16|float32",
                                       rich_help_panel="Output", help="How the capture stores weights (default: float32, float16 when "
                                            "the weights pass 64 MB).")
]
TorchDtypeOpt = Annotated[
    Optional[TorchDtype], typer.Option("--torch-dtype", metavar="bfloat16|float16|float32",
                                       rich_help_panel="Model", help="Load the model's weights in this dtype (not --dtype, which is how a "
                                            "saved capture stores attention weights). Default: the checkpoint's.")
]
DeviceMapOpt = Annotated[
    Optional[DeviceMap], typer.Option("--device-map", metavar="auto|balanced|sequential",
                                      rich_help_panel="Model", help="Let accelerate spread the model over the GPUs and the CPU (instead of "
                                           "--device); the capture still comes back whole, on the CPU.")
]
MaxMemoryOpt = Annotated[
    Optional[dict], typer.Option("--max-memory", metavar="DEVICE=SIZE,...", parser=max_memory,
                                 rich_help_panel="Model", help="With --device-map: the most each device may hold, e.g. 0=20GiB,cpu=60GiB "
                                      "(DEVICE a GPU index, cpu, mps or disk; SIZE in KB/MB/GB or KiB/MiB/GiB).")
]
OffloadFolderOpt = Annotated[
    Optional[Path], typer.Option("--offload-folder", metavar="DIR",
                                 rich_help_panel="Model", help="With --device-map: where the weights that fit on no device are kept "
                                      "(on disk, read back layer by layer).")
]
