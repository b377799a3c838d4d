#!/usr/bin/env python
"""Train a small ViTForImageClassification from scratch on synthetic shapes (CPU).

Reproducible: python ``random``, numpy and torch are seeded, the training and
validation sets are generated once from fixed (different) seeds, and the
schedule depends only on the arguments (``--minutes`` is only a safety cap;
if it triggers, ``training.json`` says so).

Example (the shipped model)::

    PYTHONPATH=src python scripts/train_shapes.py --out src/attncli/assets/shapes

Pixels are fed exactly as the saved ``ViTImageProcessor`` produces them:
the generator already emits ``image_size`` x ``image_size`` RGB images (so the
processor's resize is the identity), then ``x / 255`` and ``(x - mean) / std``.
The script checks this against the processor before training.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from attncli.synthetic import CLASSES, make_dataset  # noqa: E402

MEAN = [0.5, 0.5, 0.5]
STD = [0.5, 0.5, 0.5]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "src/attncli/assets/shapes",
                   help="output folder for the Hugging Face model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch/numpy/random seed for training")
    p.add_argument("--train-seed", type=int, default=1000, help="generator seed of the training set")
    p.add_argument("--val-seed", type=int, default=2000, help="generator seed of the validation set")
    p.add_argument("--train-size", type=int, default=30000)
    p.add_argument("--val-size", type=int, default=1200)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--patch-size", type=int, default=8)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp", type=int, default=256, help="intermediate (MLP) size")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--no-augment", action="store_true", help="disable random flips/transposes")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                   help="CPU bfloat16 autocast for forward/backward (weights stay fp32)")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="wall-clock budget; training stops early if exceeded")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=20, help="steps between progress lines")
    return p.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_uint8_tensor(samples) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.stack([np.asarray(s.image, dtype=np.uint8) for s in samples])  # N,H,W,3
    y = np.array([s.label for s in samples], dtype=np.int64)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def normalise(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float pixels exactly as ViTImageProcessor does it."""
    x = x_u8.to(torch.float32) * (1.0 / 255.0)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random per-sample dihedral transform (flips + transpose); labels are invariant."""
    n = x.shape[0]
    r = torch.rand(n, 3, generator=gen) < 0.5
    x = torch.where(r[:, 0].view(n, 1, 1, 1), x.flip(3), x)
    x = torch.where(r[:, 1].view(n, 1, 1, 1), x.flip(2), x)
    x = torch.where(r[:, 2].view(n, 1, 1, 1), x.transpose(2, 3), x)
    return x


@torch.no_grad()
def evaluate(model, x_u8, y, batch_size=500) -> tuple[float, float]:
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, len(y), batch_size):
        xb = normalise(x_u8[i:i + batch_size])
        logits = model(pixel_values=xb).logits
        loss_sum += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(-1) == y[i:i + batch_size]).sum().item()
    model.train()
    return correct / len(y), loss_sum / len(y)


def main(argv=None) -> int:
    args = parse_args(argv)
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    if len({args.train_seed, args.val_seed}) != 2:
        raise SystemExit("--train-seed and --val-seed must differ")

    t0 = time.time()
    print(f"generating {args.train_size} train (seed {args.train_seed}) + "
          f"{args.val_size} val (seed {args.val_seed}) images of {args.image_size}px ...", flush=True)
    train = make_dataset(args.train_size, args.train_seed, size=args.image_size)
    val = make_dataset(args.val_size, args.val_seed, size=args.image_size)
    xtr, ytr = to_uint8_tensor(train)
    xva, yva = to_uint8_tensor(val)
    gen_s = time.time() - t0
    print(f"  done in {gen_s:.1f}s; train tensor {tuple(xtr.shape)} uint8", flush=True)

    processor = ViTImageProcessor(
        do_resize=True,
        size={"height": args.image_size, "width": args.image_size},
        resample=2,  # PIL bilinear
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=MEAN,
        image_std=STD,
    )
    # the processor must reproduce the training pixels exactly
    ref = processor(images=[s.image for s in val[:16]], return_tensors="pt")["pixel_values"]
    ours = normalise(xva[:16])
    diff = (ref - ours).abs().max().item()
    print(f"  processor vs training pixels: max abs diff {diff:.2e}", flush=True)
    if diff > 1e-5:
        raise SystemExit("training preprocessing does not match ViTImageProcessor")
    del train, val

    id2label = {i: c for i, c in enumerate(CLASSES)}
    config = ViTConfig(
        image_size=args.image_size,
        patch_size=args.patch_size,
        num_channels=3,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.mlp,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        qkv_bias=True,
        id2label=id2label,
        label2id={c: i for i, c in id2label.items()},
    )
    seed_everything(args.seed)
    model = ViTForImageClassification._from_config(config, attn_implementation="eager")
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    grid = args.image_size // args.patch_size
    print(f"model: ViT {args.layers}x{args.hidden} heads={args.heads} mlp={args.mlp} "
          f"patch grid {grid}x{grid}, {n_params / 1e6:.3f}M params", flush=True)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "position_embeddings" in name or "cls_token" in name
         else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.999),
    )
    steps_per_epoch = math.ceil(args.train_size / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup = max(1, int(round(args.warmup_epochs * steps_per_epoch)))

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * t))

    gen = torch.Generator().manual_seed(args.seed)
    budget_s = args.minutes * 60.0
    t_train = time.time()
    step, stopped_early, history = 0, False, []
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(args.train_size, generator=gen)
        run_loss, run_correct, run_n = 0.0, 0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            xb = normalise(xtr[idx])
            if not args.no_augment:
                xb = augment(xb, gen)
            yb = ytr[idx]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(pixel_values=xb).logits
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            step += 1
            run_loss += loss.item() * len(yb)
            run_correct += (logits.argmax(-1) == yb).sum().item()
            run_n += len(yb)
            if step % args.log_every == 0:
                el = time.time() - t_train
                print(f"  epoch {epoch} step {step}/{total_steps} lr {lr_at(step - 1):.2e} "
                      f"loss {run_loss / run_n:.4f} train-acc {run_correct / run_n:.3f} "
                      f"[{el / 60:.1f} min, {step * args.batch_size / max(1e-9, el):.0f} img/s]",
                      flush=True)
            if time.time() - t_train > budget_s:
                stopped_early = True
                break
        val_acc, val_loss = evaluate(model, xva, yva)
        el = time.time() - t_train
        history.append({"epoch": epoch, "train_loss": round(run_loss / run_n, 5),
                        "train_acc": round(run_correct / run_n, 5),
                        "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 5),
                        "minutes": round(el / 60, 2)})
        print(f"epoch {epoch}/{args.epochs}: loss {run_loss / run_n:.4f} "
              f"train-acc {run_correct / run_n:.4f} val-loss {val_loss:.4f} "
              f"val-acc {val_acc:.4f} ({el / 60:.1f} min)", flush=True)
        if stopped_early:
            print(f"stopping: --minutes {args.minutes} budget exceeded", flush=True)
            break
    train_s = time.time() - t_train

    final_acc, final_loss = evaluate(model, xva, yva)
    args.out.mkdir(parents=True, exist_ok=True)
    hf_logging.set_verbosity_error()
    model.save_pretrained(args.out, safe_serialization=True)
    processor.save_pretrained(args.out)
    info = {
        "task": "synthetic shapes classification (attncli.synthetic)",
        "classes": list(CLASSES),
        "image_size": args.image_size,
        "patch_size": args.patch_size,
        "patch_grid": [grid, grid],
        "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                  "mlp": args.mlp, "params": n_params},
        "data": {"train_size": args.train_size, "train_seed": args.train_seed,
                 "val_size": args.val_size, "val_seed": args.val_seed,
                 "generator": "attncli.synthetic.make_dataset(n, seed, size)"},
        "recipe": {"optimizer": "AdamW", "lr": args.lr, "min_lr": args.min_lr,
                   "betas": [0.9, 0.999], "weight_decay": args.weight_decay,
                   "schedule": "linear warmup + cosine decay (per step)",
                   "warmup_epochs": args.warmup_epochs, "epochs": args.epochs,
                   "epochs_run": len(history), "steps": step, "batch_size": args.batch_size,
                   "label_smoothing": args.label_smoothing, "grad_clip": args.grad_clip,
                   "augment": "none" if args.no_augment else "random h/v flips + transpose",
                   "autocast": "bfloat16 (CPU)" if args.bf16 else "none (fp32)",
                   "preprocessing": "x/255, (x-0.5)/0.5 == ViTImageProcessor in this folder"},
        "seed": args.seed,
        "stopped_early": stopped_early,
        "data_generation_seconds": round(gen_s, 1),
        "train_seconds": round(train_s, 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "heldout_val_accuracy": round(final_acc, 5),
        "heldout_val_loss": round(final_loss, 5),
        "history": history,
        "command": "python scripts/train_shapes.py " + " ".join(sys.argv[1:]) if argv is None
                   else "python scripts/train_shapes.py " + " ".join(argv),
    }
    try:
        import transformers
        info["transformers"] = transformers.__version__
    except Exception:  # pragma: no cover
        pass
    (args.out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved model to {args.out} (val acc {final_acc:.4f}, train {train_s / 60:.1f} min)",
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
