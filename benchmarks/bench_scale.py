"""Cost of `attn explain` on long prompts, side by side with a minimal SDPA script (each run a fresh process).

    python benchmarks/bench_scale.py [--lengths 512 1024 2048] [--layers 12 --heads 12 --hidden 768]

Builds a random-weight GPT-2 (default GPT-2-small-sized: 12 layers x 12 heads, 768 wide) with tests/tiny.py,
writes prompts of exactly N tokens, and measures, per length, wall time and peak RSS (ru_maxrss of the child) of:
  base     import torch + transformers, load the model with SDPA, one forward (the floor)
  layer    attn explain --file P --layer 3         (target <= 1.25x time, <= 1.3x peak RSS of base)
  token    attn explain --file P --token 100       (one query row at every layer)
  all      attn explain --file P --layers all      (every layer's weights kept: the cost, and bytes on disk)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = """
import sys, torch, transformers
path, text = sys.argv[1], open(sys.argv[2]).read()
tok = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
with torch.inference_mode():
    model(**tok(text, return_tensors="pt"))
"""


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one fresh process; its output is discarded, a failure stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def prompt(folder: Path, model: Path, n: int) -> Path:
    """A text file the model's tokenizer reads as exactly n tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    words = "The cat sat on the mat because it was tired and the dog ran to a big red house. "
    ids = tok(words * (n // 8 + 8))["input_ids"][:n]
    path = folder / f"p{n}.txt"
    path.write_text(tok.decode(ids))
    assert len(tok(path.read_text())["input_ids"]) == n
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import make_gpt2

    work = Path(tempfile.mkdtemp(prefix="attn-scale-"))
    model = make_gpt2(work / "model", layers=args.layers, heads=args.heads, hidden=args.hidden,
                      positions=max(args.lengths))
    env = {**os.environ, "ATTN_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT / "src")}
    attn = [sys.executable, "-m", "attncli", "explain", "--model", str(model)]
    print(f"GPT-2 {args.layers} layers x {args.heads} heads, {args.hidden} wide, random weights; {os.cpu_count()} CPUs")
    print("| tokens | base s / MB | --layer 3 s / MB (ratio) | --token s / MB (ratio) | --layers all s / MB / last.npz MB |")
    print("|---|---|---|---|---|")
    for n in args.lengths:
        text = prompt(work, model, n)
        base = run([sys.executable, "-c", MINIMAL, str(model), str(text)], env)
        layer = run(attn + ["--file", str(text), "--layer", "3"], env)
        token = run(attn + ["--file", str(text), "--token", "100"], env)
        every = run(attn + ["--file", str(text), "--layers", "all", "--layer", "3"], env)
        disk = (work / "cache" / "last.npz").stat().st_size / 2**20
        ratio = lambda r: f"{r[0]:.1f} / {r[1]:.0f} ({r[0] / base[0]:.2f}x, {r[1] / base[1]:.2f}x)"  # noqa: E731
        print(f"| {n} | {base[0]:.1f} / {base[1]:.0f} | {ratio(layer)} | {ratio(token)} | "
              f"{every[0]:.1f} / {every[1]:.0f} / {disk:.0f} |", flush=True)


if __name__ == "__main__":
    main()
