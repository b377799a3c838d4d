"""`attn explain`: which tokens each token attends to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, Fuse, Method
from attncli.cli.common import check_save_path, keep_capture, out, print_json, warn
from attncli.cli.options import (DeviceOpt, DiscardOpt, FuseOpt, HeadOpt, JsonOpt, LayerOpt, MethodOpt, ModelOpt,
                                 SaveOpt, TargetOpt, TopKOpt, TrustOpt)
from attncli.errors import UsageError


def explain(
    text: Annotated[Optional[str], typer.Argument(help='The text, or "-" to read it from stdin.')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the text from this file.")] = None,
    model: ModelOpt = None,
    layer: LayerOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    top_k: TopKOpt = 3,
    token: Annotated[
        Optional[str], typer.Option("--token", "-t", help="One token (a word or its index): its attention at every layer.")
    ] = None,
    matrix: Annotated[bool, typer.Option("--matrix", help="Show the full token × token table, shaded.")] = False,
    skip_special: Annotated[
        bool, typer.Option("--skip-special", help="Hide [CLS]/[SEP]-like tokens and renormalise rows over the rest.")
    ] = False,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    target_class: TargetOpt = None,
    as_json: JsonOpt = False,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Show which tokens each token attends to (default: the last layer, heads averaged)."""
    from attncli.inputs import read_text
    from attncli.methods.dispatch import check_method_options

    check_method_options(method, head, discard_ratio, target_class)
    if token is not None and matrix:
        raise UsageError("--token and --matrix show different views", "use one of them")
    source = read_text(text, file)
    check_save_path(save, [file] if file else [])

    from attncli.families.text_capture import capture_text
    from attncli.views.explain import find_token, layer_view, token_profile
    from attncli.render import terminal

    loaded = None
    if method is Method.grad_rollout:  # a text classifier, refused before any weights load if it has no head
        from attncli.gradcapture import load_classifier

        loaded = load_classifier("text", model or "minilm", device=device, trust_remote_code=trust_remote_code)
    capture = capture_text(source, loaded or model or "minilm", device=device, trust_remote_code=trust_remote_code)
    warn(capture.warnings)
    extra: dict = {"method": method, "discard_ratio": discard_ratio}
    if loaded is not None:
        from attncli.gradcapture import gradients_for

        explained = gradients_for(capture, target_class, loaded)
        extra.update(gradients=explained.gradients, target_label=explained.label)
    if token is not None:
        profile = token_profile(capture, find_token(capture, token), head, fuse, skip_special, **extra)
        result = profile.to_dict(top_k) if as_json else terminal.profile_table(profile, top_k, capture.n_heads)
    else:
        view = layer_view(capture, layer, head, fuse, skip_special, **extra)
        if as_json:
            result = view.to_dict(top_k)
        elif matrix:
            result = terminal.matrix_table(view, capture.n_heads)
        else:
            result = terminal.top_table(view, top_k, capture.n_heads)
    keep_capture(capture, save)
    if as_json:
        print_json(result)
    else:
        out().print(result)
