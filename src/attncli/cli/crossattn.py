"""`attn align` and `attn caption`: what each output token of an encoder-decoder attended to in its input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli.choices import Device, Fuse, Purpose
from attncli.cli.common import check_save_path, outputs, show, with_page
from attncli.views.common import MapSpec
from attncli.cli.options import (DeviceOpt, FuseOpt, HeadOpt, JsonOpt, OutOpt, PickleOpt, SaveOpt, TrustOpt,
                                 WidthOpt)
from attncli.errors import UsageError

MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, metavar="N",
                                        help="Longest output to generate, in tokens.")]
BeamsOpt = Annotated[
    int, typer.Option("--num-beams", min=1, metavar="N",
                      help="Beam search width; the best beam is re-scored teacher-forced.")
]
SkipOpt = Annotated[
    bool, typer.Option("--skip-special", help="Hide </s>/[CLS]-like tokens (align renormalises rows over the rest).")
]
LayerDecOpt = Annotated[int, typer.Option("--layer", "-l", metavar="N", help="Decoder layer, 0-based; -1 is the last.")]
AlignModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="NAME|PATH",
                 help="Hub id or local folder of a text encoder-decoder (Marian/opus-mt, T5, BART), or of a "
                      "speech encoder-decoder (Whisper) for audio. Default for text: Helsinki-NLP/opus-mt-en-de."),
]
EncoderLayersOpt = Annotated[
    Optional[str], typer.Option("--layers", metavar="N|A-B|all",
                                help="Keep only these ENCODER self-attention layers in the capture (e.g. 0-2, -1; "
                                     "default all). Cross-attention, which the view draws, is always kept whole.")
]
EncoderHeadsOpt = Annotated[
    Optional[str], typer.Option("--heads", metavar="N|A-B|all",
                                help="Keep only these ENCODER self-attention heads (e.g. 0-3; default all).")
]
CaptionModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="NAME|PATH",
                 help="Hub id or local folder of a captioner (VisionEncoderDecoder, BLIP). "
                      "Default: nlpconnect/vit-gpt2-image-captioning."),
]


def align(
    text: Annotated[Optional[str], typer.Argument(
        metavar="TEXT|AUDIO", show_default=False,
        help='Source text, "-" to read it from stdin, or a PCM WAV recording for a speech model (Whisper).')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", metavar="PATH",
                                                 help="Read the source text from this file.")] = None,
    target: Annotated[
        Optional[str], typer.Option("--target", "-t", metavar="TEXT",
                                    help="Score this target text instead of generating one.")
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
    width: WidthOpt = None,
    save: SaveOpt = None,
    layers: EncoderLayersOpt = None,
    heads: EncoderHeadsOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
) -> None:
    """Translate text or transcribe a WAV (or score --target) and show what each output token attends to."""
    from attncli import sources
    from attncli.views.cross import needs

    if target is not None and target != "-" and not target.strip():
        raise UsageError("--target is empty", "give the target text, or leave --target out to generate")
    plan = sources.plan(sources.Request(
        value=text, file=file, model=model, purpose=Purpose.align,
        accepts=sources.TEXTS | {sources.InputKind.image, sources.InputKind.audio}, device=device,
        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, selection=needs(layers, heads),
        generation=sources.Generation(target, max_new_tokens, num_beams)))
    if plan.kind is sources.InputKind.image:
        raise UsageError(f"{text} is an image; attn align takes text", "caption an image with: attn caption IMAGE")
    audio = plan.kind is sources.InputKind.audio
    if audio and output is not None and output.suffix.lower() in (".html", ".htm"):
        raise UsageError("the interactive page does not draw audio yet", "write a figure (-o FILE.png) or --json")
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, width=width, inputs=plan.inputs)
    resolved = sources.resolve(plan)
    if audio:
        from attncli.views.speech import speech_view

        show(speech_view(resolved.capture, layer, head, fuse, skip_special), where, resolved, save)
        return
    from attncli.views.cross import align_view

    view = align_view(resolved.capture, layer, head, fuse, skip_special)
    spec = MapSpec(layer=layer, head=head, fuse=fuse, skip_special=skip_special)
    show(view, with_page(where, resolved.capture, spec), resolved, save)


def caption(
    image: Annotated[Path, typer.Argument(help="An image file.", show_default=False, metavar="IMAGE")],
    text: Annotated[
        Optional[str], typer.Option("--text", "-t", metavar="TEXT",
                                    help='Score this caption instead of generating one, e.g. "a cat on a couch".')
    ] = None,
    model: CaptionModelOpt = None,
    layer: LayerDecOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, metavar="K",
                                       help="How many patches to list per word.")] = 3,
    max_new_tokens: MaxNewOpt = 20,
    num_beams: BeamsOpt = 1,
    skip_special: SkipOpt = False,
    output: OutOpt = None,
    as_json: JsonOpt = False,
    width: WidthOpt = None,
    save: SaveOpt = None,
    layers: EncoderLayersOpt = None,
    heads: EncoderHeadsOpt = None,
    device: DeviceOpt = Device.cpu,
    trust_remote_code: TrustOpt = False,
    allow_pickle: PickleOpt = False,
) -> None:
    """Caption an image (or score --text) and show, per word, which image patches it attended to."""
    from attncli import sources
    from attncli.views.cross import needs

    if text is not None and not text.strip():
        raise UsageError("--text is empty", "give the caption to score, or leave --text out to generate one")
    plan = sources.plan(sources.Request(
        value=str(image), model=model, purpose=Purpose.caption, value_is_path=True,
        accepts=frozenset({sources.InputKind.image}), device=device, trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle, selection=needs(layers, heads),
        generation=sources.Generation(text, max_new_tokens, num_beams)))
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, width=width, inputs=plan.inputs)
    resolved = sources.resolve(plan)
    from attncli.views.cross import caption_view

    view = caption_view(resolved.capture, layer, head, fuse, skip_special, top_k)
    spec = MapSpec(layer=layer, head=head, fuse=fuse, skip_special=skip_special)
    show(view, with_page(where, resolved.capture, spec), resolved, save)
