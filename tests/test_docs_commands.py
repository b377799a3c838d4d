"""Every shell command in README.md and docs/*.md runs as written, in order, so the pages cannot drift.

The ```bash and ```console blocks of each page are read from the file: in a console block a command is a line
starting with "$ " (a trailing backslash continues it) and the lines after it, up to the next command, are
what it prints; in a bash block every line is a command. Each page runs in its own temp folder (a copy of
samples/, the repository's src/, scripts/, benchmarks/ and tests/ linked in), with its own ATTN_CACHE_DIR, an
empty HF_HOME and HF_HUB_OFFLINE=1, so nothing reaches the network and nothing in the checkout is written.

A command passes when it exits 0, or non-zero where the page shows an `attn: error:` line, and every line the
page shows appears in what it printed (stdout and stderr; "…" in a shown line matches anything, a line that
is only "…" or "..." is skipped). An HTML comment before a block changes how it runs:

    <!-- not-run: REASON -->   skipped, with REASON (a GPU, the hub: keep these few and honest)
    <!-- slow: REASON -->      runs only with `pytest -m slow` (the default run leaves it out)
    <!-- setup: COMMAND -->    run first, hidden from the reader (e.g. building a tiny model)

A `<!-- slow: REASON -->` on a page's first line makes every block of the page slow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*(not-run|slow|setup):\s*(.*?)\s*-->\s*$")


@dataclass
class Command:
    """One command of a page: where it is, what to run, what the page shows it printing."""

    line: int
    text: str
    shown: list[str] = field(default_factory=list)


@dataclass
class Block:
    """One fenced block with its markers."""

    line: int
    commands: list[Command]
    not_run: str | None = None
    slow: str | None = None
    setup: list[str] = field(default_factory=list)


def blocks_of(path: Path) -> list[Block]:
    """The bash/console blocks of a markdown file, in order, with the markers written before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    marks: dict = {"not-run": None, "slow": None, "setup": []}
    i = 0
    while i < len(lines):
        mark = MARK.match(lines[i].strip())
        if mark:
            kind, value = mark.groups()
            if kind == "setup":
                marks["setup"].append(value)
            else:
                marks[kind] = value
            i += 1
            continue
        fence = FENCE.match(lines[i].strip())
        if not fence:
            if lines[i].strip():
                marks = {"not-run": None, "slow": None, "setup": []}
            i += 1
            continue
        language, start = fence.group(1), i
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = lines[start + 1:end]
        if language in ("bash", "console"):
            found.append(Block(start + 1, _commands(body, start + 2, console=language == "console"),
                               marks["not-run"], marks["slow"], marks["setup"]))
        elif any(line.startswith("$ attn") for line in body):
            raise AssertionError(f"{path.name}:{start + 1}: a block with `$ attn` commands must be "
                                 f"```console so the docs test runs it")
        marks = {"not-run": None, "slow": None, "setup": []}
        i = end + 1
    first = MARK.match(lines[0].strip()) if lines else None
    if first and first.group(1) == "slow":  # a page-wide mark on the first line: every block is slow
        for block in found:
            block.slow = block.slow or first.group(2)
    return found


def _commands(body: list[str], first: int, console: bool) -> list[Command]:
    """Commands (and, in a console block, their shown output) from a block's lines."""
    commands: list[Command] = []
    pending: Command | None = None
    for offset, line in enumerate(body):
        if pending is not None and pending.text.endswith("\\"):
            pending.text = pending.text + "\n" + line.strip()
            continue
        if console and not line.startswith("$ "):
            if commands:
                commands[-1].shown.append(line)
            continue
        text = line[2:] if console else line
        if not console and (not text.strip() or text.lstrip().startswith("#")):
            continue
        pending = Command(first + offset, text.rstrip())
        commands.append(pending)
    return commands


def _shown_lines(command: Command) -> list[str]:
    """The shown lines worth checking: not blank, not only an ellipsis."""
    return [line.rstrip() for line in command.shown if line.strip() and line.strip() not in ("…", "...")]


def _matches(shown: str, printed: list[str]) -> bool:
    """Whether one shown line is among the printed ones ("…" in it matches anything)."""
    if "…" not in shown:
        return shown in printed
    pattern = re.compile(".*".join(re.escape(part) for part in shown.split("…")))
    return any(pattern.fullmatch(line) for line in printed)


def _workspace(tmp_path: Path) -> dict:
    """A folder like the repository's root for a page's commands, and the environment to run them in."""
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    for name in ("src", "scripts", "benchmarks", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "docs").mkdir()
    bin_dir = tmp_path.parent / f"{tmp_path.name}-bin"
    bin_dir.mkdir()
    (bin_dir / "attn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m attncli "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ATTN_", "HF_", "COLUMNS"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT / "src"),
               ATTN_CACHE_DIR=str(tmp_path.parent / f"{tmp_path.name}-cache"),
               HF_HOME=str(tmp_path.parent / f"{tmp_path.name}-hf"), HF_HUB_OFFLINE="1", NO_COLOR="1")
    return env


def _run_page(path: Path, tmp_path: Path, slow: bool) -> None:
    """Run every command of one page in order; fail naming the file:line of the first that fails."""
    blocks = blocks_of(path)
    env = _workspace(tmp_path)
    label = path.relative_to(ROOT)
    ran = 0
    failures: list[str] = []
    keep_going = os.environ.get("ATTN_DOCS_KEEP_GOING") == "1"  # report every failing command, not the first
    for block in blocks:
        if block.not_run or (block.slow and not slow):
            continue
        if any(c.text.lstrip().startswith("jq") or "| jq" in c.text for c in block.commands) \
                and shutil.which("jq") is None:
            continue
        for setup in block.setup:
            done = subprocess.run(["bash", "-c", setup], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, f"{label}:{block.line}: setup `{setup}` failed:\n{done.stdout}{done.stderr}"
        for command in block.commands:
            done = subprocess.run(["bash", "-c", command.text], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=1800 if block.slow else 300)
            ran += 1
            printed = [line.rstrip() for line in done.stdout.splitlines()]
            shown = _shown_lines(command)
            wants_error = any(line.startswith("attn: error:") for line in shown)
            where = f"{label}:{command.line}: $ {command.text}"
            problem = None
            if wants_error and done.returncode == 0:
                problem = f"{where}\nexpected an error, got exit 0:\n{done.stdout}"
            elif not wants_error and done.returncode != 0:
                problem = f"{where}\nexit {done.returncode}:\n{done.stdout}"
            else:
                missing = [line for line in shown if not _matches(line, printed)]
                if missing:
                    problem = (f"{where}\nthe page shows lines it did not print:\n" + "\n".join(missing)
                               + "\n--- printed:\n" + done.stdout)
            if problem:
                failures.append(problem)
                if not keep_going:
                    break
        if failures and not keep_going:
            break
    assert not failures, "\n\n".join(failures)
    if not ran:
        pytest.skip(f"{label}: no command runs here without -m slow" if not slow else f"{label}: no command")


def _ids(pages: list[Path]) -> list[str]:
    return [str(page.relative_to(ROOT)) for page in pages]


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_page_commands(page: Path, tmp_path: Path) -> None:
    """The page's commands that are neither slow nor marked not-run, in order."""
    _run_page(page, tmp_path, slow=False)


def _has_slow(page: Path) -> bool:
    try:
        return any(block.slow for block in blocks_of(page))
    except AssertionError:  # a malformed page fails in test_page_commands, not at collection
        return False


SLOW_PAGES = [page for page in PAGES if _has_slow(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW_PAGES, ids=_ids(SLOW_PAGES))
def test_page_commands_with_slow_ones(page: Path, tmp_path: Path) -> None:
    """Every command of a page that has slow ones, in order (pytest -m slow)."""
    _run_page(page, tmp_path, slow=True)


def test_parser_reads_console_blocks(tmp_path: Path) -> None:
    """Commands, continuations, shown output and markers are read as the module docstring says."""
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- not-run: needs the hub -->\n```console\n$ attn a \\\n    --b\nout 1\n\n"
                    "$ attn c\n```\n\n<!-- setup: touch x -->\n<!-- slow: minutes -->\n```bash\n# note\nattn d\n```\n"
                    "```json\n{}\n```\n", encoding="utf-8")
    first, second = blocks_of(page)
    assert first.not_run == "needs the hub" and first.line == 4
    assert [(c.line, c.text, _shown_lines(c)) for c in first.commands] == [
        (5, "attn a \\\n--b", ["out 1"]), (9, "attn c", [])]
    assert second.slow == "minutes" and second.setup == ["touch x"] and second.not_run is None
    assert [c.text for c in second.commands] == ["attn d"]
    assert _matches("a … b", ["a 123 b"]) and not _matches("a … b", ["a 123 c"])
