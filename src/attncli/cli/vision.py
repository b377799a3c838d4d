"""`attn classify`, `attn patches`, `attn heatmap`: image classifiers and the attention behind their answers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from attncli.choices import Device, Fuse, Method, Purpose
from attncli.cli.common import check_save_path, err, keep_capture, out, print_json, warn
from attncli.cli.options import (DeviceOpt, DiscardOpt, FuseOpt, HeadOpt, JsonOpt, LayerOpt, MethodOpt, ModelOpt,
                                 OutOpt, SaveOpt, TargetOpt, TrustOpt)
from attncli.errors import UsageError

if TYPE_CHECKING:
    from attncli.capture import Capture
    from attncli.models import LoadedModel


def _image_model(model: str | None) -> str:
    """--model, or the default image classifier (the seed's ViT-B/16)."""
    from attncli.models import DEFAULT_MODELS

    return model or DEFAULT_MODELS[Purpose.image_classification]


def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.", show_default=False,
                                                 metavar="IMAGE...")],
    model: ModelOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many labels to show per image.")] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass.")] = 8,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    as_json: JsonOpt = False,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Classify images and say where the CLS token looks (the first image is kept as the last capture)."""
    from attncli.images import collect_images, probe_image
    from attncli.methods.dispatch import check_method_options

    check_method_options(method, None, discard_ratio)

    paths = collect_images(images)
    check_save_path(save, paths)
    for path in paths:
        probe_image(path)  # headers only: a bad file fails now, not after the model has loaded

    from attncli.families.vit import capture_images, load_image_model
    from attncli.views.classify import classify_document, summarise

    loaded = load_image_model(_image_model(model), device=device, trust_remote_code=trust_remote_code)
    rows, first = [], None
    with _progress(len(paths)) as advance:
        for capture in capture_images(paths, loaded, batch_size=batch_size, top_k=top_k, on_batch=advance):
            grads = None
            if method is Method.grad_rollout:  # explains the predicted class
                from attncli.gradcapture import gradients_for

                grads = gradients_for(capture, None, loaded).gradients
            rows.append(summarise(capture, top_k, method=method.value, discard_ratio=discard_ratio, gradients=grads))
            first = first or capture  # keep one image's attention, not all of them (22 MB each for ViT-B)
    keep_capture(first, save)
    if len(paths) > 1:
        err().print(f"last capture: {first.source} (the first image); `attn heatmap` re-renders it, "
                    "`attn heatmap IMAGE` captures another", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        print_json(classify_document(rows, first.model_id, first.grid, first.source))
        return
    from attncli.render.vision import batch_table, predictions_table

    console = out()
    if len(rows) == 1:
        row = rows[0]
        console.print(predictions_table(row.source, first.model_id, row.predictions))
        best = row.predictions[0]
        console.print(f"Prediction: {best.label} (Confidence: {best.score:.1%})", highlight=False, markup=False)
        how = (f"at layer {row.cls_layer} (heads averaged) looks most at" if method is Method.attention
               else f"by {method.value} through layer {row.cls_layer}: top")
        console.print(f"[CLS] {how} patches (row,col): "
                      + ", ".join(f"({r},{c}) {w:.3f}" for r, c, w in row.cls_top),
                      highlight=False, markup=False, soft_wrap=True)
    else:
        # as many label columns as fit: --json has them all
        console.print(batch_table(rows, first.model_id, min(top_k, 3 if console.width >= 100 else 2)))


class _progress:
    """A rich progress bar on stderr for several images (nothing for one, or when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = None

    def __enter__(self):
        if self.total > 1 and err().is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("images", total=self.total)
        return self.advance

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def patches(
    image: Annotated[Path, typer.Argument(help="An image file.", show_default=False, metavar="IMAGE")],
    output: OutOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Draw the image as the model sees it, cut into its patch grid, and its position-embedding similarity."""
    from attncli.images import probe_image
    from attncli.render.figures import check_output

    probe_image(image)
    target = check_output(output or Path(f"patches-{image.stem}.png"), [image])

    from attncli.families.vit import preprocess
    from attncli.images import load_image
    from attncli.render.figures import patches_figure, save_figure
    from attncli.families.vit import load_image_model, position_embeddings

    loaded = load_image_model(_image_model(model), device=device, trust_remote_code=trust_remote_code)
    prepared = preprocess([load_image(image)], loaded.processor, loaded.config)
    grid = prepared.grid
    found = position_embeddings(loaded)
    positions, position_grid = found if found is not None else (None, None)
    fig = patches_figure(prepared.images[0], grid, loaded.ref.model_id, positions, position_grid, str(image))
    written = save_figure(fig, target)
    plural = "s" if grid.prefix != 1 else ""
    out().print(f"{grid.image_width}×{grid.image_height} input → {grid.rows}×{grid.cols} patches of "
                f"{grid.patch_height}×{grid.patch_width} px; {grid.prefix} prefix token{plural} "
                f"({', '.join(grid.prefix_labels)}) + {grid.n_patches} patches = {grid.n_tokens} tokens",
                highlight=False, markup=False, soft_wrap=True)
    out().print(str(written), highlight=False, markup=False, soft_wrap=True)


def heatmap(
    source: Annotated[
        Optional[Path],
        typer.Argument(help="An image, or a capture saved with --save (.npz). Default: the last capture.",
                       show_default=False, metavar="[INPUT]"),
    ] = None,
    layer: LayerOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    query: Annotated[
        Optional[str],
        typer.Option("--query", "-q",
                     help="Whose attention: a patch ROW,COL (image; default [CLS]) or a token (text)."),
    ] = None,
    all_heads: Annotated[bool, typer.Option("--all-heads", help="One panel per head of the layer (images).")] = False,
    output: OutOpt = None,
    terminal: Annotated[
        bool, typer.Option("--terminal", help="Draw in the terminal instead of writing a file.")] = False,
    text: Annotated[
        Optional[str], typer.Option("--text", help="Capture this text first (token × token matrix).")] = None,
    method: MethodOpt = Method.attention,
    discard_ratio: DiscardOpt = 0.0,
    target_class: TargetOpt = None,
    model: ModelOpt = None,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Draw attention as a figure: over the image (CLS or --query patch), or a token × token matrix for text."""
    from attncli.methods.dispatch import check_method_options

    check_method_options(method, head, discard_ratio, target_class)
    if all_heads and method is not Method.attention:
        raise UsageError(f"--all-heads shows each head of one layer; {method.value} combines the heads",
                         "drop --all-heads, or use --method attention")
    if source is not None and text is not None:
        raise UsageError("give an INPUT or --text, not both")
    if head is not None and all_heads:
        raise UsageError("--head and --all-heads draw different figures", "use one of them")
    if terminal and output is not None:
        raise UsageError("--terminal draws in the terminal and writes no file", "drop -o or --terminal")
    is_capture_file = source is not None and source.suffix.lower() == ".npz"
    if model is not None and text is None and (source is None or is_capture_file):
        raise UsageError("--model applies when capturing an image or --text; a saved capture already names its model")
    inputs = [source] if source is not None else []
    check_save_path(save, inputs)
    if output is not None and not terminal:
        from attncli.render.figures import check_output

        check_output(output, inputs)  # before any model loads: a bad -o fails fast
    capture, loaded = _heatmap_capture(source, text, model, is_capture_file, device, trust_remote_code)
    if text is not None or (source is not None and not is_capture_file):
        keep_capture(capture, save)  # a fresh capture becomes the last one, like every capturing command
    elif save is not None:
        from attncli.store import save_capture

        err().print(f"saved capture to {save_capture(capture, save)}", highlight=False)
    if capture.cross_attentions is not None:  # from attn align / attn caption: draw target × source instead
        if method is not Method.attention:
            raise UsageError(f"--method {method.value} applies to self-attention captures",
                             "a cross-attention capture is drawn with --method attention")
        if query is not None or all_heads:
            raise UsageError("--query and --all-heads apply to self-attention captures",
                             "a cross-attention capture is drawn as target × source (align) or per word (caption)")
        from attncli.cli.crossattn import draw_cross

        draw_cross(capture, layer, head, fuse, output, terminal)
        return

    from attncli.views.maps import head_maps, parse_query, query_map

    q = parse_query(capture, query)
    grads, label = None, None
    if method is Method.grad_rollout:
        from attncli.gradcapture import gradients_for

        explained = gradients_for(capture, target_class, loaded or model, device=device,
                                  trust_remote_code=trust_remote_code)
        grads, label = explained.gradients, explained.label
    amap = head_maps(capture, layer, q) if all_heads else query_map(
        capture, layer, head, fuse, q, method=method, discard_ratio=discard_ratio, gradients=grads, target_label=label)
    if terminal:
        _draw_terminal(capture, amap)
        return
    from attncli.render.figures import check_output, render_heatmap

    target = check_output(output or _default_name(capture, amap), inputs)
    written = render_heatmap(capture, amap, target)
    out().print(str(written), highlight=False, markup=False, soft_wrap=True)


def _heatmap_capture(source: Path | None, text: str | None, model: str | None, is_capture_file: bool,
                     device: Device, trust_remote_code: bool) -> "tuple[Capture, LoadedModel | None]":
    """The capture to draw (the last one, a saved .npz, a fresh image or text capture) and the image model loaded."""
    if text is not None:
        from attncli.families.text_capture import capture_text
        from attncli.inputs import read_text

        capture = capture_text(read_text(text), model or "minilm", device=device, trust_remote_code=trust_remote_code)
        warn(capture.warnings)
        return capture, None
    if source is None or is_capture_file:
        from attncli.store import load_capture

        return load_capture(source), None
    from attncli.images import probe_image

    probe_image(source)
    from attncli.families.vit import capture_image, load_image_model

    loaded = load_image_model(_image_model(model), device=device, trust_remote_code=trust_remote_code)
    return capture_image(source, loaded), loaded  # the model is kept so grad-rollout need not load it again


def _default_name(capture: "Capture", amap) -> Path:
    """heatmap-<image or 'text'>-L<layer>-<head|fusion>.png in the current folder."""
    stem = Path(capture.source).stem if capture.source else capture.kind
    how = "heads" if amap.kind == "heads" else (f"h{amap.head}" if amap.head is not None else amap.fuse)
    if amap.method != "attention":
        how = f"{amap.method}-{amap.fuse}"
    default_query = amap.query is None or (capture.kind == "image" and amap.query == 0)
    query = "" if default_query else f"-q{amap.query}"
    return Path(f"heatmap-{stem}-L{amap.layer}-{how}{query}.png")


def _draw_terminal(capture: "Capture", amap) -> None:
    """Patch grid or token matrix in colour on stdout."""
    from attncli.render import vision as view

    console = out()
    if amap.kind in ("grid", "heads"):
        console.print(view.grid_view(amap, capture.n_heads, width=console.width))
    elif amap.kind == "row":
        console.print(view.row_table(amap, capture.n_heads))
    else:
        from attncli.views.explain import layer_view
        from attncli.render.terminal import matrix_table

        console.print(matrix_table(layer_view(capture, amap.layer, amap.head, amap.fuse), capture.n_heads))
