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
AlignMaxNewOpt = Annotated[
    Optional[int], typer.Option("--max-new-tokens", min=1, metavar="N", show_default=False,
                                help="Longest output to generate, in tokens (default: 64 for text; for audio, 6 a "
                                     "second of the recording plus 16, at least 64).")]
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
        help='Source text, "-" to read it from stdin, or a recording (WAV, FLAC, OGG, MP3) for a speech model '
             '(Whisper, e.g. --model whisper-tiny.en).')] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", metavar="PATH", rich_help_panel="Input",
                                                 help="Read the source text from this file.")] = None,
    target: Annotated[
        Optional[str], typer.Option("--score", metavar="TEXT", rich_help_panel="Input",
                                    help="Score this output text (translation or transcript) instead of generating one.")
    ] = None,
    old_target: Annotated[Optional[str], typer.Option("--target", "-t", hidden=True,
                                                      help="The old name of --score (kept for one release).")] = None,
    model: AlignModelOpt = None,
    layer: LayerDecOpt = -1,
    head: HeadOpt = None,
    fuse: FuseOpt = Fuse.mean,
    max_new_tokens: AlignMaxNewOpt = None,
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
    """Translate text or transcribe a recording (or score --score) and show what each output token attends to.

    Default model: Helsinki-NLP/opus-mt-en-de for text (downloaded once); audio needs --model (Whisper; offline:
    --model whisper-tiny.en with pip install -e ".[speech]").

    \b
    Examples:
      attn align "The house is small."
      attn align "The house is small." --score "Das Haus ist klein." -o align.png
      attn align speech.flac --model whisper-tiny.en
    """
    from attncli import sources
    from attncli.views.cross import needs

    if target is not None and old_target is not None:
        raise UsageError("--target is the old name of --score", "give --score only")
    named = "--score" if target is not None else "--target"  # errors name the option that was typed
    target = target if target is not None else old_target

    if target is not None and target != "-" and not target.strip():
        raise UsageError(f"{named} is empty", f"give the text to score, or leave {named} out to generate")
    plan = sources.plan(sources.Request(
        value=text, file=file, model=model, purpose=Purpose.align,
        accepts=sources.TEXTS | {sources.InputKind.image, sources.InputKind.audio}, device=device,
        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, selection=needs(layers, heads),
        generation=sources.Generation(target, _new_tokens(max_new_tokens, text), num_beams)))
    if plan.kind is sources.InputKind.image:
        raise UsageError(f"{text} is an image; attn align takes text", "caption an image with: attn caption IMAGE")
    audio = plan.kind is sources.InputKind.audio
    check_save_path(save, plan.inputs)
    where = outputs(as_json=as_json, output=output, width=width, inputs=plan.inputs)
    if audio:
        from attncli.views.speech import speech_view

        resolved = sources.resolve(plan, _stage_lines())  # a long recording says each window on stderr
        view = speech_view(resolved.capture, layer, head, fuse, skip_special)
        show(view, _audio_page(where, view, resolved), resolved, save)
        return
    resolved = sources.resolve(plan)
    from attncli.views.cross import align_view

    aligned = align_view(resolved.capture, layer, head, fuse, skip_special)
    spec = MapSpec(layer=layer, head=head, fuse=fuse, skip_special=skip_special)
    show(aligned, with_page(where, resolved.capture, spec), resolved, save)


def _audio_page(where, view, resolved):
    """Give an HTML target the audio page: the view and the samples the model read (the file read again)."""
    from dataclasses import replace

    from attncli.choices import Format

    if not any(t.fmt is Format.html for t in where.targets):
        return where
    import attncli.render.audio_page  # noqa: F401  registers the page for the HTML format
    from attncli.audio import read_audio
    from attncli.cli.common import Outputs
    from attncli.views.speech import speech_page

    extractor = getattr(resolved.loaded.processor, "feature_extractor", None) if resolved.loaded else None
    rate = int(getattr(extractor, "sampling_rate", 16000))
    page = speech_page(view, read_audio(resolved.capture.source, rate).samples, rate)
    return Outputs(tuple(replace(t, view=page) if t.fmt is Format.html else t for t in where.targets), where.width)


def _stage_lines():
    """A progress report that writes each new stage as one line on stderr ("attn: aligning window 2 of 7 …")."""
    import sys

    said: list[str] = []

    def report(stage: str, done: int | None, total: int | None) -> None:
        if not stage.startswith("loading") and (not said or said[-1] != stage):
            said.append(stage)
            sys.stderr.write(f"attn: {stage}\n")
            sys.stderr.flush()

    return report


def _new_tokens(given: int | None, value: str | None) -> int | None:
    """--max-new-tokens as given; unset: 64 for text, None for a recording (the capture sizes it to the audio)."""
    from attncli.audio import AUDIO_SUFFIXES

    if given is not None:
        return given
    return None if value and Path(value).suffix.lower() in AUDIO_SUFFIXES else 64


def caption(
    image: Annotated[Path, typer.Argument(help="An image file.", show_default=False, metavar="IMAGE")],
    text: Annotated[
        Optional[str], typer.Option("--score", metavar="TEXT", rich_help_panel="Input",
                                    help='Score this caption instead of generating one, e.g. "a cat on a couch".')
    ] = None,
    old_text: Annotated[Optional[str], typer.Option("--text", "-t", hidden=True,
                                                    help="The old name of --score (kept for one release).")] = None,
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
    """Caption an image (or score --score) and show, per word, which image patches it attended to.

    Default model: nlpconnect/vit-gpt2-image-captioning (downloaded once).

    \b
    Examples:
      attn caption samples/chelsea.png
      attn caption samples/chelsea.png --score "a cat on a couch" -o words.png
      attn caption samples/coffee.png --model Salesforce/blip-image-captioning-base
    """
    from attncli import sources
    from attncli.views.cross import needs

    if text is not None and old_text is not None:
        raise UsageError("--text is the old name of --score", "give --score only")
    named = "--score" if text is not None else "--text"  # errors name the option that was typed
    text = text if text is not None else old_text

    if text is not None and not text.strip():
        raise UsageError(f"{named} is empty", f"give the caption to score, or leave {named} out to generate one")
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
