"""How faithful is each map? Pointing game and IoU on synthetic shapes; deletion/insertion AUC on any images.

Every map is the CLS token's row over the patch grid (rows, cols) from one of the methods, plus a random map
(uniform noise, seeded) as the baseline every method has to beat.

- **pointing game** (Zhang et al. 2016): a hit when the centre of the map's top patch lies within
  ``tolerance`` pixels of an object pixel (default half a patch — the role of the paper's 15 px at 224 px).
  Work is at the patch grid: the map is never upsampled, the mask stays at image pixels. When patches tie
  for the top (attention flow saturates: many input tokens receive the same maximal flow), the score is the
  share of tied top patches that hit — what a random pick among them scores on average.
- **IoU@k%**: the top ``ceil(k% · patches)`` patches form a region of whole patches; IoU with the object mask
  is counted in pixels.
- **deletion / insertion AUC** (Petsiuk et al. 2018): patches are replaced by a baseline (the image's mean
  colour, a blur, or black) a step at a time in the map's order, most important first (a step is
  ``ceil(patches / 16)`` patches unless given: 17 points per curve); the curve is the target class's softmax
  probability against the fraction of patches changed, its area the score (deletion: lower is better;
  insertion: starts from the baseline image, higher is better).

Everywhere else, equal map values are ordered at random (seeded by ``seed``, the same order for every
method of an image), never by position, which would favour the top-left of the image.

Targets: on shapes the true class (the pointing game asks where the named object is); on other images the
predicted class.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from attncli.choices import Fuse
from attncli.methods.registry import Method, info
from attncli.errors import UsageError
from attncli.views.evaluation import EvalReport, MethodScore

if TYPE_CHECKING:
    import numpy as np

    from attncli.grid import PatchGrid
    from attncli.families.loaded import LoadedModel

RANDOM = "random"
BASELINES = ("mean", "blur", "black")
# Deletion/insertion curves get about this many steps by default (a forward pass per step, per map).
CURVE_STEPS = 16


def default_step(n_patches: int) -> int:
    """Patches changed per deletion/insertion step so the curve has about CURVE_STEPS steps."""
    return max(1, math.ceil(n_patches / CURVE_STEPS))


def patch_centres(grid: "PatchGrid") -> "np.ndarray":
    """(rows, cols, 2) pixel coordinates (y, x) of every patch centre."""
    import numpy as np

    ys = (np.arange(grid.rows) + 0.5) * grid.patch_height
    xs = (np.arange(grid.cols) + 0.5) * grid.patch_width
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)


def top_cells(heat: "np.ndarray", rtol: float = 1e-6) -> "np.ndarray":
    """Flat indices of the cells tied at the map's maximum (attention flow often saturates at one value)."""
    import numpy as np

    flat = heat.reshape(-1)
    top = float(flat.max())
    return np.flatnonzero(flat >= top - abs(top) * rtol)


def ranking(heat: "np.ndarray", tie_break: "np.ndarray | None" = None) -> "np.ndarray":
    """Flat patch indices from the highest value down; equal values ordered by ``tie_break`` (e.g. random keys)."""
    import numpy as np

    flat = heat.reshape(-1)
    if tie_break is None:
        return np.argsort(-flat, kind="stable")
    return np.lexsort((tie_break.reshape(-1), -flat))  # last key sorts first


def pointing_hit(heat: "np.ndarray", mask: "np.ndarray", grid: "PatchGrid", tolerance: float) -> float:
    """1 when the centre of the map's top patch is within ``tolerance`` px of an object pixel's centre, else 0.

    When several patches tie for the top, the share of them that hit: the expected score of a random pick.
    """
    import numpy as np

    obj = np.argwhere(mask) + 0.5  # (n, 2) centres of object pixels
    if obj.size == 0:
        return 0.0
    centres = patch_centres(grid).reshape(-1, 2)[top_cells(heat)]  # (ties, 2) as (y, x)
    dist = np.hypot(obj[None, :, 0] - centres[:, None, 0], obj[None, :, 1] - centres[:, None, 1]).min(axis=1)
    return float(np.mean(dist <= tolerance + 1e-9))


def topk_iou(heat: "np.ndarray", mask: "np.ndarray", grid: "PatchGrid", percent: float,
             tie_break: "np.ndarray | None" = None) -> float:
    """Pixel IoU between the object mask and the region of the top ``percent``% patches of the map."""
    import numpy as np

    k = max(1, math.ceil(percent / 100.0 * grid.n_patches))
    top = ranking(heat, tie_break)[:k]
    chosen = np.zeros(grid.n_patches, dtype=bool)
    chosen[top] = True
    region = np.kron(chosen.reshape(grid.rows, grid.cols),
                     np.ones((grid.patch_height, grid.patch_width), dtype=bool))  # (H, W)
    union = np.logical_or(region, mask).sum()
    return float(np.logical_and(region, mask).sum() / union) if union else 0.0


def cls_maps(attentions: "np.ndarray", gradients: "np.ndarray | None", methods: Sequence[Method],
             grid: "PatchGrid", *, layer: int = -1, fuse: Fuse | str = Fuse.mean,
             discard_ratio: float = 0.0, extras: "dict[str, np.ndarray] | None" = None,
             ) -> "tuple[dict[str, np.ndarray], dict[str, float]]":
    """Each method's CLS map over the patch grid, (rows, cols), for one image; and the seconds each took."""
    from attncli.methods.dispatch import method_rows

    maps, seconds = {}, {}
    patches = slice(grid.prefix, grid.prefix + grid.n_patches)
    for method in methods:
        start = time.perf_counter()
        m = info(method)
        ratio = discard_ratio if "discard_ratio" in m.options else 0.0
        row = method_rows(attentions, method, layer, fuse=fuse if m.fuses else Fuse.mean, queries=[0],
                          discard_ratio=ratio, gradients=gradients, protect=range(grid.prefix), extras=extras)[0]
        maps[method.value] = row[patches].reshape(grid.rows, grid.cols)
        seconds[method.value] = time.perf_counter() - start
    return maps, seconds


def baseline_image(pixels: Any, how: str) -> Any:
    """(C, H, W) tensor → what a deleted patch becomes: the image's mean colour, a blur of it, or zeros."""
    import torch

    if how == "mean":
        return pixels.mean(dim=(1, 2), keepdim=True).expand_as(pixels).clone()
    if how == "black":
        return torch.zeros_like(pixels)
    if how == "blur":
        k = max(3, (min(pixels.shape[-2:]) // 8) | 1)  # odd box kernel, an eighth of the image
        padded = torch.nn.functional.pad(pixels[None], (k // 2,) * 4, mode="replicate")
        return torch.nn.functional.avg_pool2d(padded, k, stride=1)[0]
    raise UsageError(f"--baseline {how}: one of {', '.join(BASELINES)}")


def deletion_insertion(model: Any, pixels: Any, order: "np.ndarray", grid: "PatchGrid", target: int,
                       baseline: str = "mean", step: int = 1, batch_size: int = 64) -> tuple[float, float]:
    """(deletion AUC, insertion AUC) of the target's probability, changing ``step`` patches at a time in order."""
    import numpy as np
    import torch

    base = baseline_image(pixels, baseline)  # (C, H, W)
    counts = list(range(0, grid.n_patches, step)) + [grid.n_patches]
    order_t = torch.as_tensor(np.asarray(order), dtype=torch.long)
    rank = torch.empty(grid.n_patches, dtype=torch.long)
    rank[order_t] = torch.arange(grid.n_patches)  # rank[p]: when patch p is changed
    per_pixel = rank.view(grid.rows, 1, grid.cols, 1).expand(-1, grid.patch_height, -1, grid.patch_width)
    per_pixel = per_pixel.reshape(1, 1, grid.image_height, grid.image_width)  # (1, 1, H, W)
    frames = [(c, kind) for kind in ("deletion", "insertion") for c in counts]
    probs = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            chunk = frames[start:start + batch_size]
            limit = torch.tensor([c for c, _ in chunk]).view(-1, 1, 1, 1)
            changed = per_pixel < limit  # (B, 1, H, W): the first `count` patches of the order
            insert = torch.tensor([kind == "insertion" for _, kind in chunk]).view(-1, 1, 1, 1)
            # deletion: the most important patches become the baseline first; insertion: they come back first
            batch = torch.where(changed ^ insert, base, pixels)  # (B, C, H, W)
            logits = model(pixel_values=batch).logits
            probs.append(torch.softmax(logits.float(), dim=-1)[:, target].cpu())
    p = torch.cat(probs).numpy()
    x = np.asarray(counts, dtype=np.float64) / grid.n_patches
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined]  # numpy < 2
    return float(trapezoid(p[: len(counts)], x)), float(trapezoid(p[len(counts):], x))


def evaluate(
    loaded: "LoadedModel",
    images: Sequence[Any],
    methods: Sequence[Method | str],
    *,
    masks: Sequence["np.ndarray"] | None = None,
    labels: Sequence[int] | None = None,
    seed: int = 0,
    layer: int = -1,
    fuse: Fuse | str = Fuse.mean,
    discard_ratio: float = 0.0,
    tolerance: float | None = None,
    top_percent: float = 15.0,
    auc: bool = True,
    baseline: str = "mean",
    step: int | None = None,
    batch_size: int = 16,
    dataset: str = "images",
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Score every method and a random map on PIL images (masks and labels: the pointing game and IoU too)."""
    import numpy as np

    from attncli.families.vit import preprocess
    from attncli.methods.gradients import attention_gradients

    chosen = [Method(m) for m in methods]
    if not chosen:
        raise UsageError("no methods to evaluate", "e.g. --methods attention,rollout")
    if baseline not in BASELINES:
        raise UsageError(f"--baseline {baseline}: one of {', '.join(BASELINES)}")
    if not 0 < top_percent <= 100:
        raise UsageError(f"--top-percent {top_percent}: must be in (0, 100]")
    names = [m.value for m in chosen] + [RANDOM]
    sums = {name: {"pointing": 0.0, "iou": 0.0, "deletion": 0.0, "insertion": 0.0, "seconds": 0.0} for name in names}
    rng = np.random.default_rng([seed, 1])  # the random baseline's own stream, repeatable with --seed
    ties = np.random.default_rng([seed, 2])  # random order among equal map values, the same for every method
    correct, done, grid = 0, 0, None
    need_grads = any(info(m).gradients for m in chosen)
    needed = tuple(dict.fromkeys(e for m in chosen for e in info(m).extras))  # extra arrays the methods read
    for start in range(0, len(images), batch_size):
        batch = list(images[start:start + batch_size])
        prepared = preprocess(batch, loaded.processor, loaded.config)
        grid = prepared.grid
        step = step or default_step(grid.n_patches)
        pixels = prepared.pixel_values.to(loaded.device, dtype=next(loaded.model.parameters()).dtype)
        targets = None if labels is None else [int(t) for t in labels[start:start + len(batch)]]
        extras: list[dict[str, Any]] = [{} for _ in batch]
        if need_grads:
            results = attention_gradients(loaded.model, {"pixel_values": pixels}, targets)
            if needed:
                extras = _forward(loaded.model, pixels, targets, needed)[1]
        else:
            results, extras = _forward(loaded.model, pixels, targets, needed)
        for i, res in enumerate(results):
            correct += int(np.argmax(res.logits)) == res.target
            maps, seconds = cls_maps(res.attentions, res.gradients if need_grads else None, chosen, grid,
                                     layer=layer, fuse=fuse, discard_ratio=discard_ratio, extras=extras[i])
            maps[RANDOM], seconds[RANDOM] = rng.random((grid.rows, grid.cols)), 0.0
            mask = None if masks is None else _mask_at(masks[start + i], grid)
            tie_break = ties.random(grid.n_patches)
            for name, heat in maps.items():
                acc = sums[name]
                acc["seconds"] += seconds[name]
                if mask is not None:
                    acc["pointing"] += pointing_hit(heat, mask, grid, grid.patch_height / 2 if tolerance is None
                                                    else tolerance)
                    acc["iou"] += topk_iou(heat, mask, grid, top_percent, tie_break)
                if auc:
                    order = ranking(heat, tie_break)
                    d, ins = deletion_insertion(loaded.model, pixels[i], order, grid, res.target, baseline, step)
                    acc["deletion"] += d
                    acc["insertion"] += ins
            done += 1
            if progress is not None:
                progress(done, len(images))
    n = max(done, 1)

    def mean(name: str, metric: str) -> float | None:
        """The metric's mean over the images, None where it was not computed."""
        computed = masks is not None if metric in ("pointing", "iou") else auc
        return sums[name][metric] / n if computed else None

    scores = [MethodScore(name, mean(name, "pointing"), mean(name, "iou"), mean(name, "deletion"),
                          mean(name, "insertion"), seconds=sums[name]["seconds"] / n) for name in names]
    settings = {"methods": [m.value for m in chosen], "layer": layer, "fuse": Fuse(fuse).value,
                "discard_ratio": discard_ratio, "target": "true class" if labels is not None else "prediction",
                "grid": None if grid is None else f"{grid.rows}x{grid.cols}"}
    if masks is not None:
        settings.update(top_percent=top_percent,
                        tolerance_px=(grid.patch_height / 2 if tolerance is None else tolerance) if grid else tolerance)
    if auc:
        settings.update(baseline=baseline, patches_per_step=step)
    return EvalReport(loaded.ref.model_id, dataset, done, seed, scores,
                      accuracy=correct / n if labels is not None else None, settings=settings)


def _forward(model: Any, pixels: Any, targets: Sequence[int] | None, extras: Sequence[str] = ()) -> tuple[list, list]:
    """Attention and logits without gradients (no grad-rollout asked): same shape of result as the gradient run;
    and each image's extra arrays (Capture.extras) the methods read."""
    import numpy as np

    from attncli.capture import Selection
    from attncli.families.selective import capture_selected, item_fields
    from attncli.methods.gradients import GradientCapture

    att, fields, out = capture_selected(model, {"pixel_values": pixels}, Selection(extras=tuple(extras)))  # (B, L, H, T, T)
    logits = out.logits.float().cpu().numpy()  # (B, C)
    chosen = [int(np.argmax(row)) for row in logits] if targets is None else list(targets)
    return ([GradientCapture(att[b], None, logits[b], chosen[b], str(chosen[b])) for b in range(len(chosen))],
            [item_fields(fields, b)["extras"] for b in range(len(chosen))])


def _mask_at(mask: "np.ndarray", grid: "PatchGrid") -> "np.ndarray":
    """The object mask at the model's input size (nearest neighbour when the processor resized the image)."""
    import numpy as np
    from PIL import Image

    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (grid.image_height, grid.image_width):
        return mask
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((grid.image_width, grid.image_height), Image.Resampling.NEAREST)
    return np.asarray(resized) > 127


def shapes_set(loaded: "LoadedModel", n: int, seed: int) -> tuple[list, list["np.ndarray"], list[int]]:
    """n fresh shapes images at the model's input size (seeded), their masks and true labels."""
    from attncli.families.vit import grid_from_config
    from attncli.methods.gradients import class_labels
    from attncli.synthetic import CLASSES, make_dataset

    if [name.lower() for name in class_labels(loaded.config)] != list(CLASSES):
        raise UsageError(f"{loaded.ref.model_id} was not trained on the shapes set (its classes are not "
                         f"{', '.join(CLASSES)})", "use --model shapes, or give IMAGES for deletion/insertion")
    if n < 1:
        raise UsageError(f"--n {n}: need at least one image")
    grid = grid_from_config(loaded.config)
    samples = make_dataset(n, seed, size=grid.image_height)
    return [s.image for s in samples], [s.mask for s in samples], [s.label for s in samples]
