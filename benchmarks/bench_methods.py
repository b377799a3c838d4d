"""What rollout, gradient rollout and attention flow cost next to the forward pass they explain.

    python benchmarks/bench_methods.py [--runs 5] [--lengths 17,50,101,197] [--json]

  (a) a ViT-B/16-sized classifier (random weights, 224 px, 12 layers × 12 heads, 197 tokens, eager attention):
      one forward pass with attentions returned (what a capture costs), then on that capture
        - rollout (numpy, heads fused by mean; and with --discard-ratio 0.9),
        - gradient rollout: the forward + backward that yields d(logit)/d(attention) for every layer, and the
          numpy relevance update R ← R + mean_h((∇A ⊙ A)⁺)·R on top,
        - attention flow for the CLS row (197 max-flow problems on a 12-layer graph of 197² edges each);
      each as a median time and as a multiple of the forward pass;
  (b) attention flow time against input length: the CLS row over 12 layers (12 heads) for each length, on
      random attention with peaked rows (softmax of Gaussian scores × 3), plus the full matrix where it is
      within the size limit.

Timings are medians of --runs runs (flow: fewer, it is slow); torch uses all cores it is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def median_time(fn, runs: int) -> float:
    """Median wall time of fn() over runs calls, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vit_b16():
    """ViT-B/16 with random weights and eager attention (1000 classes), in eval mode."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, num_labels=1000)
    config._attn_implementation = "eager"
    return ViTForImageClassification(config).eval()


def peaked_attention(layers: int, heads: int, n: int, seed: int = 0):
    """(layers, heads, n, n) float32 rows: softmax of Gaussian scores × 3 (some keys clearly preferred)."""
    import numpy as np

    scores = np.random.default_rng(seed).normal(size=(layers, heads, n, n)) * 3
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def bench_vit(runs: int) -> dict:
    """Part (a): forward vs rollout, grad-rollout and flow on a ViT-B/16 capture."""
    import torch

    from attncli.capture import stack_attentions
    from attncli.methods.flow import attention_flow
    from attncli.methods.gradients import attention_gradients, gradient_rollout
    from attncli.methods.rollout import rollout

    model = vit_b16()
    pixels = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.inference_mode():
            return model(pixel_values=pixels, output_attentions=True)

    forward()  # warm-up
    t_forward = median_time(forward, runs)
    att = stack_attentions(forward().attentions)  # (12, 12, 197, 197)
    t_rollout = median_time(lambda: rollout(att), runs)
    t_discard = median_time(lambda: rollout(att, discard_ratio=0.9), runs)
    t_grads = median_time(lambda: attention_gradients(model, {"pixel_values": pixels}), runs)
    grads = attention_gradients(model, {"pixel_values": pixels})[0]
    t_relevance = median_time(lambda: gradient_rollout(grads.attentions, grads.gradients), runs)
    t_flow = median_time(lambda: attention_flow(att, queries=[0]), max(1, runs // 3))
    rows = {
        "forward pass (capture)": t_forward,
        "rollout (numpy)": t_rollout,
        "rollout, discard 0.9": t_discard,
        "grad-rollout: forward + backward": t_grads,
        "grad-rollout: relevance update (numpy)": t_relevance,
        "grad-rollout total": t_grads + t_relevance,
        "attention flow, CLS row": t_flow,
    }
    return {"shape": list(att.shape), "threads": torch.get_num_threads(),
            "seconds": {k: round(v, 4) for k, v in rows.items()},
            "x_forward": {k: round(v / t_forward, 3) for k, v in rows.items()}}


def bench_flow(lengths: list[int], runs: int) -> list[dict]:
    """Part (b): flow time against input length (12 layers, 12 heads)."""
    from attncli.methods.flow import MAX_WORK, attention_flow, flow_work

    out = []
    for n in lengths:
        att = peaked_attention(12, 12, n)
        row = median_time(lambda att=att: attention_flow(att, queries=[0]), runs)
        entry = {"tokens": n, "cls_row_s": round(row, 4), "work_cls_row": flow_work(n, 12, 1)}
        if flow_work(n, 12, n) <= MAX_WORK:
            entry["full_matrix_s"] = round(median_time(lambda att=att: attention_flow(att), 1), 3)
        else:
            entry["full_matrix_s"] = None  # refused above MAX_WORK
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run both parts and print a report (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lengths", default="17,50,101,197")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    vit = bench_vit(args.runs)
    flow = bench_flow([int(x) for x in args.lengths.split(",")], max(1, args.runs // 2))
    if args.json:
        print(json.dumps({"vit_b16": vit, "flow": flow}, indent=2))
        return
    print(f"(a) ViT-B/16 capture {tuple(vit['shape'])}, torch threads {vit['threads']}; median of {args.runs} runs")
    for name, seconds in vit["seconds"].items():
        print(f"    {name:<40} {seconds * 1000:9.1f} ms   {vit['x_forward'][name]:7.2f}× forward")
    print("(b) attention flow, 12 layers × 12 heads, peaked random attention")
    print(f"    {'tokens':>6}  {'CLS row':>10}  {'full matrix':>12}")
    for e in flow:
        full = "refused" if e["full_matrix_s"] is None else f"{e['full_matrix_s']:.2f} s"
        print(f"    {e['tokens']:>6}  {e['cls_row_s']:>8.3f} s  {full:>12}")


if __name__ == "__main__":
    main()
