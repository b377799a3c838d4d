"""Options shared by several commands, written once as Annotated aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, Fuse, Method

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Embedded alias (minilm, shapes), Hugging Face hub id, or local folder."),
]
LayerOpt = Annotated[int, typer.Option("--layer", "-l", help="Layer, 0-based; -1 is the last.")]
HeadOpt = Annotated[
    Optional[int], typer.Option("--head", help="One head, 0-based (-1 the last). Default: all heads fused.")
]
FuseOpt = Annotated[Fuse, typer.Option("--fuse", help="How heads are combined when --head is not given.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where the model runs.")]
TrustOpt = Annotated[
    bool, typer.Option("--trust-remote-code", help="Allow a hub model to run its own Python code.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout instead of tables.")]
SaveOpt = Annotated[
    Optional[Path], typer.Option("--save", help="Also save the capture to this .npz file (re-render it later).")
]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many attended tokens to list.")]
MethodOpt = Annotated[
    Method,
    typer.Option("--method", help="attention: one layer; rollout/flow: every layer up to --layer with the residual "
                                  "path; grad-rollout: gradient-weighted rollout for --target (classifiers)."),
]
DiscardOpt = Annotated[
    float, typer.Option("--discard-ratio", help="rollout: zero this fraction of the lowest weights per layer "
                                                "(never the CLS column), as vit-explain does.")
]
TargetOpt = Annotated[
    Optional[str], typer.Option("--target", help="grad-rollout: the class to explain, a label or index "
                                                 "(default: the prediction).")
]
OutOpt = Annotated[
    Optional[Path], typer.Option("--output", "-o", help="Figure file: .png (default), .svg or .pdf.")
]
