"""`attn explain`: which tokens each token attends to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from attncli.choices import Device, Fuse, Purpose
from attncli.cli.common import check_save_path, gradients, keeping, outputs, resolve, show, with_page
from attncli.cli.options import (DeviceOpt, DiscardOpt, FuseOpt, HeadOpt, JsonOpt, MethodOpt, ModelOpt,
                                 OutOpt, PickleOpt, SaveOpt, ScaleOpt, SkipSpecialOpt, TargetOpt, TopKOpt, TrustOpt,
                                 WidthOpt, LayersOpt, HeadsOpt, StoreDtypeOpt, TorchDtypeOpt, DeviceMapOpt,
                                 MaxMemoryOpt, OffloadFolderOpt, QkOpt)
from attncli.errors import UsageError
from attncli.methods.registry import Method, info


def explain(
    text: Annotated[Optional[str], typer.Argument(metavar="TEXT", show_default=False,
                                                  help='The text, or "-" to read it from stdin.')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", metavar="PATH", rich_help_panel="Input",
                                                 help="Read the text from this file.")] = None,
    model: ModelOpt = None,
    layer: Annotated[Optional[int], typer.Option(
        "--layer", "-l", metavar="N", rich_help_panel="View",
        help="Layer, 0-based; -1 is the last (default). With --token: only this layer, and its heads.")] = None,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    top_k: TopKOpt = 3,
    token: Annotated[
        Optional[str], typer.Option("--token", "-t", metavar="WORD|INDEX", rich_help_panel="View",
                                    help="One token (a word or its index): its attention at every layer.")
    ] = None,
    matrix: Annotated[bool, typer.Option("--matrix", rich_help_panel="View", help="Show the full token × token table, shaded.")] = False,
    skip_special: SkipSpecialOpt = False,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    target_class: TargetOpt = None,
    scale: ScaleOpt = None,
    output: OutOpt = None,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    save: SaveOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    dtype: StoreDtypeOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
    torch_dtype: TorchDtypeOpt = None,
    device_map: DeviceMapOpt = None,
    max_memory: MaxMemoryOpt = None,
    offload_folder: OffloadFolderOpt = None,
    qk: QkOpt = False,
) -> None:
    """Show which tokens each token attends to (default: the last layer, heads averaged).

    Default model: minilm (sentence-transformers/all-MiniLM-L6-v2, installed with attncli).

    \b
    Examples:
      attn explain "The cat sat on the mat because it was tired." --token it
      attn explain "The cat sat on the mat." --matrix --skip-special
      attn explain --file notes.txt --layer 2 --json
    """
    from attncli import sources
    from attncli.methods.dispatch import check_method_options
    from attncli.views.common import MapSpec

    check_method_options(method, head, discard_ratio, target_class, fuse=fuse)
    if token is not None and matrix:
        raise UsageError("--token and --matrix show different views", "use one of them")
    spec = MapSpec(method=method, layer=-1 if layer is None else layer, head=head, fuse=fuse, query=token, skip_special=skip_special,
                   discard_ratio=discard_ratio, scale=scale, top_k=top_k, target=target_class)
    from attncli.views.explain import needs

    purpose = Purpose.text_classification if info(method).gradients else Purpose.text
    plan = sources.plan(sources.Request(value=text, file=file, model=model or "minilm", purpose=purpose,
                                        accepts=sources.TEXTS, device=device, trust_remote_code=trust_remote_code,
                                        selection=needs(spec, layers, heads, fuse=save is None),
                                        allow_pickle=allow_pickle,
                                        torch_dtype=torch_dtype, device_map=device_map,
                                        max_memory=max_memory, offload_folder=offload_folder))
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, width=width, inputs=plan.inputs)
    kept = keeping(where, plan.request.selection, save)  # a page shows every weight
    if qk:  # the q/k view lives on the page
        from dataclasses import replace

        from attncli.choices import Format

        if not any(t.fmt is Format.html for t in where.targets):
            raise UsageError("--qk shows the query and key vectors on the interactive page",
                             "add -o FILE.html")
        kept = replace(kept, qk=True)
    resolved = resolve(plan.selecting(kept))
    grads, label = gradients(resolved, spec)
    from attncli.views.explain import TokenMatrix, TokenTable, layer_matrix, profile_of

    view: Any
    if token is not None:
        view = profile_of(resolved.capture, spec, grads, label, layer=layer)
    else:
        view = layer_matrix(resolved.capture, spec, grads, label, TokenMatrix if matrix else TokenTable)
    show(view, with_page(where, resolved.capture, spec, grads, label, qk=qk), resolved, save, dtype)
