"""Corpus statistics throughput: `attn stats --corpus` engines against the plain loop a user would write by hand.

Each measurement runs in a fresh process (python -c), one after the other, in one invocation of this script, so
the ratios are side by side on the same machine state:

- ``plain``: a loop that tokenizes one input, calls the model with ``output_attentions=True`` (eager) and
  computes the same per-head statistics with numpy (attncli.methods.stats.head_statistics plus the shares to
  [CLS]/[SEP]/punctuation), adding them to running sums — the floor a user would write by hand;
- ``local``: the local engine, one process (batched by length);
- ``workers N``: the local engine with N processes (threads split between them);
- ``ray N``: the Ray engine on a local Ray with N one-CPU actors and one more CPU for Ray Data's reading (only
  with --ray; needs attncli[ray]).

Text: N sentences made from samples/sentences.txt and the corpus given with --text-corpus (cycled to N);
images: the photos in samples/ cycled to N files (symlinks) for DINOv2-small.

    python benchmarks/bench_corpus.py --text 10000 --images 2000 --workers 2 --ray
    python benchmarks/bench_corpus.py --text 500 --images 64          # a busy machine: say so with the numbers

Prints one line per measurement (inputs/s, ratio to the plain loop, workers' efficiency) and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# one cache for every process of a run: DINOv2-small's weights are converted once, not per measurement
CACHE = os.environ.get("ATTN_CACHE_DIR") or tempfile.mkdtemp(prefix="bench-corpus-")

PLAIN = r'''
import sys, time, numpy as np, torch, unicodedata
from attncli.models import load_model
from attncli.choices import Purpose
from attncli.methods.stats import head_statistics
kind, path, model = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(int(sys.argv[4]))
loaded = load_model(model, Purpose.image if kind == "image" else Purpose.text)
import transformers
cls = type(loaded.model)
eager = cls.from_pretrained(loaded.ref.location, attn_implementation="eager").eval()
proc = loaded.processor
items = [l.strip() for l in open(path, encoding="utf-8") if l.strip()]
sums = None
start = time.perf_counter()
with torch.inference_mode():
    for item in items:
        if kind == "image":
            from PIL import Image
            enc = proc(images=Image.open(item).convert("RGB"), return_tensors="pt")
            special = None
        else:
            enc = proc(item, return_tensors="pt", return_special_tokens_mask=True, truncation=True)
            special = enc.pop("special_tokens_mask")[0].numpy().astype(bool)
        att = torch.stack(eager(**enc, output_attentions=True).attentions)[:, 0].float().numpy()  # (L, H, N, N)
        n = att.shape[-1]
        if kind == "image":
            sinks = [0]
            side = int(round((n - 1) ** 0.5))
            pos = np.zeros((n, 2)); pos[1:] = [((i // side + .5) * 14, (i % side + .5) * 14) for i in range(n - 1)]
            punct = []
        else:
            sinks = list(np.flatnonzero(special))
            pos = np.arange(n, dtype=float)[:, None]
            toks = proc.convert_ids_to_tokens(enc["input_ids"][0])
            punct = [i for i, t in enumerate(toks) if not special[i] and t and all(unicodedata.category(c).startswith("P") for c in t)]
        st = head_statistics(att, pos, sinks, False)
        plain = [i for i in range(n) if i not in sinks]
        q = att[:, :, plain, :].astype(np.float64)
        extra = [q[..., [0]].sum(-1).mean(-1), q[..., sinks[1:]].sum(-1).mean(-1), q[..., punct].sum(-1).mean(-1)]
        vals = np.stack(list(st.values()) + extra)
        sums = vals if sums is None else sums + np.nan_to_num(vals)
secs = time.perf_counter() - start
print(len(items) / secs)
'''

ENGINE = r'''
import sys, time, json, torch
from attncli.corpus.readers import CorpusSpec, open_corpus
from attncli.corpus.engine import RunOptions, run
path, model, workers, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
engine = sys.argv[6]
corpus = open_corpus(CorpusSpec(path))
opts = RunOptions(model=model, batch_size=batch, workers=workers, threads=threads, restart=True,
                  checkpoint=sys.argv[7])
rates = []
progress = lambda done, total, rate: rates.append(rate)
if engine == "ray":
    import ray
    ray.init(num_cpus=workers + 1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    from attncli.corpus.rayengine import RayOptions, run_ray
    result = run_ray(corpus, opts, RayOptions(num_cpus=1), progress)
    ray.shutdown()
else:
    result = run(corpus, opts, progress)
print(rates[-1])
'''


def _python(code: str, *args: str) -> float:
    """Run code in a fresh interpreter; its last stdout line is a rate."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "ATTN_CACHE_DIR": CACHE}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def text_corpus(n: int, extra: Path | None, folder: Path) -> Path:
    """n sentences: samples/sentences.txt plus an extra corpus, cycled."""
    lines = [l.strip() for l in (ROOT / "samples" / "sentences.txt").read_text().splitlines() if l.strip()]
    if extra is not None:
        lines += [l.strip() for l in extra.read_text(encoding="utf-8").splitlines() if l.strip()]
    path = folder / "sentences.txt"
    path.write_text("\n".join(lines[i % len(lines)] for i in range(n)) + "\n", encoding="utf-8")
    return path


def image_corpus(n: int, folder: Path) -> tuple[Path, Path]:
    """A folder of n image files (links to the sample photos) and a list of them for the plain loop."""
    photos = [ROOT / "samples" / f for f in ("camera.png", "chelsea.png", "coffee.png")]
    images = folder / "images"
    images.mkdir()
    for i in range(n):
        (images / f"{i:06d}.png").symlink_to(photos[i % len(photos)])
    listing = folder / "images.txt"
    listing.write_text("\n".join(str(p) for p in sorted(images.iterdir())) + "\n")
    return images, listing


class _Rows(dict):
    """Rates by engine, each printed as soon as it is measured (a long run shows what it has)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __setitem__(self, name: str, rate: float) -> None:
        super().__setitem__(name, rate)
        plain = self.get("plain", rate)
        print(f"{self.kind:5} {name:36} {rate:9.2f} inputs/s  {rate / plain:5.2f}× plain", flush=True)


def measure(kind: str, n: int, model: str, args: argparse.Namespace, folder: Path) -> dict:
    """Every engine on one corpus, in fresh processes, one after the other."""
    cores = os.cpu_count() or 1
    if kind == "text":
        path = text_corpus(n, args.text_corpus, folder)
        listing = path
    else:
        path, listing = image_corpus(n, folder)
    ck = str(folder / f"{kind}.ckpt.npz")
    rows = _Rows(kind)
    rows["plain"] = _python(PLAIN, kind, str(listing), model, str(cores))
    rows["local"] = _python(ENGINE, str(path), model, "1", str(cores), str(args.batch), "local", ck)
    if args.workers > 1:
        rows[f"workers {args.workers}"] = _python(ENGINE, str(path), model, str(args.workers),
                                                  str(max(1, cores // args.workers)), str(args.batch), "local", ck)
        one_thread = _python(ENGINE, str(path), model, "1", str(max(1, cores // args.workers)), str(args.batch),
                             "local", ck)
        rows["local, same threads as one worker"] = one_thread
    if args.ray:
        rows[f"ray {args.workers}"] = _python(ENGINE, str(path), model, str(args.workers), "1", str(args.batch),
                                              "ray", ck)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=int, default=10_000, help="sentences (MiniLM); 0 to skip")
    parser.add_argument("--images", type=int, default=2_000, help="images (DINOv2-small); 0 to skip")
    parser.add_argument("--text-corpus", type=Path, default=None, help="more sentences, one per line")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ray", action="store_true", help="also Ray with --workers one-CPU actors")
    args = parser.parse_args()
    summary = {"cores": os.cpu_count(), "load": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n, model in (("text", args.text, "minilm"), ("image", args.images, "dinov2-small")):
            if not n:
                continue
            folder = Path(tmp) / kind
            folder.mkdir()
            rows = measure(kind, n, model, args, folder)
            summary[kind] = {"n": n, "inputs_per_s": rows}
            if f"workers {args.workers}" in rows:
                eff = rows[f"workers {args.workers}"] / (args.workers * rows["local, same threads as one worker"])
                summary[kind]["worker_efficiency"] = eff
                print(f"{kind:5} workers efficiency: {eff:.0%} (rate / ({args.workers} × one process with the same "
                      "threads))", flush=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
