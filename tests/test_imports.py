"""`attn --help` and `attn softmax` stay light: no torch, transformers or matplotlib."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from attncli.cli.app import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = [m for m in ("torch", "transformers", "matplotlib") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def _heavy_after(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    line = [l for l in proc.stdout.splitlines() if l.startswith("HEAVY=")]
    assert line, proc.stdout + proc.stderr
    return line[0][len("HEAVY="):]


def test_help_imports_nothing_heavy():
    assert _heavy_after(["--help"]) == ""


def test_explain_help_imports_nothing_heavy():
    assert _heavy_after(["explain", "--help"]) == ""


def test_softmax_imports_nothing_heavy():
    assert _heavy_after(["softmax", "1", "2", "3"]) == ""


def test_import_cli_package_is_light():
    code = "import sys, attncli, attncli.cli.app; print([m for m in ('torch','transformers','matplotlib','numpy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_help_is_plain_and_whole(cli):
    """No type columns, Python type names or doubled brackets in any --help; the command list is not cut."""
    code, root, _ = cli("--help")
    assert code == 0 and "..." not in root.split("Commands:")[1] and "--install-completion" in root
    for command in ("explain", "softmax", "stats", "evaluate", "classify", "patches", "heatmap", "align",
                    "caption"):
        code, text, err = cli(command, "--help")
        assert code == 0, err
        for artefact in ("<bool>", "<list[str]>", "<str>", "<int>", "<path>", "{scores}", "[[", "╭"):
            assert artefact not in text, (command, artefact)


def test_version_names_torch_and_transformers(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("attn 0.1.0 (torch ") and "transformers " in out


def test_shell_completion_script(cli):
    code, out, _ = cli("--show-completion", "bash")
    assert code == 0 and "_attn_completion" in out and "complete" in out
