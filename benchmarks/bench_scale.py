"""Cost of `attn explain` on long prompts, side by side with a minimal SDPA script (each run a fresh process).

    python benchmarks/bench_scale.py [--arch gpt2|llama|both] [--lengths 512 1024 2048 4096 8192] [--repeat K]
                                     [--layers N --heads N --kv-heads N --hidden N --vocab N]

Builds, once per architecture, a random-weight model with tests/tiny.py (in a child process, so this one stays
small) and prompts of exactly N tokens:
  gpt2   GPT-2-small-sized: 12 layers x 12 heads, 768 wide (MLP 4 x 768)
  llama  Llama-style: 16 layers x 16 heads, 1024 wide, 4 key/value heads (GQA), RoPE, MLP 2816 (8/3 x 1024,
         rounded up to 256 as Llama does)
--layers/--heads/--hidden (and --kv-heads for Llama) override both architectures' sizes; --vocab pads the
embedding and LM head to a real vocabulary (default: the tiny tokenizer's 300 ids). Per length it measures wall
time and peak RSS (ru_maxrss of the child) of:
  base     import torch + transformers, load the model with SDPA, one forward (the floor)
  layer    attn explain --file P --layer 3         (target <= 1.25x time, <= 1.3x peak RSS of base)
  token    attn explain --file P --token 100       (one query row at every layer; at 8k within 24 GB)
  all      attn explain --file P --layers all      (every layer's weights kept: the cost, and bytes on disk)
and the bytes of the last capture each attn run left (ATTN_CACHE_DIR/last.npz; the last capture keeps at most
ATTN_LAST_BUDGET_MB of weights, 1 GB by default). The all-layer cell runs only when its float32 weights
(layers x heads x N^2 x 4 bytes) plus the base's peak RSS fit in MemAvailable minus --margin GiB (2); otherwise
it says "not run (needs ~X GB)". With --repeat K every cell runs K times, interleaved, and the median is shown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
MINIMAL = """
import sys, torch, transformers
path, text = sys.argv[1], open(sys.argv[2]).read()
tok = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
with torch.inference_mode():
    model(**tok(text, return_tensors="pt"))
"""
BUILD = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import bench_scale
bench_scale.build(**json.loads(sys.argv[3]))
"""


@dataclass(frozen=True)
class Arch:
    """One model shape to build and measure."""

    name: str
    layers: int
    heads: int
    hidden: int
    kv_heads: int | None = None  # Llama only
    intermediate: int | None = None  # Llama only (GPT-2: 4 x hidden)

    def title(self) -> str:
        """'Llama-style 16 layers x 16 heads (4 KV heads), 1024 wide, MLP 2816'."""
        kv = f" ({self.kv_heads} KV heads)" if self.kv_heads else ""
        mlp = f", MLP {self.intermediate}" if self.intermediate else ""
        kind = "GPT-2" if self.name == "gpt2" else "Llama-style"
        return f"{kind} {self.layers} layers x {self.heads} heads{kv}, {self.hidden} wide{mlp}"


def architectures(args: argparse.Namespace) -> list[Arch]:
    """The architectures asked for, with any size overrides applied."""
    found = []
    if args.arch in ("gpt2", "both"):
        found.append(Arch("gpt2", args.layers or 12, args.heads or 12, args.hidden or 768))
    if args.arch in ("llama", "both"):
        heads, hidden = args.heads or 16, args.hidden or 1024
        intermediate = args.intermediate or 256 * math.ceil(8 * hidden / 3 / 256)
        found.append(Arch("llama", args.layers or 16, heads, hidden, args.kv_heads or math.gcd(heads, 4), intermediate))
    return found


def build(arch: dict, folder: str, lengths: list[int], vocab: int | None) -> None:
    """(In a child process) save the model to folder/model and prompts of exactly n tokens to folder/p{n}.txt."""
    from tiny import make_gpt2, make_llama
    from transformers import AutoTokenizer

    spec, out = Arch(**arch), Path(folder)
    if spec.name == "gpt2":
        make_gpt2(out / "model", spec.layers, spec.heads, spec.hidden, positions=max(lengths), vocab=vocab)
    else:
        make_llama(out / "model", spec.layers, spec.heads, spec.kv_heads or spec.heads, spec.hidden,
                   positions=max(lengths), intermediate=spec.intermediate, vocab=vocab)
    tok = AutoTokenizer.from_pretrained(out / "model")
    words = "The cat sat on the mat because it was tired and the dog ran to a big red house. "
    ids = tok(words * (max(lengths) // 8 + 16))["input_ids"]
    for n in lengths:
        # attn strips the text it reads, so the file holds a stripped text that is exactly n tokens
        cuts = ((start, start + m) for start in range(32) for m in (n, n + 1))
        text = next((t for a, b in cuts if len(tok(t := tok.decode(ids[a:b]).strip())["input_ids"]) == n), None)
        assert text is not None, f"no prompt of exactly {n} tokens"
        (out / f"p{n}.txt").write_text(text)


@dataclass
class Run:
    """One fresh process: seconds, peak RSS in MB, bytes of the last capture it left, or why it was refused."""

    seconds: float
    rss_mb: float
    disk: int | None = None
    refused: str | None = None


def run(cmd: list[str], env: dict, last: Path | None = None) -> Run:
    """Time one fresh process; an attn run refused with a 'needs ...' message or a killed run is reported as such,
    any other failure stops the benchmark."""
    if last is not None:
        last.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        message = (err.strip().splitlines() or [""])[-1]
        if last is not None and message.startswith("attn: error: ") and "needs" in message:
            return Run(seconds, usage.ru_maxrss / 1024, refused=message.removeprefix("attn: error: "))
        if code < 0:  # killed, most likely by the kernel's OOM killer: a result for this cell, not the end
            return Run(seconds, usage.ru_maxrss / 1024, refused=f"killed by {signal.Signals(-code).name}")
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    disk = last.stat().st_size if last is not None and last.is_file() else None
    return Run(seconds, usage.ru_maxrss / 1024, disk)


def median(runs: list[Run]) -> Run:
    """The median time and the median peak RSS of repeated runs (bytes on disk and refusals from the last)."""
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.rss_mb for r in runs),
               runs[-1].disk, runs[-1].refused)


def meminfo(field: str) -> int:
    """A /proc/meminfo field in bytes (0 where there is no /proc)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def human(size: float) -> str:
    """Bytes as '38.7 GB' or '120 MB' (decimal units, as the 24 GB target is written)."""
    return f"{size / GB:.1f} GB" if size >= GB else f"{size / 1e6:.3g} MB"


def mb(size: int | None) -> str:
    """Bytes as MB for a cell (two digits below 10 MB), '-' where nothing was written."""
    if size is None:
        return "-"
    return f"{size / 2**20:.2f}" if size < 10 * 2**20 else f"{size / 2**20:.0f}"


def cell(r: Run, base: Run) -> str:
    """'8.9 / 830 (0.81x, 1.03x) / 12' : seconds / peak MB (ratios to the base) / last.npz MB."""
    if r.refused:
        needs = re.search(r"needs[^,;()]*", r.refused)
        return f"stopped after {r.seconds:.1f} s / {r.rss_mb:.0f} MB: {(needs.group(0) if needs else r.refused).strip()}"
    return f"{r.seconds:.1f} / {r.rss_mb:.0f} ({r.seconds / base.seconds:.2f}x, {r.rss_mb / base.rss_mb:.2f}x) / " \
           f"{mb(r.disk)}"


def measure(arch: Arch, args: argparse.Namespace, work: Path) -> None:
    """Build one model, then print its table: every length, every cell, ratios to the base of the same run."""
    folder = work / arch.name
    spec = json.dumps({"arch": arch.__dict__, "folder": str(folder), "lengths": args.lengths, "vocab": args.vocab})
    built = subprocess.run([sys.executable, "-c", BUILD, str(ROOT / "benchmarks"), str(ROOT / "tests"), spec],
                           env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(f"building the {arch.name} model failed:\n{built.stderr}")
    layer = str(min(3, arch.layers - 1))  # 3 unless a smoke-test model has fewer layers
    vocab = f", vocabulary {args.vocab}" if args.vocab else ""
    print(f"\n### {arch.title()}{vocab}, random weights\n")
    print(f"| tokens | base s / MB | --layer {layer} s / MB (ratio) / last.npz MB | --token 100 s / MB (ratio) / "
          "last.npz MB | --layers all s / MB (ratio) / last.npz MB |")
    print("|---|---|---|---|---|", flush=True)
    worst_time = worst_rss = token_rss = 0.0
    for n in args.lengths:
        got = length_row(arch, n, layer, folder, args)
        base = got["base"]
        if not got["layer"].refused:
            worst_time = max(worst_time, got["layer"].seconds / base.seconds)
            worst_rss = max(worst_rss, got["layer"].rss_mb / base.rss_mb)
        token_rss = got["token"].rss_mb
    print(f"\n{arch.name}: --layer {layer} worst ratio {worst_time:.2f}x time (target <= 1.25x), {worst_rss:.2f}x peak "
          f"RSS (target <= 1.3x); --token at {args.lengths[-1]} tokens peaks at {human(token_rss * 2**20)} (target: "
          "within 24 GB with room to spare)", flush=True)


def length_row(arch: Arch, n: int, layer: str, folder: Path, args: argparse.Namespace) -> dict[str, Run]:
    """Measure every cell of one prompt length (interleaved, --repeat times), print its row, return the medians."""
    model, text, token, last = folder / "model", folder / f"p{n}.txt", min(100, n - 1), folder / "cache" / "last.npz"
    env = {**os.environ, "ATTN_CACHE_DIR": str(last.parent), "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    attn = [sys.executable, "-m", "attncli", "explain", "--model", str(model), "--file", str(text)]
    cells = {"base": [sys.executable, "-c", MINIMAL, str(model), str(text)],
             "layer": attn + ["--layer", layer],
             "token": attn + ["--token", str(token)],
             "all": attn + ["--layers", "all", "--layer", layer]}
    weights = arch.layers * arch.heads * n * n * 4  # float32 (layers, heads, query, key) of every layer
    runs: dict[str, list[Run]] = {name: [] for name in cells}
    skip = ""
    for _ in range(args.repeat):
        for name, cmd in cells.items():
            if name == "all":
                free = meminfo("MemAvailable")
                model_rss = statistics.median(r.rss_mb for r in runs["base"]) * 2**20
                if free and weights + model_rss > free - args.margin * 2**30:
                    skip = (f"not run (needs ~{human(weights)} of float32 weights + {human(model_rss)} for the "
                            f"model; {human(free)} available)")
                    continue
            runs[name].append(run(cmd, env, None if name == "base" else last))
    got = {name: median(r) for name, r in runs.items() if r}
    base = got["base"]
    every = cell(got["all"], base) + f" (est. {human(weights)} fp32)" if "all" in got else skip
    shorter = f" (--token {token})" if token != 100 else ""
    print(f"| {n} | {base.seconds:.1f} / {base.rss_mb:.0f} | {cell(got['layer'], base)} | "
          f"{cell(got['token'], base)}{shorter} | {every} |", flush=True)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["gpt2", "llama", "both"], default="both")
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--layers", type=int, default=None, help="default: 12 (gpt2), 16 (llama)")
    parser.add_argument("--heads", type=int, default=None, help="default: 12 (gpt2), 16 (llama)")
    parser.add_argument("--hidden", type=int, default=None, help="default: 768 (gpt2), 1024 (llama)")
    parser.add_argument("--kv-heads", type=int, default=None, help="llama: default gcd(heads, 4)")
    parser.add_argument("--intermediate", type=int, default=None, help="llama MLP width: default 8/3 x hidden")
    parser.add_argument("--vocab", type=int, default=None, help="pad embedding and LM head to this many rows")
    parser.add_argument("--margin", type=float, default=2.0,
                        help="GiB of MemAvailable left free when deciding whether --layers all can run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell, interleaved; the median is shown")
    args = parser.parse_args()
    if args.repeat < 1 or min(args.lengths) < 2:
        parser.error("--repeat must be >= 1 and every length >= 2")
    args.lengths = sorted(set(args.lengths))
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("torch", "transformers", "accelerate")
                         if _installed(name))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {os.cpu_count()} CPUs ({cpus} usable), {meminfo('MemTotal') / 2**30:.1f} GiB RAM "
          f"({meminfo('MemAvailable') / 2**30:.1f} GiB available); python {sys.version.split()[0]}, {versions}")
    runs = f"median of {args.repeat} interleaved runs" if args.repeat > 1 else "one run"
    print(f"each cell: fresh processes, {runs}; seconds / peak RSS MB (ratios to the base of the same length) / "
          "last.npz MB (MB = 2^20 bytes, GB = 10^9)")
    work = Path(tempfile.mkdtemp(prefix="attn-scale-"))
    try:
        for arch in architectures(args):
            measure(arch, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _installed(name: str) -> bool:
    """Whether a distribution is installed (its version can be read without importing it)."""
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
