"""On a CUDA machine: selective capture on the GPU equals eager attention on the CPU, and the CLI's placements agree.

    PYTHONPATH=src python scripts/check_gpu.py

Tiny random-weight GPT-2, Llama (RoPE, grouped-query attention) and BERT, 300 tokens with a padded second row:
every layer, one layer with its heads fused (mean and max), and three query rows of two layers, each with the
default row chunks and with chunks of a few rows, compared weight for weight with the CPU eager model (TF32 off).
Then `attn explain` on the tiny GPT-2 with `--device cuda`, with `--device-map auto --max-memory 0=...,cpu=...`
(split over the GPU and the CPU) and with `--torch-dtype bfloat16 --device cuda`, against `--device cpu`.
Prints one line per check and exits 1 if any is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]


def main() -> int:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    from attncli.capture import Selection
    from attncli.choices import Fuse
    from attncli.families import selective
    from tiny import make_bert, make_gpt2, make_llama

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    work = Path(tempfile.mkdtemp(prefix="attn-gpu-"))
    models = {"gpt2": (make_gpt2(work / "gpt2", layers=3, heads=4, hidden=64, positions=512), AutoModelForCausalLM),
              "llama": (make_llama(work / "llama", layers=3, heads=4, kv_heads=2, hidden=64, positions=512),
                        AutoModelForCausalLM),
              "bert": (make_bert(work / "bert", layers=3, heads=4, hidden=64, max_positions=512), AutoModel)}
    # budget=0: keep only what is selected (a whole capture this small is otherwise kept whole)
    selections = {"all": Selection(), "layer1-mean": Selection(layers=(1,), fuse=Fuse.mean, budget=0),
                  "layer2-max": Selection(layers=(2,), fuse=Fuse.max, budget=0),
                  "rows": Selection(layers=(0, 2), rows=(5, 100, 299), budget=0)}
    failed = 0
    for name, (folder, cls) in models.items():
        eager = cls.from_pretrained(folder, attn_implementation="eager").eval()
        gpu = cls.from_pretrained(folder, attn_implementation=selective.register()).eval().cuda()
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(3, 25, (2, 300), generator=gen)
        mask = torch.ones_like(ids)
        mask[1, 250:] = 0
        for padded in (False, True):
            inputs = {"input_ids": ids} | ({"attention_mask": mask} if padded else {})
            with torch.inference_mode():
                ref = torch.stack(eager(**inputs, output_attentions=True).attentions, 1).numpy()  # (B, L, H, Q, K)
            for label, sel in selections.items():
                for chunk in (selective.CHUNK_BYTES, 4 * 2 * 4 * 300 * 7):  # default, and 7 rows per chunk
                    old, selective.CHUNK_BYTES = selective.CHUNK_BYTES, chunk
                    try:
                        got, kept, _ = selective.capture_selected(gpu, {k: v.cuda() for k, v in inputs.items()}, sel)
                    finally:
                        selective.CHUNK_BYTES = old
                    want = ref[:, kept["layer_ids"]] if kept["layer_ids"] is not None else ref
                    want = want[:, :, :, kept["query_ids"]] if kept["query_ids"] is not None else want
                    if kept["fused_heads"] == "mean":
                        want = want.mean(axis=2, keepdims=True)
                    elif kept["fused_heads"] == "max":
                        want = want.max(axis=2, keepdims=True)
                    err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
                    ok = err <= 1e-5
                    failed += not ok
                    print(f"{'ok ' if ok else 'OFF'} {name:5} padded={padded!s:5} {label:11} chunk={chunk:>9} "
                          f"shape={got.shape} max|gpu-cpu|={err:.2e}")
    failed += cli_checks(models["gpt2"][0], work)
    print("all equal" if not failed else f"{failed} check(s) off")
    return 1 if failed else 0


def cli_checks(folder: Path, work: Path) -> int:
    """`attn explain --json` weights with --device cuda, a GPU/CPU split and bfloat16, against --device cpu."""
    import numpy as np

    text = "The cat sat on the mat because it was tired " * 20
    env = {**os.environ, "ATTN_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT / "src")}

    def weights(*extra: str) -> "np.ndarray":
        out = subprocess.run([sys.executable, "-m", "attncli", "explain", text, "--model", str(folder), "--layer", "1",
                              "--json", *extra], capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(f"attn explain {' '.join(extra)} failed: {out.stderr.strip()}")
        return np.array(json.loads(out.stdout)["weights"])

    cpu = weights("--device", "cpu")
    failed = 0
    for extra, bound in ((("--device", "cuda"), 1e-5),
                         (("--device-map", "auto", "--max-memory", "0=300KB,cpu=1GB"), 1e-5),
                         (("--torch-dtype", "bfloat16", "--device", "cuda"), 3e-2)):
        err = float(np.abs(weights(*extra) - cpu).max())
        ok = err <= bound
        failed += not ok
        print(f"{'ok ' if ok else 'OFF'} attn explain {' '.join(extra):55} max|w - cpu|={err:.2e} (bound {bound})")
    return failed


if __name__ == "__main__":
    sys.exit(main())
