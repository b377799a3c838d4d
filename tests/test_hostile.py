"""The hostile battery: every command given bad paths, files, text, numbers, models, captures and disks.

Each case asserts the exit code (2 bad input, 1 runtime), exactly one line on stderr naming what is wrong, no
traceback, no file left or changed in the working folder or its inputs, and the last capture untouched.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostile_world import build, fill, mount


@dataclass(frozen=True)
class Case:
    """One hostile command line and what it must answer."""

    args: tuple[str, ...]
    code: int
    says: str  # words the one error line must contain (case-insensitive)
    stdin: bytes | None = None
    last: str = "good.npz"  # the capture that is the last one before the command runs
    mounts: bool = False  # needs the read-only and the full filesystems (root only)


def c(code: int, says: str, *args: str, **kw) -> Case:
    """A case, written compactly."""
    return Case(tuple(args), code, says, **kw)


M = ("--model", "{bert}")
CASES: dict[str, Case] = {
    # explain: text in
    "explain-no-text": c(2, "no text", "explain", *M),
    "explain-empty": c(2, "empty", "explain", "", *M),
    "explain-blank": c(2, "empty", "explain", "  \t ", *M),
    "explain-stdin-bad-utf8": c(2, "utf-8", "explain", "-", *M, stdin=b"The cat \xff sat"),
    "explain-stdin-empty": c(2, "empty", "explain", "-", *M, stdin=b""),
    "explain-file-missing": c(2, "no such file", "explain", "--file", "{files}/nope.txt", *M),
    "explain-file-folder": c(2, "folder", "explain", "--file", "{files}/nothing", *M),
    "explain-file-latin1": c(2, "utf-8", "explain", "--file", "{files}/latin1.txt", *M),
    "explain-file-blank": c(2, "empty", "explain", "--file", "{files}/empty.txt", *M),
    "explain-file-and-text": c(2, "not both", "explain", "hi", "--file", "{files}/text.txt", *M),
    "explain-image": c(2, "image", "explain", "{img}", *M),
    # explain: numbers and choices
    "explain-layer-high": c(2, "layer", "explain", "the cat", *M, "--layer", "9"),
    "explain-layer-low": c(2, "layer", "explain", "the cat", *M, "--layer", "-9"),
    "explain-layer-word": c(2, "layer", "explain", "the cat", *M, "--layer", "two"),
    "explain-head-high": c(2, "head", "explain", "the cat", *M, "--head", "7"),
    "explain-top-k-0": c(2, "top-k", "explain", "the cat", *M, "--top-k", "0"),
    "explain-width-small": c(2, "width", "explain", "the cat", *M, "--width", "3"),
    "explain-token-absent": c(2, "not one of the tokens", "explain", "the cat", *M, "--token", "dog"),
    "explain-token-index": c(2, "token", "explain", "the cat", *M, "--token", "99"),
    "explain-token-matrix": c(2, "--matrix", "explain", "the cat", *M, "--token", "cat", "--matrix"),
    "explain-discard-high": c(2, "discard", "explain", "the cat", *M, "--method", "rollout", "--discard-ratio", "1.5"),
    "explain-discard-nan": c(2, "discard", "explain", "the cat", *M, "--method", "rollout", "--discard-ratio", "nan"),
    "explain-discard-neg": c(2, "discard", "explain", "the cat", *M, "--method", "rollout", "--discard-ratio", "-0.1"),
    "explain-discard-attention": c(2, "rollout", "explain", "the cat", *M, "--discard-ratio", "0.5"),
    "explain-fuse-bad": c(2, "fuse", "explain", "the cat", *M, "--fuse", "median"),
    "explain-method-bad": c(2, "method", "explain", "the cat", *M, "--method", "saliency"),
    "explain-scale-bad": c(2, "scale", "explain", "the cat", *M, "--scale", "log"),
    "explain-target-attention": c(2, "grad-rollout", "explain", "the cat", *M, "--target", "0"),
    "explain-head-rollout": c(2, "--head", "explain", "the cat", *M, "--method", "rollout", "--head", "0"),
    "explain-unknown-option": c(2, "no such option", "explain", "the cat", "--colour"),
    "explain-device-cuda": c(2, "cuda", "explain", "the cat", *M, "--device", "cuda"),
    "explain-max-memory-bad": c(2, "device=size", "explain", "the cat", *M, "--device-map", "auto",
                                "--max-memory", "cpu=lots"),
    "explain-offload-no-map": c(2, "device map", "explain", "the cat", *M, "--offload-folder", "off"),
    "explain-grad-no-head": c(2, "classification head", "explain", "the cat", *M, "--method", "grad-rollout"),
    "explain-grad-bad-target": c(2, "target", "explain", "the cat", "--model", "{cls}", "--method", "grad-rollout",
                                 "--target", "joyful"),
    # explain: models
    "model-empty": c(2, "--model", "explain", "the cat", "--model", " "),
    "model-no-folder": c(2, "no such model folder", "explain", "the cat", "--model", "./nope/model"),
    "model-is-file": c(2, "is a file", "explain", "the cat", "--model", "{files}/text.txt"),
    "model-no-config": c(2, "config.json", "explain", "the cat", "--model", "{files}/nothing"),
    "model-not-cached": c(1, "not in the hugging face cache", "explain", "the cat", "--model", "nobody/nothing"),
    "model-cut-weights": c(1, "model.safetensors", "explain", "the cat", "--model", "{cut_weights}"),
    "model-junk-weights": c(1, "model.safetensors", "explain", "the cat", "--model", "{junk_weights}"),
    "model-pickle": c(2, "--allow-pickle", "explain", "the cat", "--model", "{pickle}"),
    "model-missing-weights": c(1, "not in the checkpoint", "explain", "the cat", "--model", "{missing_weights}"),
    "model-zero-tokens": c(2, "no tokens", "explain", "the cat", "--model", "{zero_tokens}"),
    "model-vision-for-text": c(2, "image", "explain", "the cat", "--model", "{vit}"),
    "model-seq2seq-for-text": c(2, "attn align", "explain", "the cat", "--model", "{marian}"),
    # align: audio
    "align-audio-not-wav": c(2, "not audio attncli can read", "align", "{files}/notwav.wav", "--model", "{whisper}"),
    "align-audio-empty": c(2, "no audio", "align", "{files}/empty.wav", "--model", "{whisper}"),
    "align-audio-cut": c(2, "not audio attncli can read", "align", "{files}/cut.wav", "--model", "{whisper}"),
    "align-audio-flac": c(2, "not audio attncli can read", "align", "{files}/song.flac", "--model", "{whisper}"),
    "align-audio-rate": c(2, "100 hz", "align", "{files}/slow.wav", "--model", "{whisper}"),
    "align-audio-missing": c(2, "no such file", "align", "{files}/nope.wav", "--model", "{whisper}"),
    "align-audio-no-model": c(2, "no default speech model", "align", "{files}/tone.wav"),
    "align-audio-text-model": c(2, "reads text, not audio", "align", "{files}/tone.wav", "--model", "{marian}"),
    "align-text-speech-model": c(2, "reads audio, not text", "align", "the cat", "--model", "{whisper}"),
    "explain-speech-model": c(2, "attn align audio.wav", "explain", "the cat", "--model", "{whisper}"),
    "heatmap-audio": c(2, "does not read audio", "heatmap", "{files}/tone.wav"),
    # explain: outputs
    "explain-out-suffix": c(2, "-o", "explain", "the cat", *M, "-o", "out.txt"),
    "explain-out-folder": c(2, "folder", "explain", "the cat", *M, "-o", "{files}/nothing"),
    "stats-save-input": c(2, "--save", "stats", "{caps}/good.npz", "--save", "{caps}/good.npz"),
    "explain-save-suffix": c(2, ".npz", "explain", "the cat", *M, "--save", "cap.txt"),
    "explain-save-folder": c(2, "folder", "explain", "the cat", *M, "--save", "{files}/nothing"),
    "explain-save-readonly": c(2, "read-only", "explain", "the cat", *M, "--save", "{ro}/cap.npz", mounts=True),
    "explain-save-full": c(1, "no space", "explain", "the cat", *M, "--save", "{full}/cap.npz", mounts=True),
    "explain-out-readonly": c(2, "read-only", "explain", "the cat", *M, "-o", "{ro}/x.html", mounts=True),
    "explain-out-full": c(1, "no space", "explain", "the cat", *M, "-o", "{full}/x.html", mounts=True),
    "heatmap-json-terminal": c(2, "stdout", "heatmap", "--json", "--terminal"),
    # softmax
    "softmax-none": c(2, "missing", "softmax"),
    "softmax-word": c(2, "not a number", "softmax", "1", "two"),
    "softmax-nan": c(2, "finite", "softmax", "1", "nan"),
    "softmax-inf": c(2, "finite", "softmax", "1", "inf"),
    "softmax-T-zero": c(2, "temperature", "softmax", "1", "3", "-T", "0"),
    "softmax-T-neg": c(2, "temperature", "softmax", "1", "3", "-T", "-1"),
    "softmax-T-tiny": c(2, "temperature", "softmax", "1", "3", "-T", "1e-320", "--json"),
    "softmax-T-nan": c(2, "temperature", "softmax", "1", "3", "-T", "nan"),
    "softmax-T-inf": c(2, "temperature", "softmax", "1", "3", "-T", "inf"),
    "softmax-scale-zero": c(2, "scale", "softmax", "1", "3", "--scale", "0"),
    "softmax-scale-neg": c(2, "scale", "softmax", "1", "3", "--scale", "-4"),
    "softmax-overflow": c(2, "too large", "softmax", "1e308", "-1e308", "-T", "0.5", "--json"),
    "softmax-width": c(2, "width", "softmax", "1", "2", "--width", "0"),
    # stats
    "stats-sort-bad": c(2, "--sort", "stats", "--last", "--sort", "beauty"),
    "stats-ascending": c(2, "--ascending", "stats", "--last", "--ascending"),
    "stats-layer-high": c(2, "layer", "stats", "--last", "--layer", "5"),
    "stats-model-last": c(2, "--model", "stats", "--last", *M),
    "stats-save-last": c(2, "--save", "stats", "--last", "--save", "x.npz"),
    "stats-csv-folder": c(2, "folder", "stats", "--last", "--csv", "{files}/nothing"),
    "stats-csv-readonly": c(2, "read-only", "stats", "--last", "--csv", "{ro}/heads.csv", mounts=True),
    "stats-csv-full": c(1, "no space", "stats", "--last", "--csv", "{full}/heads.csv", mounts=True),
    "stats-plot-suffix": c(2, "--plot", "stats", "--last", "--plot", "dist.txt"),
    "stats-two-inputs": c(2, "different inputs", "stats", "the cat", "--last"),
    "stats-no-last": c(1, "no last capture", "stats", "--last", last=""),
    "stats-last-truncated": c(1, "not a whole attncli capture", "stats", "--last", last="trunc.npz"),
    "stats-last-nan": c(1, "not a whole attncli capture", "stats", "--last", last="nan.npz"),
    "capture-truncated": c(2, "not a whole attncli capture", "stats", "{caps}/trunc.npz"),
    "capture-junk": c(2, "not a whole attncli capture", "stats", "{caps}/junk.npz"),
    "capture-no-attentions": c(2, "attentions", "stats", "{caps}/noatt.npz"),
    "capture-no-meta": c(2, "not a whole attncli capture", "stats", "{caps}/nometa.npz"),
    "capture-3d": c(2, "4-d", "stats", "{caps}/flat.npz"),
    "capture-nan": c(2, "finite", "stats", "{caps}/nan.npz"),
    "capture-rows": c(2, "sum to 1", "heatmap", "{caps}/rows.npz", "--terminal"),
    "capture-short": c(2, "tokens", "heatmap", "{caps}/short.npz", "--terminal"),
    "capture-bad-json": c(2, "not a whole attncli capture", "heatmap", "{caps}/badjson.npz", "--terminal"),
    "capture-bad-kind": c(2, "kind", "heatmap", "{caps}/nokind.npz", "--terminal"),
    "capture-pickled": c(2, "not a whole attncli capture", "heatmap", "{caps}/pickled.npz", "--terminal"),
    "capture-bad-grid": c(2, "grid", "heatmap", "{caps}/badgrid.npz", "--terminal"),
    "capture-missing": c(2, "no such file", "heatmap", "{caps}/none.npz"),
    # evaluate
    "evaluate-tolerance-nan": c(2, "--tolerance", "evaluate", "--tolerance", "nan", "--n", "2"),
    "evaluate-tolerance-neg": c(2, "--tolerance", "evaluate", "--tolerance", "-1", "--n", "2"),
    "evaluate-top-zero": c(2, "--top-percent", "evaluate", "--top-percent", "0", "--n", "2"),
    "evaluate-top-high": c(2, "--top-percent", "evaluate", "--top-percent", "150", "--n", "2"),
    "evaluate-top-nan": c(2, "--top-percent", "evaluate", "--top-percent", "nan", "--n", "2"),
    "evaluate-n-zero": c(2, "--n", "evaluate", "--n", "0"),
    "evaluate-step-zero": c(2, "--step", "evaluate", "--step", "0"),
    "evaluate-baseline": c(2, "--baseline", "evaluate", "--baseline", "grey"),
    "evaluate-methods": c(2, "--methods", "evaluate", "--methods", "attention,magic"),
    "evaluate-discard": c(2, "--discard-ratio", "evaluate", "--discard-ratio", "1"),
    "evaluate-discard-nan": c(2, "--discard-ratio", "evaluate", "--discard-ratio", "nan"),
    "evaluate-n-images": c(2, "shapes set", "evaluate", "{img}", "--n", "3"),
    "evaluate-missing": c(2, "no such file", "evaluate", "{files}/none.png"),
    "evaluate-model-text": c(2, "text encoder", "evaluate", "--model", "{bert}", "--n", "2"),
    # classify / patches
    "classify-missing": c(2, "no such file", "classify", "{files}/none.png", "--model", "{vit}"),
    "classify-not-image": c(2, "not an image", "classify", "{files}/notes.png", "--model", "{vit}"),
    "classify-truncated": c(2, "truncated", "classify", "{files}/cut.png", "--model", "{vit}"),
    "classify-empty-folder": c(2, "no images", "classify", "{files}/nothing", "--model", "{vit}"),
    "classify-text-model": c(2, "text encoder", "classify", "{img}", *M),
    "classify-top-k": c(2, "top-k", "classify", "{img}", "--model", "{vit}", "--top-k", "0"),
    "classify-batch": c(2, "batch-size", "classify", "{img}", "--model", "{vit}", "--batch-size", "0"),
    "classify-out-input": c(2, "input", "classify", "{img}", "--model", "{vit}", "-o", "{img}"),
    "classify-save-readonly": c(2, "read-only", "classify", "{img}", "--model", "{vit}", "--save", "{ro}/c.npz",
                                mounts=True),
    "patches-missing": c(2, "no such file", "patches", "{files}/none.png", "--model", "{vit}"),
    "patches-text-model": c(2, "text encoder", "patches", "{img}", *M),
    "patches-out-suffix": c(2, "-o", "patches", "{img}", "--model", "{vit}", "-o", "grid.txt"),
    # heatmap
    "heatmap-layer": c(2, "layer", "heatmap", "--layer", "9"),
    "heatmap-head": c(2, "head", "heatmap", "--head", "9", "--terminal"),
    "heatmap-query-far": c(2, "row", "heatmap", "{caps}/image.npz", "--query", "9,9", "--terminal"),
    "heatmap-query-junk": c(2, "--token", "heatmap", "{caps}/image.npz", "--query", "a,b,c", "--terminal"),
    "heatmap-query-word": c(2, "--token", "heatmap", "--query", "zebra", "--terminal"),
    "heatmap-terminal-out": c(2, "--terminal", "heatmap", "--terminal", "-o", "x.png"),
    "heatmap-all-heads-head": c(2, "--all-heads", "heatmap", "--all-heads", "--head", "0"),
    "heatmap-all-heads-rollout": c(2, "--all-heads", "heatmap", "--all-heads", "--method", "rollout"),
    "heatmap-text-empty": c(2, "empty", "heatmap", "--text", " ", *M),
    "heatmap-skip-image": c(2, "--skip-special", "heatmap", "{caps}/image.npz", "--skip-special", "--terminal"),
    "heatmap-discard-nan": c(2, "discard", "heatmap", "--method", "rollout", "--discard-ratio", "nan"),
    "heatmap-out-readonly": c(2, "read-only", "heatmap", "-o", "{ro}/map.png", mounts=True),
    "heatmap-out-full": c(1, "no space", "heatmap", "-o", "{full}/map.png", mounts=True),
    "heatmap-model-capture": c(2, "--model", "heatmap", "{caps}/good.npz", *M),
    # --layers/--heads: what a new capture keeps
    "heatmap-layers-word": c(2, "--layers two", "heatmap", "{img}", "--model", "{vit}", "--layers", "two"),
    "heatmap-layers-high": c(2, "layer 9", "heatmap", "{img}", "--model", "{vit}", "--layers", "9"),
    "heatmap-heads-backwards": c(2, "--heads 3-1", "heatmap", "{img}", "--model", "{vit}", "--heads", "3-1"),
    "heatmap-heads-high": c(2, "head 5", "heatmap", "{img}", "--model", "{vit}", "--heads", "0,5"),
    "heatmap-text-layers-empty": c(2, "--layers", "heatmap", "--text", "the cat", *M, "--layers", ""),
    "heatmap-layers-saved": c(2, "saved capture", "heatmap", "{caps}/image.npz", "--layers", "all", "--terminal"),
    "heatmap-lacks-layer": c(2, "--layers 0", "heatmap", "{caps}/image.npz", "--layer", "0", "--terminal"),
    "heatmap-lacks-row": c(2, "--token 1,1", "heatmap", "{caps}/image.npz", "--query", "1,1", "--terminal"),
    "stats-layers-word": c(2, "--layers", "stats", "the cat", *M, "--layers", "1-x"),
    "stats-heads-high": c(2, "head 7", "stats", "the cat", *M, "--heads", "7"),
    "stats-layers-last": c(2, "saved capture", "stats", "--last", "--heads", "0"),
    "stats-lacks-rows": c(2, "--layers all", "stats", "{caps}/image.npz"),
    "classify-layers-word": c(2, "--layers", "classify", "{img}", "--model", "{vit}", "--layers", "1,a"),
    "classify-heads-high": c(2, "head 4", "classify", "{img}", "--model", "{vit}", "--heads", "4"),
    "align-layers-word": c(2, "--layers", "align", "the cat", "--model", "{marian}", "--layers", "first"),
    "align-heads-high": c(2, "head 9", "align", "the cat", "--model", "{marian}", "--heads", "9"),
    "caption-layers-word": c(2, "--layers", "caption", "{img}", "--model", "{marian}", "--layers", "x"),
    # align / caption
    "align-empty": c(2, "empty", "align", "", "--model", "{marian}"),
    "align-stdin-bad-utf8": c(2, "utf-8", "align", "-", "--model", "{marian}", stdin=b"\xfe\xff"),
    "align-text-model": c(2, "encoder-decoder", "align", "the cat", *M),
    "align-head": c(2, "head", "align", "the cat", "--model", "{marian}", "--head", "9"),
    "align-layer": c(2, "layer", "align", "the cat", "--model", "{marian}", "--layer", "9"),
    "align-new-tokens": c(2, "max-new-tokens", "align", "the cat", "--model", "{marian}", "--max-new-tokens", "0"),
    "align-beams": c(2, "num-beams", "align", "the cat", "--model", "{marian}", "--num-beams", "0"),
    "align-target-empty": c(2, "--target", "align", "the cat", "--model", "{marian}", "--target", " "),
    "align-image": c(2, "image", "align", "{img}", "--model", "{marian}"),
    # generate
    "generate-text-encoder": c(2, "causal language model", "generate", "the cat", *M),
    "generate-empty": c(2, "empty", "generate", " ", "--model", "{gpt2}"),
    "generate-past-positions": c(2, "positions", "generate", "the cat", "--model", "{gpt2}", "--max-new-tokens", "99"),
    "generate-new-tokens-0": c(2, "max-new-tokens", "generate", "the cat", "--model", "{gpt2}", "--max-new-tokens", "0"),
    "generate-max-memory-bad": c(2, "0=20gib,cpu=60gib", "generate", "the cat", "--model", "{gpt2}",
                                 "--device-map", "auto", "--max-memory", "cpu=1GB,cpu=2GB"),
    "generate-seq2seq": c(2, "attn align", "generate", "the cat", "--model", "{marian}"),
    "caption-missing": c(2, "no such file", "caption", "{files}/none.png", "--model", "{marian}"),
    "caption-text-empty": c(2, "--text", "caption", "{img}", "--text", " ", "--model", "{marian}"),
    "caption-text-model": c(2, "captioner", "caption", "{img}", *M),
    "caption-seq2seq-text": c(2, "attn align", "caption", "{img}", "--model", "{marian}"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, capsys_module):
    """Models, files, captures and (as root) a read-only and a full filesystem, built once."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTN_CACHE_DIR", str(root / "build-cache"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        paths = build(root, capsys_module)
    mounted = []
    if mount(Path(paths["ro"]), "ro", "size=64k") and mount(Path(paths["full"]), "size=64k"):
        mounted = [paths["ro"], paths["full"]]
        fill(Path(paths["full"]))
    yield paths, bool(mounted)
    for folder in mounted:
        subprocess.run(["umount", folder], capture_output=True)


@pytest.fixture(scope="module")
def capsys_module():
    """An in-process runner for building the world (before the per-test cli fixture exists)."""
    from attncli.cli.app import main

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
        except SystemExit as exc:
            return (exc.code if isinstance(exc.code, int) else 1), "", ""
        return 0, "", ""

    return invoke


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under the folders with a digest of its bytes."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                files[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return files


@pytest.mark.parametrize("name", list(CASES))
def test_hostile(name, world, cli, tmp_path, isolated_cache, monkeypatch):
    """One line on stderr naming what is wrong, the right exit code, nothing written, the last capture kept."""
    case = CASES[name]
    paths, mounted = world
    if case.mounts and not mounted:
        pytest.skip("needs root to mount a read-only and a full tmpfs")
    isolated_cache.mkdir(parents=True, exist_ok=True)
    if case.last:
        shutil.copy(Path(paths["caps"]) / case.last, isolated_cache / "last.npz")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if case.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8",
                                                           errors="surrogateescape"))
    watched = [work, isolated_cache, Path(paths["files"]), Path(paths["caps"])]
    before = snapshot(*watched)
    code, out, err = cli(*(a.format(**paths) for a in case.args))
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("attn: error: ") and "Traceback" not in err, err
    assert "\x1b[" not in err, err
    assert case.says.lower() in lines[0].lower(), lines[0]
    assert code == case.code, lines[0]
    assert snapshot(*watched) == before, "a file was left or changed"
