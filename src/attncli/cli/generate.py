"""`attn generate`: continue a prompt with a causal LM and show what each new token attended to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, Fuse, Purpose
from attncli.cli.common import check_save_path, keeping, outputs, resolve, show, with_page
from attncli.cli.crossattn import BeamsOpt, MaxNewOpt
from attncli.cli.options import (DeviceMapOpt, DeviceOpt, FuseOpt, HeadOpt, HeadsOpt, JsonOpt, LayerOpt, LayersOpt,
                                 MaxMemoryOpt, OffloadFolderOpt, OutOpt, PickleOpt, SaveOpt, StoreDtypeOpt, TopKOpt,
                                 TorchDtypeOpt, TrustOpt, WidthOpt)

GenModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="NAME|PATH",
                 help="Hub id or local folder of a causal language model (GPT-2, Llama, Mistral, …). "
                      "Default: openai-community/gpt2."),
]


def generate(
    prompt: Annotated[Optional[str], typer.Argument(metavar="PROMPT", show_default=False,
                                                    help='The prompt, or "-" to read it from stdin.')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", metavar="PATH",
                                                 help="Read the prompt from this file.")] = None,
    last: Annotated[bool, typer.Option("--last", help="Show the last capture again (made by attn generate), "
                                                      "e.g. at another --layer.")] = False,
    model: GenModelOpt = None,
    layer: LayerOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    top_k: TopKOpt = 3,
    max_new_tokens: MaxNewOpt = 20,
    num_beams: BeamsOpt = 1,
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
) -> None:
    """Continue PROMPT (greedy by default) and show, per generated token, what it attended to."""
    from attncli import sources
    from attncli.views.common import MapSpec
    from attncli.views.explain import needs

    selection = needs(MapSpec(layer=layer, head=head, fuse=fuse), layers, heads, fuse=save is None)
    plan = sources.plan(sources.Request(
        value=prompt, file=file, last=last, model=model, purpose=Purpose.generate,
        accepts=sources.TEXTS | sources.SAVED, device=device, trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle, selection=selection, torch_dtype=torch_dtype, device_map=device_map,
        max_memory=max_memory, offload_folder=offload_folder,
        generation=sources.Generation(None, max_new_tokens, num_beams)))
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, width=width, inputs=plan.inputs)
    resolved = resolve(plan.selecting(keeping(where, selection, save)) if plan.fresh else plan)  # a page shows every weight
    from attncli.views.generation import generation_view

    view = generation_view(resolved.capture, layer, head, fuse, top_k)
    show(view, with_page(where, resolved.capture), resolved, save, dtype)
