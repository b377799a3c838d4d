"""Sources: what the user gave (text, stdin, a text file, an image, a saved .npz, the last capture) → a Capture.

One resolver for every command and for Python: :func:`plan` classifies the input and checks it cheaply (files
exist, image headers read, no model loaded), so a command can refuse bad output paths before any work;
:func:`resolve` then loads the model through its family and captures, or reads the saved capture. Warnings are
returned in :class:`Resolved`, never printed.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from attncli.choices import Device, DeviceMap, Purpose, TorchDtype
from attncli.errors import UsageError

if TYPE_CHECKING:
    from attncli.capture import Capture, Report, Selection
    from attncli.families.loaded import LoadedModel

CAPTURE_SUFFIX = ".npz"
NEW_TOKENS = 64  # generated tokens when --max-new-tokens is not given (text and images)


class InputKind(str, Enum):
    """What an input is."""

    text = "text"
    stdin = "stdin"
    text_file = "text file"
    image = "image"
    audio = "audio"
    capture = "capture file"
    last = "last capture"


TEXTS = frozenset({InputKind.text, InputKind.stdin, InputKind.text_file})
SAVED = frozenset({InputKind.capture, InputKind.last})


@dataclass(frozen=True)
class Generation:
    """How a model's output is found: given (``target``, encoder-decoders) or generated."""

    target: str | None = None
    max_new_tokens: int | None = NEW_TOKENS  # None: attn align AUDIO sizes it to the recording, text takes NEW_TOKENS
    num_beams: int = 1


@dataclass(frozen=True)
class Request:
    """What the user asked for: an input (INPUT, --text, --file or --last), a model, what the model is for."""

    value: str | None = None  # INPUT as typed: text, "-", or a path
    text: str | None = None  # --text: always text, even when it looks like a file name
    file: Path | None = None  # --file: a text file
    last: bool = False  # --last
    model: str | None = None
    purpose: Purpose | None = None  # None: text → Purpose.text, image → Purpose.image
    accepts: frozenset[InputKind] = frozenset(InputKind)
    default_last: bool = False  # no input at all means the last capture
    value_is_path: bool = False  # INPUT is always a file (text only comes with --text or --file)
    device: Device = Device.cpu
    trust_remote_code: bool = False
    allow_pickle: bool = False  # a pickle-only checkpoint may load (tensors only)
    generation: Generation | None = None  # encoder-decoders (align, caption) and causal LMs (generate)
    selection: "Selection | None" = None  # which self-attention weights to keep (a view's needs); None: all
    torch_dtype: TorchDtype | None = None  # the dtype the weights load in (None: the checkpoint's default)
    device_map: DeviceMap | None = None  # accelerate places the model (instead of --device)
    max_memory: "dict[int | str, int | str] | None" = None  # with device_map: accelerate's budget per device
    offload_folder: Path | None = None  # with device_map: where weights that fit nowhere else go


@dataclass(frozen=True)
class Plan:
    """A checked request: what the input is and which files it names (never to be overwritten)."""

    request: Request
    kind: InputKind
    inputs: tuple[Path, ...] = ()
    text: str | None = None  # the text of a text input, read once (stdin can be read only once)

    @property
    def fresh(self) -> bool:
        """Whether a model runs (and the capture becomes the last one)."""
        return self.kind not in SAVED

    def selecting(self, selection: "Selection") -> "Plan":
        """The same plan keeping only ``selection``'s weights (known once the input's kind is)."""
        from dataclasses import replace

        return replace(self, request=replace(self.request, selection=selection))

    @property
    def purpose(self) -> Purpose:
        """What the model is loaded for."""
        if self.request.purpose is not None:
            return self.request.purpose
        return Purpose.image if self.kind is InputKind.image else Purpose.text


@dataclass
class Resolved:
    """The capture of a request, the model that made it (None for a saved capture) and the warnings to show."""

    capture: "Capture"
    plan: Plan
    loaded: "LoadedModel | None" = None
    warnings: list[str] = field(default_factory=list)


def _given(request: Request) -> list[str]:
    """The input options that were used."""
    return [name for name, on in (("INPUT", request.value is not None), ("--text", request.text is not None),
                                  ("--file", request.file is not None), ("--last", request.last)) if on]


def classify_input(request: Request) -> InputKind:
    """What the input is; a value that looks like a file name must exist."""
    from attncli.audio import AUDIO_SUFFIXES
    from attncli.images import image_extensions

    given = _given(request)
    if not given and request.default_last:
        return InputKind.last
    if not given and request.accepts <= TEXTS:
        raise UsageError("no text given", 'pass it as an argument, with --file PATH, or "-" to read stdin')
    if len(given) != 1:
        names = " / ".join(_names(request.accepts))
        raise UsageError(f"give exactly one input: {names}" if not given else
                         f"{' and '.join(given)} are different inputs: give one, not both", "use one of them")
    if request.last:
        return InputKind.last
    if request.text is not None:
        if re.fullmatch(r"--?[A-Za-z][\w-]*", request.text.strip()):  # `--text --terminal`: an option, not text
            raise UsageError(f"--text got {request.text!r}, which looks like an option, as its text",
                             'put the text right after --text, quoted: --text "The cat sat."')
        return InputKind.text
    if request.file is not None:
        return InputKind.text_file
    value = request.value or ""
    if value == "-":
        return InputKind.stdin
    path = Path(value)
    suffix = path.suffix.lower() if len(value) < 1024 else ""
    looks_like_file = "\n" not in value and " " not in value.strip() and suffix in (
        {CAPTURE_SUFFIX} | image_extensions() | AUDIO_SUFFIXES)
    if looks_like_file or request.value_is_path or (InputKind.text not in request.accepts and len(value) < 1024):
        if _is_dir(path):
            raise UsageError(f"{value} is a folder", "give one file")
        if not _is_file(path):
            hint = "check the path, or use --text to analyse it as text" if InputKind.text in request.accepts \
                else "check the path"
            raise UsageError(f"{value}: no such file", hint)
        if suffix == CAPTURE_SUFFIX:
            return InputKind.capture
        return InputKind.audio if suffix in AUDIO_SUFFIXES else InputKind.image
    if value.strip() and "\n" not in value and len(value) < 1024 and (_is_file(path) or _is_dir(path)):
        # a path given where text goes would be analysed as the words of its name
        folder = _is_dir(path)
        if InputKind.text_file in request.accepts:
            fix = "give a text" if folder else f"to read the text in it, use --file {value}"
        else:  # stats: an INPUT that is text, an image or a capture, and --text to force text
            fix = "give one image file or a text" if folder else "give an image or a capture file"
            fix += "; to analyse the name itself as text, use --text"
        raise UsageError(f"{value} is {'a folder' if folder else 'a file'}, not text", fix)
    return InputKind.text


def _is_file(path: Path) -> bool:
    """Path.is_file that treats unusable names (too long, NUL bytes) as 'no'."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    """Path.is_dir that treats unusable names as 'no'."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _names(kinds: frozenset[InputKind]) -> list[str]:
    """How each accepted input is given, for messages."""
    names = {InputKind.text: "TEXT", InputKind.stdin: '"-" (stdin)', InputKind.text_file: "--file PATH",
             InputKind.image: "IMAGE", InputKind.audio: "AUDIO (.wav, .flac, .ogg, .mp3)", InputKind.capture: "a capture saved with --save (.npz)",
             InputKind.last: "--last"}
    return [names[k] for k in InputKind if k in kinds]


def plan(request: Request) -> Plan:
    """Classify and check the input without loading anything heavy (image headers are read, not decoded)."""
    kind = classify_input(request)
    if kind not in request.accepts:
        if kind is InputKind.image:
            raise UsageError(f"{request.value} is an image, but this command takes text",
                             "caption an image with: attn caption IMAGE; see its attention with: attn heatmap IMAGE")
        if kind is InputKind.audio:
            raise UsageError(f"{request.value} is audio, but this command does not read audio",
                             "see what a speech model's output attended to with: attn align AUDIO.wav --model MODEL")
        raise UsageError(f"this command does not take a {kind.value}", "it takes " + ", ".join(_names(request.accepts)))
    if kind in SAVED and request.model is not None:
        raise UsageError("--model applies when attn captures the input; a saved capture already has its model",
                         "drop --model, or give the text or image instead")
    inputs: tuple[Path, ...] = ()
    if kind is InputKind.image:
        from attncli.images import probe_image

        probe_image(request.value or "")  # a bad file fails now, not after the model has loaded
        inputs = (Path(request.value or ""),)
    elif kind is InputKind.audio:
        from attncli.audio import probe_audio

        probe_audio(request.value or "")  # the header: a bad file fails before the model loads
        if request.model is None:
            raise UsageError("attncli has no default speech model",
                             "name one with --model: whisper-tiny.en (pip install 'attncli[speech]') or a Whisper folder")
        inputs = (Path(request.value or ""),)
    elif kind is InputKind.capture:
        inputs = (Path(request.value or ""),)
    elif kind is InputKind.text_file:
        inputs = (Path(request.file or ""),)
    text = _read(request, kind) if kind in TEXTS else None
    return Plan(request, kind, inputs, text)


def resolve(request: Request | Plan, progress: "Report | None" = None) -> Resolved:
    """The request's Capture: read from a file, or made now by the model's family.

    ``progress(stage, done, total)`` hears what is happening (loading the model, each layer of a long forward);
    the core never prints, the CLI draws it.
    """
    planned = request if isinstance(request, Plan) else plan(request)
    req = planned.request
    if planned.kind in SAVED:
        from attncli.store import load_capture

        capture = load_capture(None if planned.kind is InputKind.last else req.value)
        return Resolved(capture, planned)
    from attncli.models import load_model

    purpose = planned.purpose
    if progress is not None:
        progress(f"loading {req.model or default_model(purpose)}", None, None)
    loaded = load_model(req.model or default_model(purpose), purpose, device=req.device,
                        trust_remote_code=req.trust_remote_code, allow_pickle=req.allow_pickle,
                        dtype=req.torch_dtype, device_map=req.device_map, max_memory=req.max_memory,
                        offload_folder=req.offload_folder)
    capture = _capture(planned, loaded, progress)
    return Resolved(capture, planned, loaded, list(capture.warnings))


def _read(request: Request, kind: InputKind) -> str:
    """The text of a text input (argument, --text, stdin or --file); empty text is a usage error."""
    from attncli.inputs import read_text

    if kind is InputKind.text_file:
        return read_text(None, request.file)
    return read_text(request.text if request.text is not None else request.value)


def _capture(planned: Plan, loaded: "LoadedModel", progress: "Report | None" = None) -> "Capture":
    """Run the loaded model on the input: the family decides how."""
    from attncli.capture import ALL

    purpose, req = planned.purpose, planned.request
    gen = req.generation or Generation()
    new_tokens = gen.max_new_tokens if gen.max_new_tokens is not None else NEW_TOKENS
    selection = req.selection or ALL
    if purpose is Purpose.align and planned.kind is InputKind.audio:
        from attncli.families.speech_capture import capture_audio

        return capture_audio(req.value or "", loaded, target=gen.target, max_new_tokens=gen.max_new_tokens,
                             num_beams=gen.num_beams, selection=selection, progress=progress)
    if purpose is Purpose.align:
        from attncli.families.encdec import capture_align

        return capture_align(planned.text or "", loaded, target=gen.target,
                             max_new_tokens=new_tokens, num_beams=gen.num_beams, selection=selection)
    if purpose is Purpose.caption:
        from attncli.families.vision_encoder_decoder import capture_caption

        return capture_caption(req.value or "", loaded, text=gen.target, max_new_tokens=new_tokens,
                               num_beams=gen.num_beams, selection=selection)
    if purpose is Purpose.generate:
        from attncli.families.causal_lm import capture_generate

        return capture_generate(planned.text or "", loaded, selection, max_new_tokens=new_tokens,
                                num_beams=gen.num_beams, progress=progress)
    if planned.kind is InputKind.image:
        from attncli.families.vit import capture_image

        return capture_image(req.value or "", loaded, selection=selection)
    from attncli.families.text_capture import capture_text

    capture = capture_text(planned.text or "", loaded, selection, progress)
    if planned.kind is InputKind.text_file:
        capture.source = str(Path(req.file or "").resolve())
    return capture


def capture(value: str, model: str | None = None, **kwargs: Any) -> "Capture":
    """Python entry point: capture text, an image file or read a saved .npz, as the CLI would."""
    return resolve(Request(value=value, model=model, **kwargs)).capture


def default_model(purpose: Purpose) -> str:
    """The model a command uses when --model is not given."""
    from attncli.models import DEFAULT_MODELS

    return DEFAULT_MODELS[purpose]


def load(model: "str | LoadedModel | None", purpose: Purpose, *, device: str | Device = Device.cpu,
         trust_remote_code: bool = False, allow_pickle: bool = False) -> "LoadedModel":
    """A loaded model for a purpose, the way every command gets one (None: the purpose's default model).

    A model already loaded is checked (its family serves the purpose, it has the classifier the purpose needs)
    and returned as is.
    """
    from attncli.models import load_model, require_head

    if model is None:
        model = default_model(purpose)
    if not isinstance(model, str):
        from attncli.families import require

        require(model.config, purpose, model.ref.model_id)
        require_head(model.config, purpose, model.ref.model_id, type(model.model).__name__)
        return model
    return load_model(model, purpose, device=device, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def position_embeddings(loaded: "LoadedModel | None") -> Any:
    """An image model's position embeddings and its patch grid (attn patches); None without a model or table."""
    if loaded is None:  # a saved capture: no model to read them from
        return None
    from attncli.families.vit import position_embeddings as read

    return read(loaded)


def capture_text(text: str, model: "str | LoadedModel" = "minilm", *, device: str | Device = Device.cpu,
                 trust_remote_code: bool = False) -> "Capture":
    """Tokenize text, run the model once with attentions returned, and return a Capture."""
    from attncli.families.text_capture import capture_text as run

    return run(text, load(model, Purpose.text, device=device, trust_remote_code=trust_remote_code))


def capture_images(paths: "Sequence[Path | str]", model: "str | LoadedModel" = "shapes", *,
                   device: str | Device = Device.cpu, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """Run an image model over files in batches; one Capture per image (see families.vit.capture_images)."""
    from attncli.families.vit import capture_images as run

    loaded = load(model, Purpose.image, device=device, trust_remote_code=trust_remote_code)
    return run(paths, loaded, **kwargs)


def capture_image(path: "Path | str", model: "str | LoadedModel" = "shapes", **kwargs: Any) -> "Capture":
    """One image's Capture."""
    return next(iter(capture_images([path], model, **kwargs)))


def capture_align(source: str, model: "str | LoadedModel | None" = None, *, device: str | Device = Device.cpu,
                  trust_remote_code: bool = False, **kwargs: Any) -> "Capture":
    """Translate (or score ``target=``) with a text encoder-decoder and capture its cross-attention."""
    from attncli.families.encdec import capture_align as run

    loaded = load(model, Purpose.align, device=device, trust_remote_code=trust_remote_code)
    return run(source, loaded, **kwargs)


def capture_caption(image: Any, model: "str | LoadedModel | None" = None, *, device: str | Device = Device.cpu,
                    trust_remote_code: bool = False, **kwargs: Any) -> "Capture":
    """Caption an image (or score ``text=``) and capture which patches each word attended to."""
    from attncli.families.vision_encoder_decoder import capture_caption as run

    loaded = load(model, Purpose.caption, device=device, trust_remote_code=trust_remote_code)
    return run(image, loaded, **kwargs)


def image_files(values: list[Path] | list[str]) -> list[Path]:
    """Image files named or found in folders (sorted by name), each header checked before any model loads."""
    from attncli.images import collect_images, probe_image

    paths = collect_images(values)
    for path in paths:
        probe_image(path)  # headers only: a bad file fails now, not after the model has loaded
    return paths
