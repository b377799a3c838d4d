"""Image classification throughput and heatmap re-render cost, side by side with the plain libraries.

    python benchmarks/bench_vision.py [--images 32] [--batch-size 8] [--runs 3] [--workdir DIR]

  (a) classify a folder of 32 JPEGs with a ViT-B/16-sized classifier (224 px, 12 layers × 12 heads, 768 wide,
      1000 classes, random weights saved locally) through attncli's capture path (batched, attention of
      every layer returned and summarised per image, as `attn classify` does) vs transformers'
      pipeline("image-classification") on the same files (its defaults: one image per forward pass, no
      attention returned): images per second each, and the ratio            (target ≥ 1.0×)
      The same capture path is also set against pipeline(..., batch_size=8), which batches and runs fused SDPA
      without returning attention: that ratio is reported, with no target.
  (b) `attn heatmap --layer 6` re-rendering the last capture of that model to a PNG vs
      `python -c "import torch"`, each a fresh process                    (target ≤ 0.5×)
  (c) the FLOP floor: the machine's fp32 matmul rate (torch.matmul of two 2048×2048 float32 matrices, best of
      10 before and 10 after (a), torch's default threads, 2·n³ FLOP each) and ViT-B/16's 17.6 G multiply-adds
      (the usual "17.6 GFLOPs" counts a multiply-add as one) = 35.2 GFLOP per image over that rate, against the
      capture path's s/img from (a)                                      (target ≤ 2.0×)

Runs are interleaved so background load hits both sides alike; (a) reports the best run of each side,
(b) the median. The model and images are built once in --workdir (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VIT_B16_GMAC = 17.6  # multiply-adds per 224-px image, as timm and fvcore count ViT-B/16 ("17.6 GFLOPs")


def build_model(folder: Path) -> Path:
    """A randomly initialised ViT-B/16 with 1000 labels and a 224-px image processor, saved like a hub model."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.manual_seed(0)
    labels = {i: f"class {i}" for i in range(1000)}
    config = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, num_labels=1000, id2label=labels,
                       label2id={v: k for k, v in labels.items()})
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def build_images(folder: Path, n: int) -> list[Path]:
    """n photo-sized JPEGs (smooth colour fields with shapes), sizes varying like a real folder."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.jpg"
        paths.append(path)
        if path.is_file():
            continue
        w, h = [(640, 480), (500, 375), (480, 640), (800, 600)][i % 4]
        small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            draw.ellipse((x, y, x + int(rng.integers(30, 200)), y + int(rng.integers(30, 200))),
                         fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        image.save(path, quality=90)
    return paths


def classify_throughput(model_dir: Path, paths: list[Path], batch_size: int, runs: int) -> tuple[float, float, float]:
    """Images/second of attncli's capture path, of the default pipeline and of the pipeline with batching."""
    from transformers import pipeline

    from attncli.choices import Purpose
    from attncli.sources import capture_images, load
    from attncli.views.classify import needs, summarise

    loaded = load(str(model_dir), Purpose.image_classification)
    pipe = pipeline("image-classification", model=str(model_dir), device="cpu")
    files = [str(p) for p in paths]

    def ours() -> None:
        for capture in capture_images(paths, loaded, batch_size=batch_size, top_k=5, selection=needs()):
            summarise(capture, 5)  # what attn classify keeps: the last layer's [CLS] row

    def theirs() -> None:
        pipe(files, top_k=5)

    def theirs_batched() -> None:
        pipe(files, top_k=5, batch_size=batch_size)

    # warm-up: the first calls allocate buffers and page the weights in
    list(capture_images(paths[:2], loaded, batch_size=2))
    pipe(files[:2])
    best = {"ours": float("inf"), "theirs": float("inf"), "theirs_batched": float("inf")}
    for _ in range(runs):
        for name, fn in (("ours", ours), ("theirs", theirs), ("theirs_batched", theirs_batched)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    n = len(paths)
    return n / best["ours"], n / best["theirs"], n / best["theirs_batched"]


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """The machine's fp32 matmul rate in GFLOP/s: 2·n³ FLOP per n×n product, best of repeats, default threads."""
    import torch

    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.matmul(a, b, out=out)  # warm-up: the first call picks the kernel and touches the memory
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def vit_gmac(model_dir: Path) -> float:
    """Multiply-adds of one forward of the saved ViT, counted from its config (a check on VIT_B16_GMAC), in G."""
    import json

    c = json.loads((model_dir / "config.json").read_text())
    d, patch = c["hidden_size"], c["patch_size"]
    patches = (c["image_size"] // patch) ** 2
    tokens = patches + 1  # [CLS]
    # per layer: Q, K, V and output projections, the MLP, then Q·Kᵀ and weights·V
    per_layer = tokens * (4 * d * d + 2 * d * c["intermediate_size"]) + 2 * tokens * tokens * d
    embed = patches * c.get("num_channels", 3) * patch * patch * d
    return (c["num_hidden_layers"] * per_layer + embed + d * len(c["id2label"])) / 1e9


def wall(cmd: list[str], env: dict) -> float:
    """Seconds one process takes from spawn to exit."""
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def heatmap_vs_torch(model_dir: Path, image: Path, workdir: Path, runs: int) -> tuple[float, float]:
    """Median seconds of `attn heatmap --layer 6` from the last capture and of `python -c "import torch"`."""
    from attncli.store import save_capture
    from attncli.sources import capture_image

    cache = workdir / "cache"
    save_capture(capture_image(image, str(model_dir)), cache / "last.npz")
    env = {**os.environ, "ATTN_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    ours = [sys.executable, "-m", "attncli", "heatmap", "--layer", "6", "-o", str(workdir / "heatmap.png")]
    theirs = [sys.executable, "-c", "import torch"]
    wall(ours, env), wall(theirs, env)  # warm the OS file cache for both sides
    a, b = [], []
    for _ in range(runs):
        a.append(wall(ours, env))
        b.append(wall(theirs, env))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the model and images here between runs")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="attn-bench-vision-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    print(f"python {sys.version.split()[0]}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, {os.cpu_count()} cpus")
    model_dir = build_model(workdir / "vit-b16")
    paths = build_images(workdir / "images", args.images)
    rate = matmul_rate()
    ours, theirs, theirs_batched = classify_throughput(model_dir, paths, args.batch_size, args.runs)
    rate = max(rate, matmul_rate())  # before and after (a), so a burst of background load hits neither alone
    heat, torch_import = heatmap_vs_torch(model_dir, paths[0], workdir, max(args.runs, 5))
    floor = 2 * VIT_B16_GMAC / rate  # seconds per image at the matmul rate: 2 FLOP per multiply-add
    print()
    print(f"(a) classify {args.images} images, ViT-B/16 (best of {args.runs}):")
    print(f"    attncli capture path (batch {args.batch_size}, attentions kept) {ours:6.2f} img/s")
    print(f"    pipeline('image-classification'), defaults          {theirs:6.2f} img/s")
    print(f"    pipeline(..., batch_size={args.batch_size}) for reference        {theirs_batched:6.2f} img/s")
    print(f"(b) attn heatmap --layer 6 from the last capture {heat:6.3f}s  vs  python -c 'import torch' "
          f"{torch_import:6.3f}s (median of {max(args.runs, 5)})")
    print(f"(c) fp32 matmul 2048x2048 (best of 2 x 10, {torch.get_num_threads()} threads) {rate:7.1f} GFLOP/s")
    print(f"    ViT-B/16: {VIT_B16_GMAC} G multiply-adds = {2 * VIT_B16_GMAC:.1f} GFLOP per image (counted from this "
          f"model's config: {vit_gmac(model_dir):.2f} G multiply-adds)")
    print(f"    {f'FLOP floor {2 * VIT_B16_GMAC:.1f} GFLOP / {rate:.1f} GFLOP/s':<48}{floor:6.3f} s/img")
    print(f"    {'attncli capture path (from (a))':<48}{1 / ours:6.3f} s/img")
    print()
    print(f"{'classify throughput, attncli / pipeline':<54} ratio {ours / theirs:5.2f}x   (target >= 1.0x)")
    print(f"{f'classify throughput, attncli / pipeline(batch_size={args.batch_size})':<54} ratio "
          f"{ours / theirs_batched:5.2f}x   (reported, no target)")
    print(f"{'classify s/img / ViT-B/16 FLOP floor':<54} ratio {(1 / ours) / floor:5.2f}x   (target <= 2.0x)")
    print(f"{'heatmap re-render / import torch':<54} ratio {heat / torch_import:5.2f}x   (target <= 0.5x)")


if __name__ == "__main__":
    main()
