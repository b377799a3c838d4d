"""Image classification throughput and heatmap re-render cost, side by side with the plain libraries.

    python benchmarks/bench_vision.py [--images 32] [--batch-size 8] [--runs 3] [--workdir DIR]

  (a) classify a folder of 32 JPEGs with a ViT-B/16-sized classifier (224 px, 12 layers × 12 heads, 768 wide,
      1000 classes, random weights saved locally) through attncli's capture path (batched, attention of
      every layer returned and summarised per image, as `attn classify` does) vs transformers'
      pipeline("image-classification") on the same files (its defaults: one image per forward pass, no
      attention returned): images per second each, and the ratio            (target ≥ 1.0×)
  (b) `attn heatmap --layer 6` re-rendering the last capture of that model to a PNG vs
      `python -c "import torch"`, each a fresh process                    (target ≤ 0.5×)

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
    ours, theirs, theirs_batched = classify_throughput(model_dir, paths, args.batch_size, args.runs)
    heat, torch_import = heatmap_vs_torch(model_dir, paths[0], workdir, max(args.runs, 5))
    print()
    print(f"(a) classify {args.images} images, ViT-B/16 (best of {args.runs}):")
    print(f"    attncli capture path (batch {args.batch_size}, attentions kept) {ours:6.2f} img/s")
    print(f"    pipeline('image-classification'), defaults          {theirs:6.2f} img/s")
    print(f"    pipeline(..., batch_size={args.batch_size}) for reference        {theirs_batched:6.2f} img/s")
    print(f"(b) attn heatmap --layer 6 from the last capture {heat:6.3f}s  vs  python -c 'import torch' "
          f"{torch_import:6.3f}s (median of {max(args.runs, 5)})")
    print()
    print(f"{'classify throughput, attncli / pipeline':<44} ratio {ours / theirs:5.2f}x   (target >= 1.0x)")
    print(f"{'heatmap re-render / import torch':<44} ratio {heat / torch_import:5.2f}x   (target <= 0.5x)")


if __name__ == "__main__":
    main()
