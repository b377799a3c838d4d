"""ViT-like image encoders (ViT, DeiT, BEiT, DINOv2 with or without registers): one global patch grid.

The grid is read from the config and the processed input — patch size, image size, and the prefix tokens before
the patches ([CLS], DeiT's [DIST], register tokens) — never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from attncli.capture import ALL, Capture, Prediction, Selection, architecture
from attncli.choices import Kind, Purpose
from attncli.errors import CaptureError, NotSupportedError
from attncli.families.base import Family, Modality
from attncli.grid import PatchGrid

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from attncli.families.loaded import LoadedModel

# Model types whose attention runs over one global grid of patches.
GLOBAL_GRID = {"vit", "deit", "beit", "data2vec-vision", "dinov2", "dinov2_with_registers", "vit_msn", "dinov3_vit"}
SUPPORTED = "a ViT, DeiT, BEiT or DINOv2 image model"
# Image towers with no [CLS] token: their maps are the mean of every query row (they pool with their own head).
NO_CLS = {"siglip_vision_model", "siglip2_vision_model"}


class VitLike(Family):
    """An image encoder over one global patch grid; a classifier checkpoint keeps its head."""

    name = "ViT-like image encoder"
    examples = "ViT, DeiT, BEiT, DINOv2"
    modality = Modality.image
    purposes = frozenset({Purpose.image, Purpose.image_classification})
    default_class = "AutoModel"
    processor_class = "AutoImageProcessor"

    def matches(self, config: Any) -> bool:
        """Known global-grid model types, or any image config with a patch size and no windows."""
        model_type = getattr(config, "model_type", "")
        if model_type in GLOBAL_GRID:
            return True
        return (getattr(config, "patch_size", None) is not None and not getattr(config, "is_encoder_decoder", False)
                and not hasattr(config, "vision_config") and not getattr(config, "window_size", None) and not isinstance(getattr(config, "depths", None), list))

    def prefix_labels(self, config: Any) -> tuple[str, ...]:
        """[CLS] (none in SigLIP), DeiT's distillation token, then register tokens."""
        labels = [] if getattr(config, "model_type", "") in NO_CLS else ["[CLS]"]
        if getattr(config, "model_type", "") == "deit":
            labels.append("[DIST]")  # every DeiT embedding layer adds it, with or without the teacher head
        registers = int(getattr(config, "num_register_tokens", 0) or 0)
        labels += [f"[REG{i}]" for i in range(registers)]
        return tuple(labels)


FAMILY = VitLike()


def _pair(value: Any) -> tuple[int, int]:
    """An int or (h, w) pair from a config as (h, w)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def grid_from_config(config: Any, image_size: tuple[int, int] | None = None) -> PatchGrid:
    """The model's patch grid: patch size from the config, image size from the input (default the config's)."""
    model_type = getattr(config, "model_type", "?")
    windowed = getattr(config, "window_size", None) or isinstance(getattr(config, "depths", None), list)
    if windowed:
        raise NotSupportedError(
            f"{model_type} models are not supported yet: their attention works in local windows or stages, "
            "not over one global patch grid", f"use {SUPPORTED}")
    if getattr(config, "patch_size", None) is None or getattr(config, "image_size", None) is None:
        raise NotSupportedError(f"{model_type} models are not supported yet: the config names no patch grid",
                                f"use {SUPPORTED}")
    ph, pw = _pair(config.patch_size)
    ih, iw = image_size if image_size is not None else _pair(config.image_size)
    if ih % ph or iw % pw:
        raise NotSupportedError(f"a {ih}×{iw} input does not split into {ph}×{pw} patches")
    labels = FAMILY.prefix_labels(config)
    return PatchGrid(rows=ih // ph, cols=iw // pw, patch_height=ph, patch_width=pw, image_height=ih,
                     image_width=iw, prefix=len(labels), prefix_labels=labels)


def patch_tokens(grid: PatchGrid) -> tuple[list[str], list[bool]]:
    """Token labels (prefix names, then "(row,col)" per patch) and which tokens are special."""
    labels = list(grid.prefix_labels) + [f"({r},{c})" for r in range(grid.rows) for c in range(grid.cols)]
    return labels, [True] * grid.prefix + [False] * grid.n_patches


@dataclass
class Preprocessed:
    """A batch as the model takes it, plus each image as the model sees it."""

    pixel_values: Any  # torch.Tensor (batch, channels, height, width)
    images: list["np.ndarray"]  # per image (height, width, 3) uint8, normalisation undone
    grid: PatchGrid
    framings: list[dict | None] | None = None  # per image: resize and centre crop (attncli.images.framing)


def preprocess(images: Sequence["Image.Image"], processor: Any, config: Any) -> Preprocessed:
    """Run the model's own image processor; the grid follows from the pixels it produces."""
    from attncli.images import framing, processed_pixels

    pixel_values, seen = processed_pixels(images, processor)
    height, width = int(pixel_values.shape[-2]), int(pixel_values.shape[-1])
    grid = grid_from_config(config, (height, width))
    framings = [framing(im.size, processor, (width, height)) for im in images]
    return Preprocessed(pixel_values=pixel_values, images=seen, grid=grid, framings=framings)


def predictions_from_logits(logits: "np.ndarray", config: Any, k: int) -> list[list[Prediction]]:
    """(batch, classes) logits → top-k predictions per image (sigmoid for multi-label models, else softmax)."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)  # (B, C)
    if getattr(config, "problem_type", None) == "multi_label_classification" or x.shape[-1] == 1:
        probs = 1.0 / (1.0 + np.exp(-x))
    else:
        x = x - x.max(axis=-1, keepdims=True)  # keepdims: each image normalised by its own max
        probs = np.exp(x)
        probs /= probs.sum(axis=-1, keepdims=True)
    id2label = getattr(config, "id2label", None) or {}
    result = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[: max(k, 1)]
        result.append([Prediction(int(i), str(id2label.get(int(i), id2label.get(str(int(i)), f"LABEL_{int(i)}"))),
                                  float(row[i])) for i in order])
    return result


def capture_images(
    paths: Sequence["Path | str | Image.Image"],
    loaded: "LoadedModel",
    *,
    batch_size: int = 8,
    top_k: int = 5,
    on_batch: Callable[[int], None] | None = None,
    selection: Selection = ALL,
) -> Iterator[Capture]:
    """Classify images in batches keeping the selection's attention weights; yield one Capture per image, in order.

    Each Capture holds ``attentions`` (layers, heads, query rows, tokens) float32 — what ``selection`` asked for
    (``layer_ids``, ``head_ids``, ``query_ids`` say which; its ``query`` is a patch or prefix token, see
    PatchGrid.query_token) — the patch ``grid``, the image as the model saw it and the top-k ``predictions``.
    ``on_batch(n)`` is called after each batch of n images. An item may also be an RGB PIL image already loaded
    (a dataset's image): it is used as it is and its Capture has no ``source``.
    """
    from attncli.images import load_image

    config = loaded.config
    grid_from_config(config)  # raises NotSupportedError for windowed models; token counts are checked per batch
    arch = architecture(config)
    step = max(1, int(batch_size))
    chunks = [list(paths[start:start + step]) for start in range(0, len(paths), step)]

    def prepare(chunk: list) -> Any:
        pictures = [load_image(p) if isinstance(p, (str, Path)) else p for p in chunk]  # files, or RGB images
        return preprocess(pictures, loaded.processor, config), [p.size for p in pictures]

    # Decode and preprocess the next batch on a worker thread while this one runs through the model
    # (torch releases the GIL); errors still surface in file order, when that batch is reached.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, chunks[0]) if chunks else None
        for n, chunk in enumerate(chunks):
            prepared, sizes = pending.result()
            pending = pool.submit(prepare, chunks[n + 1]) if n + 1 < len(chunks) else None
            yield from _run_batch(loaded, chunk, prepared, sizes, arch, top_k, selection)
            if on_batch is not None:
                on_batch(len(chunk))


def _run_batch(loaded: "LoadedModel", chunk: list, prepared: "Preprocessed", sizes: list[tuple[int, int]], arch: dict,
               top_k: int, selection: Selection = ALL) -> Iterator[Capture]:
    """One forward pass over a preprocessed batch keeping the selection's weights; one Capture per image."""
    import dataclasses

    from attncli.families.selective import capture_selected, item_fields

    config = loaded.config
    grid = prepared.grid
    if selection.query is not None:  # a patch or prefix token: its row, now that the grid is known
        selection = dataclasses.replace(selection, rows=(grid.query_token(selection.query),), query=None)
    elif grid.prefix == 0 and selection.rows == (0,):  # no [CLS]: the map reads the mean of every row
        selection = dataclasses.replace(selection, rows=None)
    pixel_values = prepared.pixel_values.to(loaded.device, dtype=_dtype(loaded.model))
    batch_att, kept, out = capture_selected(loaded.model, {"pixel_values": pixel_values}, selection)
    logits = getattr(out, "logits", None)  # a backbone without a classifier has none: no predictions
    _check_tokens(batch_att.shape[-1], grid, loaded.ref.model_id)  # (B, L', H', R', T)
    tokens, special = patch_tokens(grid)
    preds = [[] for _ in chunk] if logits is None else predictions_from_logits(
        logits.detach().float().cpu().numpy(), config, top_k)  # (B, C) logits
    for i, path in enumerate(chunk):
        yield Capture(
            attentions=batch_att[i],  # (L', H', R', T), a view into this batch's array
            tokens=tokens,
            special=special,
            model_id=loaded.ref.model_id,
            model_path=loaded.ref.location,
            kind=Kind.image,
            arch=arch,
            grid=grid,
            image=prepared.images[i],
            source=str(Path(path).resolve()) if isinstance(path, (str, Path)) else None,
            predictions=preds[i],
            input_size=sizes[i],
            framing=prepared.framings[i] if prepared.framings else None,
            warnings=list(loaded.warnings),
            **item_fields(kept, i),
        )


def capture_image(path: Path | str, loaded: "LoadedModel", **kwargs: Any) -> Capture:
    """Classify one image and return its Capture (see capture_images)."""
    return next(capture_images([path], loaded, **kwargs))


def _dtype(model: Any) -> Any:
    """The dtype of the model's weights (pixels are cast to it)."""
    return next(model.parameters()).dtype


def _check_tokens(n_tokens: int, grid: PatchGrid, model_id: str) -> None:
    """The attention's sequence length must be the grid's prefix plus patches, or the labels would be wrong."""
    if n_tokens == grid.n_tokens:
        return
    if n_tokens < grid.n_patches:
        raise NotSupportedError(
            f"{model_id} is not supported yet: its attention covers {n_tokens} tokens, fewer than the "
            f"{grid.rows}×{grid.cols} patch grid", f"use {SUPPORTED}")
    raise CaptureError(
        f"{model_id}: expected {grid.n_tokens} tokens ({grid.prefix} prefix + {grid.rows}×{grid.cols} patches) "
        f"but the attention covers {n_tokens}", "this architecture adds tokens attncli does not know yet")


def position_embeddings(loaded: "LoadedModel") -> "tuple[np.ndarray, PatchGrid] | None":
    """The learned absolute position embeddings of the patches, (rows*cols, dim), and their grid; None if absent."""
    config = loaded.config
    grid = grid_from_config(config)  # the grid the embeddings were trained for (config image size)
    for name, param in loaded.model.named_parameters():
        if not name.endswith("position_embeddings") or param.dim() != 3:
            continue
        table = param.detach().float().cpu().numpy()[0]  # (prefix + patches, dim)
        if table.shape[0] < grid.n_patches:
            continue
        return table[-grid.n_patches:], grid  # patches come last; registers carry no position embedding
    return None


