"""The one-way import flow is enforced by import-linter contracts (pyproject.toml), and modules stay small."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "attncli"


def _lint(src_parent: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the attncli package found in src_parent, with the project's contracts."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[2], no_cache=True))")
    return subprocess.run([sys.executable, "-c", code, str(src_parent), str(ROOT / "pyproject.toml")],
                          capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    result = _lint(SRC.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    copy = tmp_path / "attncli"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "assets", "html_assets"))
    capture = copy / "capture.py"  # a core module reaching up to a renderer
    capture.write_text(capture.read_text() + "\nfrom attncli.render import terminal  # noqa: E402,F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "attncli.capture -> attncli.render.terminal" in result.stdout


def test_modules_stay_under_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these modules: {long}"
