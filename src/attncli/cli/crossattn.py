"""`attn align` and `attn caption`: what each output token of an encoder-decoder attended to in its input."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from attncli.choices import Device, Fuse
from attncli.cli.common import check_save_path, keep_capture, out, print_json, warn
from attncli.cli.options import DeviceOpt, FuseOpt, HeadOpt, JsonOpt, OutOpt, SaveOpt, TrustOpt
from attncli.errors import UsageError

if TYPE_CHECKING:
    from attncli.capture import Capture

MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest output to generate, in tokens.")]
BeamsOpt = Annotated[
    int, typer.Option("--num-beams", min=1, help="Beam search width; the best beam is re-scored teacher-forced.")
]
SkipOpt = Annotated[
    bool, typer.Option("--skip-special", help="Hide </s>/[CLS]-like tokens (align renormalises rows over the rest).")
]
LayerDecOpt = Annotated[int, typer.Option("--layer", "-l", help="Decoder layer, 0-based; -1 is the last.")]
AlignModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Hub id or local folder of a text encoder-decoder (Marian/opus-mt, T5, BART). "
                 "Default: Helsinki-NLP/opus-mt-en-de."),
]
CaptionModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Hub id or local folder of a captioner (VisionEncoderDecoder, BLIP). "
                 "Default: nlpconnect/vit-gpt2-image-captioning."),
]


def align(
    text: Annotated[Optional[str], typer.Argument(help='Source text, or "-" to read it from stdin.')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the source text from this file.")] = None,
    target: Annotated[
        Optional[str], typer.Option("--target", "-t", help="Score this target text instead of generating one.")
    ] = None,
    model: AlignModelOpt = None,
    layer: LayerDecOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    max_new_tokens: MaxNewOpt = 64,
    num_beams: BeamsOpt = 1,
    skip_special: SkipOpt = False,
    output: OutOpt = None,
    as_json: JsonOpt = False,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Translate (or score --target) with a seq2seq model and show which source tokens each target token attends to."""
    from attncli.inputs import read_text

    if text is not None and text != "-" and file is None and _is_image_file(text):
        raise UsageError(f"{text} is an image; attn align takes text", "caption an image with: attn caption IMAGE")
    source = read_text(text, file)
    if target is not None and target != "-" and not target.strip():
        raise UsageError("--target is empty", "give the target text, or leave --target out to generate")
    inputs = [file] if file else []
    check_save_path(save, inputs)
    if output is not None:
        from attncli.render.figures import check_output

        check_output(output, inputs)

    from attncli.families.encdec import capture_align
    from attncli.models import DEFAULT_MODELS
    from attncli.choices import Purpose
    DEFAULT_ALIGN_MODEL = DEFAULT_MODELS[Purpose.align]

    capture = capture_align(source, model or DEFAULT_ALIGN_MODEL, target=target,
                            max_new_tokens=max_new_tokens, num_beams=num_beams, device=device,
                            trust_remote_code=trust_remote_code)
    warn(capture.warnings)
    keep_capture(capture, save)
    show_align(capture, layer, head, fuse, skip_special, output, as_json)


def show_align(capture: "Capture", layer: int, head: int | None, fuse: Fuse, skip_special: bool,
               output: Path | None, as_json: bool) -> None:
    """Print the align table (or JSON) and write the heatmap when asked."""
    from attncli.views.cross import align_view

    view = align_view(capture, layer, head, fuse, skip_special)
    if output is not None:
        from attncli.render.crossfig import align_figure

        _written(_save(align_figure(view), output), as_json)
    if as_json:
        print_json(view.to_dict())
    else:
        from attncli.render.cross import align_table

        out().print(align_table(view))


def caption(
    image: Annotated[Path, typer.Argument(help="An image file.", show_default=False, metavar="IMAGE")],
    text: Annotated[
        Optional[str], typer.Option("--text", "-t", help='Score this caption instead of generating one, e.g. "a cat on a couch".')
    ] = None,
    model: CaptionModelOpt = None,
    layer: LayerDecOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many patches to list per word.")] = 3,
    max_new_tokens: MaxNewOpt = 20,
    num_beams: BeamsOpt = 1,
    skip_special: SkipOpt = False,
    output: OutOpt = None,
    as_json: JsonOpt = False,
    save: SaveOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Caption an image (or score --text) and show, per word, which image patches it attended to."""
    from attncli.images import probe_image

    if text is not None and not text.strip():
        raise UsageError("--text is empty", "give the caption to score, or leave --text out to generate one")
    probe_image(image)  # a bad file fails before the model loads
    check_save_path(save, [image])
    if output is not None:
        from attncli.render.figures import check_output

        check_output(output, [image])

    from attncli.families.encdec import capture_caption
    from attncli.models import DEFAULT_MODELS
    from attncli.choices import Purpose
    DEFAULT_CAPTION_MODEL = DEFAULT_MODELS[Purpose.caption]

    capture = capture_caption(image, model or DEFAULT_CAPTION_MODEL, text=text,
                              max_new_tokens=max_new_tokens, num_beams=num_beams, device=device,
                              trust_remote_code=trust_remote_code)
    warn(capture.warnings)
    keep_capture(capture, save)
    show_caption(capture, layer, head, fuse, top_k, skip_special, output, as_json)


def show_caption(capture: "Capture", layer: int, head: int | None, fuse: Fuse, top_k: int, skip_special: bool,
                 output: Path | None, as_json: bool) -> None:
    """Print the word → patches table (or JSON) and write the per-word overlays when asked."""
    from attncli.views.cross import caption_view

    view = caption_view(capture, layer, head, fuse, skip_special)
    if output is not None:
        from attncli.render.crossfig import caption_figure

        _written(_save(caption_figure(view, capture.image), output), as_json)
    if as_json:
        print_json(view.to_dict(top_k))
    else:
        from attncli.render.cross import caption_table

        out().print(caption_table(view, top_k))


def draw_cross(capture: "Capture", layer: int, head: int | None, fuse: Fuse, output: Path | None,
               terminal: bool) -> None:
    """`attn heatmap` for a cross-attention capture: the align matrix, or one overlay per caption word."""
    if terminal:
        if capture.kind == "image":
            show_caption(capture, layer, head, fuse, 3, False, None, False)
        else:
            show_align(capture, layer, head, fuse, False, None, False)
        return
    from attncli.render.figures import check_output

    if capture.kind == "image":
        from attncli.views.cross import caption_view
        from attncli.render.crossfig import caption_figure

        view = caption_view(capture, layer, head, fuse)
        fig, name = caption_figure(view, capture.image), "caption"
    else:
        from attncli.views.cross import align_view
        from attncli.render.crossfig import align_figure

        view = align_view(capture, layer, head, fuse)
        fig, name = align_figure(view), "align"
    stem = Path(capture.source).stem if capture.source else "text"
    how = f"h{view.head}" if view.head is not None else view.fuse
    target = check_output(output or Path(f"{name}-{stem}-L{view.layer}-{how}.png"))
    out().print(str(_save(fig, target)), highlight=False, markup=False, soft_wrap=True)


def _save(fig, path: Path) -> Path:
    """Write a figure atomically; a token in a script the font lacks is drawn as a box, not warned about."""
    import warnings

    from attncli.render.figures import save_figure

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        return save_figure(fig, path)


def _written(path: Path, as_json: bool) -> None:
    """Say where the figure went: on stderr when stdout carries JSON."""
    from attncli.cli.common import err

    (err() if as_json else out()).print(f"wrote {path}", highlight=False, markup=False, soft_wrap=True)


def _is_image_file(text: str) -> bool:
    """Whether an argument names an existing image file (a likely mix-up of align and caption)."""
    try:
        path = Path(text)
        if len(text) > 1024 or not path.is_file():
            return False
    except (OSError, ValueError):
        return False
    from attncli.images import image_extensions

    return path.suffix.lower() in image_extensions()
