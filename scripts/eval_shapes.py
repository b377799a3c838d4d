#!/usr/bin/env python
"""Held-out accuracy of the shapes ViT on fresh synthetic images.

    PYTHONPATH=src python scripts/eval_shapes.py                # shipped model
    PYTHONPATH=src python scripts/eval_shapes.py --model DIR --n 1000 --seed 12345

Images are generated with ``attncli.synthetic.make_dataset(n, seed)`` from a
seed that training never used (training uses 1000 for the training set and
2000 for validation by default), fed through the saved ``ViTImageProcessor``
and the model, and the accuracy plus a confusion matrix are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from attncli.synthetic import CLASSES, make_dataset  # noqa: E402

DEFAULT_MODEL = ROOT / "src/attncli/assets/shapes"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Held-out accuracy of the shapes ViT.")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model folder (default: %(default)s)")
    p.add_argument("--n", type=int, default=1000, help="number of fresh images")
    p.add_argument("--seed", type=int, default=12345, help="generator seed (must not be a training seed)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from transformers import ViTForImageClassification, ViTImageProcessor

    torch.set_num_threads(args.threads)
    info_path = args.model / "training.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        used = {info.get("data", {}).get("train_seed"), info.get("data", {}).get("val_seed")}
        if args.seed in used:
            print(f"warning: seed {args.seed} was used during training; accuracy is not held-out",
                  file=sys.stderr)

    model = ViTForImageClassification.from_pretrained(args.model, attn_implementation="eager")
    processor = ViTImageProcessor.from_pretrained(args.model)
    model.eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if tuple(labels) != CLASSES:
        raise SystemExit(f"model labels {labels} != generator classes {list(CLASSES)}")
    size = model.config.image_size

    t0 = time.time()
    samples = make_dataset(args.n, args.seed, size=size)
    y = np.array([s.label for s in samples])
    preds = []
    with torch.no_grad():
        for i in range(0, args.n, args.batch_size):
            batch = samples[i:i + args.batch_size]
            inputs = processor(images=[s.image for s in batch], return_tensors="pt")
            preds.append(model(**inputs).logits.argmax(-1).numpy())
    pred = np.concatenate(preds)
    acc = float((pred == y).mean())
    k = len(CLASSES)
    conf = np.zeros((k, k), dtype=int)
    np.add.at(conf, (y, pred), 1)

    print(f"held-out accuracy: {100 * acc:.1f}% (n={args.n}, seed={args.seed})")
    w = max(len(c) for c in CLASSES) + 1
    print("confusion (rows = true, cols = predicted):")
    print(" " * w + "".join(f"{c[:7]:>8}" for c in CLASSES) + "  recall")
    for i, c in enumerate(CLASSES):
        rec = conf[i, i] / max(1, conf[i].sum())
        print(f"{c:<{w}}" + "".join(f"{v:>8d}" for v in conf[i]) + f"  {100 * rec:5.1f}%")
    errs = [(CLASSES[t], CLASSES[q], int(conf[t, q])) for t in range(k) for q in range(k)
            if t != q and conf[t, q]]
    errs.sort(key=lambda e: -e[2])
    if errs:
        print("most common confusions: " + ", ".join(f"{a}->{b} x{n}" for a, b, n in errs[:5]))
    else:
        print("no confusions")
    print(f"({time.time() - t0:.1f}s, model {args.model})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
