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
    assert "8 kept, 0 broken" in result.stdout


def test_the_layers_are_few():
    """The contract stays short enough to read: at most seven layers."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: import-linter brings tomli
        import tomli as tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    assert len(layers) <= 7, layers


def test_an_upward_import_breaks_the_contracts(tmp_path):
    copy = tmp_path / "attncli"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "assets", "html_assets"))
    capture = copy / "capture.py"  # a core module reaching up to a renderer
    capture.write_text(capture.read_text() + "\nfrom attncli.render import terminal  # noqa: E402,F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "attncli.capture -> attncli.render.terminal" in result.stdout


def _copy_with(tmp_path: Path, additions: dict[str, str]) -> Path:
    """A copy of the package with one line appended to each named module."""
    copy = tmp_path / "attncli"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "assets", "html_assets"))
    for module, line in additions.items():
        path = copy / module
        path.write_text(path.read_text() + f"\n{line}  # noqa: E402,F401\n")
    return tmp_path


def test_views_and_renderers_reaching_the_model_side_break_the_contracts(tmp_path):
    result = _lint(_copy_with(tmp_path, {
        "views/common.py": "from attncli.synthetic import CLASSES",  # allowed: the core
        "views/picture.py": "from attncli.models import EMBEDDED",  # the loader, for one name
        "render/json.py": "import torch",  # a renderer importing torch
        "views/stats.py": "from attncli.corpus import engine",  # through another module: engine loads models
        "families/vit.py": "from attncli.models import LoadedModel",  # a family importing the loader
        "cli/text.py": "from attncli.models import load_model",  # a command loading without sources
        "models.py": "from attncli import dinov2",  # a provider imported instead of looked up by name
    }))
    out = result.stdout
    assert result.returncode != 0
    assert "attncli.views.common -> attncli.synthetic" not in out
    for chain in ("attncli.views.picture -> attncli.models", "attncli.render.json -> torch",
                  "attncli.corpus.engine -> attncli.models", "attncli.families.vit -> attncli.models",
                  "attncli.cli.text -> attncli.models", "attncli.models -> attncli.dinov2"):
        assert chain in out, chain
    assert "8 kept" not in out


def test_modules_stay_under_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these modules: {long}"
