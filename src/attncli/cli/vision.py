"""`attn classify`, `attn patches`, `attn heatmap`: image classifiers and the attention behind their answers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from attncli.choices import Device, Format, Fuse, Kind, Purpose
from attncli.cli.common import (Progress, check_save_path, gradients, keeping, outputs, resolve, say, select, show,
                                stages, warn, with_page)
from attncli.cli.options import (DeviceOpt, DiscardOpt, DropSinksOpt, FuseOpt, HeadOpt, HeadsOpt, JsonOpt, LayerOpt,
                                 LayersOpt, MethodOpt, ModelOpt, OutOpt, PickleOpt, SaveOpt, ScaleOpt, SkipSpecialOpt,
                                 TargetOpt, TrustOpt, WidthOpt, QkOpt)
from attncli.errors import UsageError
from attncli.methods.registry import Method, info

if TYPE_CHECKING:
    from attncli.capture import Capture


def classify(
    images: Annotated[list[str], typer.Argument(help="Image files and/or folders of images.", show_default=False,
                                                 metavar="IMAGE")],
    model: ModelOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, metavar="K",
                                       help="How many labels to show per image.")] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N",
                                            help="Images per forward pass.")] = 8,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    drop_sinks: DropSinksOpt = False,
    output: OutOpt = None,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    save: SaveOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
) -> None:
    """Classify images and say where the CLS token looks (the first image is kept as the last capture).

    Default model: google/vit-base-patch16-224 (downloaded once). Offline: --model shapes (synthetic shapes only).

    \b
    Examples:
      attn classify samples/shapes/000_star.png --model shapes
      attn classify samples/shapes --model shapes --json
      attn classify photo.jpg --method rollout
    """
    from attncli import sources
    from attncli.methods.dispatch import check_method_options
    from attncli.views.classify import needs
    from attncli.views.common import MapSpec

    check_method_options(method, None, discard_ratio, drop_sinks=drop_sinks)
    spec = MapSpec(method=method, discard_ratio=discard_ratio, drop_sinks=drop_sinks)
    selection = needs(spec, layers, heads)
    paths = sources.image_files(images)
    check_save_path(save, paths)
    where = outputs(as_json=as_json, output=output, width=width, inputs=paths)

    from attncli.views.classify import classify_result, summarise

    name = model or sources.default_model(Purpose.image_classification)
    with stages() as report:  # a transient spinner while the model loads, as resolve() draws for other commands
        if report is not None:
            report(f"loading {name}", None, None)
        loaded = sources.load(name, Purpose.image_classification, device=device, trust_remote_code=trust_remote_code,
                              allow_pickle=allow_pickle)
    rows, first = [], None
    with Progress(len(paths), "classifying") as advance:
        for capture in sources.capture_images(paths, loaded, batch_size=batch_size, top_k=top_k,
                                              on_batch=lambda n: advance(n, None),
                                              selection=keeping(where, selection, save)):
            grads = None
            if info(method).gradients:  # explains the predicted class
                from attncli.gradcapture import gradients_for

                grads = gradients_for(capture, None, loaded).gradients
            row, amap = summarise(capture, top_k, spec=spec, gradients=grads)
            rows.append(row)
            first = first or (capture, amap)  # keep one image's attention, not all of them (22 MB each for ViT-B)
    assert first is not None
    result = classify_result(rows, first[1], first[0].source)
    if not _table_on_terminal(as_json):  # the note is under the table; on stderr too when no one sees that table
        warn(result.notes)  # an image unlike the model's training data: the prediction is still shown
    show(result, with_page(where, first[0], spec), save=save, capture=first[0])
    if len(paths) > 1:
        say(f"last capture: {first[0].source} (the first image); `attn heatmap` re-renders it, "
            "`attn heatmap IMAGE` captures another")


def patches(
    image: Annotated[Path, typer.Argument(help="An image file.", show_default=False, metavar="IMAGE")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", rich_help_panel="Output", help="Figure file: .png (default patches-IMAGE.png), .svg or .pdf.")] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
) -> None:
    """Draw the image as the model sees it, cut into its patch grid, and its position-embedding similarity.

    Default model: google/vit-base-patch16-224 (downloaded once). Offline: --model dinov2-small (photos) or shapes.

    \b
    Examples:
      attn patches samples/shapes/000_star.png --model shapes -o patches.png
      attn patches samples/chelsea.png --model dinov2-small
    """
    from attncli import sources
    from attncli.views.common import MapSpec
    from attncli.views.maps import needs

    # The view draws no attention: the capture (the last one) keeps what a plain `attn heatmap` re-renders.
    plan = sources.plan(sources.Request(value=str(image), model=model, purpose=Purpose.image, value_is_path=True,
                                        accepts=frozenset({sources.InputKind.image}), device=device,
                                        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                                        selection=needs(MapSpec())))
    where = outputs(as_json=as_json, output=output or (None if as_json else Path(f"patches-{image.stem}.png")), width=width,
                    file_formats=(Format.figure,), inputs=plan.inputs)
    resolved = resolve(plan)
    from attncli.views.patches import patches_view

    view = patches_view(resolved.capture, sources.position_embeddings(resolved.loaded))
    show(view, where, resolved)


def heatmap(
    source: Annotated[
        Optional[str],
        typer.Argument(help="An image, or a capture saved with --save (.npz). Default: the last capture.",
                       show_default=False, metavar="INPUT"),
    ] = None,
    layer: LayerOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    token: Annotated[
        Optional[str],
        typer.Option("--token", "-t", metavar="ROW,COL|INDEX|WORD", rich_help_panel="View",
                     help="Whose attention (the query row): a patch as ROW,COL or its index (image; default [CLS]), "
                          "or a word or index (text)."),
    ] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", hidden=True,
                                                 help="The old name of --token (kept for one release).")] = None,
    all_heads: Annotated[bool, typer.Option("--all-heads", rich_help_panel="View", help="One panel per head of the layer (images).")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", help="Figure file (.png, .svg, .pdf; default heatmap-….png) or an "
                                               "interactive page (.html).")] = None,
    terminal: Annotated[
        bool, typer.Option("--terminal", rich_help_panel="Output", help="Draw in the terminal instead of writing a file.")] = False,
    text: Annotated[
        Optional[str], typer.Option("--text", metavar="TEXT", rich_help_panel="Input", help="Capture this text first (token × token matrix).")
    ] = None,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    drop_sinks: DropSinksOpt = False,
    target_class: TargetOpt = None,
    scale: ScaleOpt = None,
    skip_special: SkipSpecialOpt = False,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    model: ModelOpt = None,
    save: SaveOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
    qk: QkOpt = False,
) -> None:
    """Draw attention as a figure: over the image (CLS or --token patch), or a token × token matrix for text.

    With no INPUT it re-renders the last capture, without loading a model. Default model: google/vit-base-patch16-224
    for images (offline: --model dinov2-small for photos, shapes for synthetic shapes), minilm for --text.

    \b
    Examples:
      attn heatmap samples/shapes/000_star.png --model shapes --terminal
      attn heatmap samples/chelsea.png --model dinov2-small --layer 6 -o cat.png
      attn heatmap --text "The cat sat on the mat." --token cat --terminal
    """
    from attncli import sources
    from attncli.methods.dispatch import check_method_options
    from attncli.views.common import MapSpec

    if token is not None and query is not None:
        raise UsageError("--query is the old name of --token", "give --token only")
    query = token if token is not None else query
    check_method_options(method, head, discard_ratio, target_class, drop_sinks, fuse)
    if drop_sinks and text is not None:
        from attncli.views.maps import NO_TEXT_SINKS

        raise UsageError(NO_TEXT_SINKS, "drop --drop-sinks")
    if all_heads:
        from attncli.views.maps import check_all_heads

        check_all_heads(method)
    if head is not None and all_heads:
        raise UsageError("--head and --all-heads draw different figures", "use one of them")
    if terminal and output is not None:
        raise UsageError("--terminal draws in the terminal and writes no file", "drop -o or --terminal")
    if terminal and as_json:
        raise UsageError("--terminal and --json both write to stdout", "use one of them")
    if text is not None:
        purpose = Purpose.text_classification if info(method).gradients else Purpose.text
    else:
        purpose = Purpose.image
    plan = sources.plan(sources.Request(
        value=source, text=text, model=(model or "minilm") if text is not None else model, purpose=purpose,
        accepts=frozenset({sources.InputKind.image, sources.InputKind.capture, sources.InputKind.last,
                           sources.InputKind.text}), default_last=True, value_is_path=True, device=device,
        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle))
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, terminal=terminal, width=width, inputs=plan.inputs)
    spec = MapSpec(method=method, layer=layer, head=head, fuse=fuse, query=query, skip_special=skip_special,
                   discard_ratio=discard_ratio, scale=scale, target=target_class, drop_sinks=drop_sinks)
    from attncli.views.maps import needs

    image = plan.kind is sources.InputKind.image
    plan = select(plan, where, needs(spec, layers, heads, image=image, all_heads=all_heads), layers, heads,
                  save)
    if qk:  # the q/k view: a new text capture, shown on the page
        from dataclasses import replace

        from attncli.choices import Format

        if text is None or not any(t.fmt is Format.html for t in where.targets):
            raise UsageError("--qk shows a text's query and key vectors on the interactive page",
                             "give --text TEXT and -o FILE.html")
        plan = plan.selecting(replace(plan.request.selection, qk=True))
    resolved = resolve(plan)
    capture = resolved.capture
    grads, label = None, None
    if capture.cross_attentions is not None:  # from attn align / attn caption: target × source instead
        view: Any = _cross_view(capture, spec, all_heads)
    else:
        if skip_special and capture.kind is Kind.image:
            raise UsageError("--skip-special hides special tokens of a text matrix; patch maps never show the "
                             "prefix tokens", "drop --skip-special")
        grads, label = gradients(resolved, spec)
        view = _self_view(capture, spec, all_heads, grads, label)
    if not (terminal or as_json or output is not None):  # the default: a figure with a name that says what it is
        where = outputs(output=_default_name(capture, view), terminal=False, width=width, inputs=plan.inputs)
    facts = getattr(view, "facts", None)
    if not (terminal and _table_on_terminal(as_json)):  # said once in a terminal: the grid's note says it
        warn([facts.unlike_training] if facts is not None and facts.unlike_training else [])
    show(view, with_page(where, capture, spec, grads, label, qk=qk), resolved, save)


def _self_view(capture: "Capture", spec: Any, all_heads: bool, grads: Any, label: str | None) -> Any:
    """Patch map, per-head panels, token matrix or one token's row."""
    from attncli.views import maps

    if all_heads:
        return maps.head_panels(capture, spec)
    if capture.kind is Kind.image:
        return maps.patch_map(capture, spec, grads, label)
    if spec.query is not None:
        return maps.token_row(capture, spec, grads, label)
    if capture.query_ids is not None:  # the matrix reads every row; explain --token and heatmap --query keep some
        from attncli.errors import KeptError

        raise KeptError(f"the token matrix needs every query row, but this capture kept the rows of "
                           f"{len(capture.query_ids)} of {capture.n_tokens} tokens",
                           "capture it again without --token, or with --layers all (or draw one row with "
                           "--token)")
    from attncli.views.explain import TokenMatrix, layer_matrix

    return layer_matrix(capture, spec, grads, label, TokenMatrix)


def _cross_view(capture: "Capture", spec: Any, all_heads: bool) -> Any:
    """The align matrix, or the caption's per-word maps, of a cross-attention capture."""
    if not info(spec.method).raw:
        raise UsageError(f"--method {spec.method.value} applies to self-attention captures",
                         "a cross-attention capture is drawn with --method attention")
    if spec.query is not None or all_heads:
        raise UsageError("--query and --all-heads apply to self-attention captures",
                         "a cross-attention capture is drawn as target × source (align) or per word (caption)")
    from attncli.views.cross import align_view, caption_view

    if capture.kind is Kind.audio:
        from attncli.views.speech import speech_view

        return speech_view(capture, spec.layer, spec.head, spec.fuse, spec.skip_special)
    if capture.kind is Kind.image:
        return caption_view(capture, spec.layer, spec.head, spec.fuse, spec.skip_special)
    return align_view(capture, spec.layer, spec.head, spec.fuse, spec.skip_special)


def _default_name(capture: "Capture", view: Any) -> Path:
    """heatmap-<input>-L<layer>-<head|fusion|method>[-r<row>c<col>|-q<token>].png in the current folder."""
    from attncli.views.cross import AlignView, CaptionView
    from attncli.views.maps import HeadPanels, PatchMap, TokenRow
    from attncli.views.speech import SpeechView

    stem = Path(capture.source).stem if capture.source else capture.kind.value
    if isinstance(view, (AlignView, CaptionView, SpeechView)):
        how = f"h{view.head}" if view.head is not None else view.fuse
        kind = "caption" if isinstance(view, CaptionView) else "align"
        return Path(f"{kind}-{stem}-L{view.layer}-{how}.png")
    m = info(view.method)
    if isinstance(view, HeadPanels):
        how = "heads" if m.raw else f"{m.name}-heads"
    else:
        how = f"h{view.head}" if view.head is not None else view.fuse if m.fuses else ""
        how = how if m.raw else "-".join(filter(None, [m.name, how]))
        how += "-dropsinks" if getattr(view, "drop_sinks", False) else ""
    query = ""
    if isinstance(view, (PatchMap, HeadPanels)) and view.query >= view.grid.prefix:
        row, col = view.grid.cell_of(view.query)
        query = f"-r{row}c{col}"
    elif isinstance(view, (PatchMap, HeadPanels)) and view.query > 0:
        query = f"-{view.query_label.strip('[]').lower()}"
    elif isinstance(view, TokenRow):
        query = f"-q{view.query}"
    return Path(f"heatmap-{stem}-L{view.layer}-{how}{query}.png")


def _table_on_terminal(as_json: bool) -> bool:
    """Whether the table (with its notes) goes to a terminal someone reads, so stderr need not repeat a note."""
    import sys

    return not as_json and sys.stdout.isatty()
