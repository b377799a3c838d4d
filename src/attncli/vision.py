"""Run an image classifier over files in batches and keep what it attended to: one image Capture per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from attncli.capture import Capture, Prediction, architecture, stack_attentions
from attncli.choices import Device, Task
from attncli.errors import CaptureError, NotSupportedError
from attncli.grid import PatchGrid

if TYPE_CHECKING:
    import numpy as np

    from attncli.models import LoadedModel


def load_image_model(
    model: "str | LoadedModel", *, device: str | Device = Device.cpu, trust_remote_code: bool = False
) -> "LoadedModel":
    """Load an image classifier (eager attention) unless one is given already."""
    if not isinstance(model, str):
        return model
    from attncli.models import load_model

    return load_model(model, Task.image_classification, device=device, trust_remote_code=trust_remote_code)


def patch_tokens(grid: PatchGrid) -> tuple[list[str], list[bool]]:
    """Token labels (prefix names, then "(row,col)" per patch) and which tokens are special."""
    labels = list(grid.prefix_labels) + [f"({r},{c})" for r in range(grid.rows) for c in range(grid.cols)]
    return labels, [True] * grid.prefix + [False] * grid.n_patches


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
    paths: Sequence[Path | str],
    model: "str | LoadedModel" = "shapes",
    *,
    batch_size: int = 8,
    top_k: int = 5,
    device: str | Device = Device.cpu,
    trust_remote_code: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Capture]:
    """Classify images in batches with attentions returned; yield one Capture per image, in order.

    Each Capture holds ``attentions`` (layers, heads, tokens, tokens) float32, the patch ``grid``, the image as
    the model saw it and the top-k ``predictions``. ``on_batch(n)`` is called after each batch of n images.
    """
    from attncli.images import load_image, preprocess, supports_grid

    loaded = load_image_model(model, device=device, trust_remote_code=trust_remote_code)
    config = loaded.config
    if not supports_grid(config):
        from attncli.images import grid_from_config

        grid_from_config(config)  # raises NotSupportedError for windowed models; others are checked below
    arch = architecture(config)
    step = max(1, int(batch_size))
    chunks = [list(paths[start:start + step]) for start in range(0, len(paths), step)]

    def prepare(chunk: list) -> Any:
        return preprocess([load_image(p) for p in chunk], loaded.processor, config)

    # Decode and preprocess the next batch on a worker thread while this one runs through the model
    # (torch releases the GIL); errors still surface in file order, when that batch is reached.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, chunks[0]) if chunks else None
        for n, chunk in enumerate(chunks):
            prepared = pending.result()
            pending = pool.submit(prepare, chunks[n + 1]) if n + 1 < len(chunks) else None
            yield from _run_batch(loaded, chunk, prepared, arch, top_k)
            if on_batch is not None:
                on_batch(len(chunk))


def _run_batch(loaded: "LoadedModel", chunk: list, prepared: Any, arch: dict, top_k: int) -> Iterator[Capture]:
    """One forward pass with attentions over a preprocessed batch; one Capture per image."""
    import torch

    config = loaded.config
    pixel_values = prepared.pixel_values.to(loaded.device, dtype=_dtype(loaded.model))
    with torch.inference_mode():
        out = loaded.model(pixel_values=pixel_values, output_attentions=True)
    batch_att = stack_attentions(getattr(out, "attentions", None), item=None)  # (B, L, H, T, T)
    logits = out.logits.detach().float().cpu().numpy()  # (B, C)
    grid = prepared.grid
    _check_tokens(batch_att.shape[-1], grid, loaded.ref.model_id)
    tokens, special = patch_tokens(grid)
    preds = predictions_from_logits(logits, config, top_k)
    for i, path in enumerate(chunk):
        yield Capture(
            attentions=batch_att[i],  # (L, H, T, T), a view into this batch's array
            tokens=tokens,
            special=special,
            model_id=loaded.ref.model_id,
            kind="image",
            arch=arch,
            grid=grid,
            image=prepared.images[i],
            source=str(path),
            predictions=preds[i],
        )


def capture_image(path: Path | str, model: "str | LoadedModel" = "shapes", **kwargs: Any) -> Capture:
    """Classify one image and return its Capture (see capture_images)."""
    return next(capture_images([path], model, **kwargs))


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
            f"{grid.rows}×{grid.cols} patch grid", "use a ViT, DeiT, BEiT or DINOv2 classifier")
    raise CaptureError(
        f"{model_id}: expected {grid.n_tokens} tokens ({grid.prefix} prefix + {grid.rows}×{grid.cols} patches) "
        f"but the attention covers {n_tokens}", "this architecture adds tokens attncli does not know yet")


def position_embeddings(loaded: "LoadedModel") -> "tuple[np.ndarray, PatchGrid] | None":
    """The learned absolute position embeddings of the patches, (rows*cols, dim), and their grid; None if absent."""
    from attncli.images import grid_from_config

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


@dataclass
class ClassifiedImage:
    """What `attn classify` reports per image: top-k labels and where CLS looks at the last layer."""

    source: str
    predictions: list[Prediction]
    cls_top: list[tuple[int, int, float]]  # (row, col, weight), highest first
    cls_layer: int
    cls_method: str = "attention"  # how the CLS map was computed (attncli.choices.Method)

    def to_dict(self) -> dict:
        """One entry of the `images` list in `attn classify --json` (schema attncli.classify/1)."""
        return {
            "source": self.source,
            "predictions": [{"index": p.index, "label": p.label, "score": round(p.score, 6)} for p in self.predictions],
            "cls_top_patches": [{"row": r, "col": c, "weight": round(w, 6)} for r, c, w in self.cls_top],
            "cls_layer": self.cls_layer,
            "cls_method": self.cls_method,
        }


def summarise(capture: Capture, k: int = 5, patches: int = 3, method: str = "attention", discard_ratio: float = 0.0,
              gradients: "np.ndarray | None" = None) -> ClassifiedImage:
    """Top-k predictions and the CLS token's top patches at the last layer (heads averaged, or --method's map)."""
    from attncli.maps import query_map, top_patches

    amap = query_map(capture, layer=-1, method=method, discard_ratio=discard_ratio, gradients=gradients)
    return ClassifiedImage(source=capture.source or "", predictions=list(capture.predictions[:k]),
                           cls_top=top_patches(amap, patches), cls_layer=amap.layer, cls_method=amap.method)


def classify_document(rows: Sequence[ClassifiedImage], model_id: str, grid: PatchGrid | None,
                      kept: str | None) -> dict:
    """The JSON document of `attn classify --json` (schema attncli.classify/1)."""
    return {
        "schema": "attncli.classify/1",
        "model": model_id,
        "grid": grid.to_dict() if grid is not None else None,
        "images": [row.to_dict() for row in rows],
        "last_capture": kept,
    }
