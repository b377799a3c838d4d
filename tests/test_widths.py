"""Every command's terminal output fits 40, 60 and 80 columns, reads without colour, and wraps prose at spaces.

Exact text at 40 and 80 columns for a few outputs (as rich's own tests compare ``Console(width=80)`` text), and
a width check of every command at 40, 60 and 80 on the embedded and tiny models: no line wider than the
terminal, in cells (rich's ``cell_len``), and no number cut to "…".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parent.parent
STAR = str(ROOT / "samples" / "shapes" / "000_star.png")
CAT = "The cat sat on the mat because it was tired."

CASES = {
    "softmax": ["softmax", "1", "2", "3"],
    "token": ["explain", CAT, "--token", "it"],
    "stats": ["stats", "The cat sat.", "--layer", "5"],
    "heatmap": ["heatmap", STAR, "--model", "shapes", "--terminal"],
}

EXPECTED = {
    ('softmax', 40): [
    'softmax(scores)',
    '┏━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━┓',
    '┃ element ┃ score ┃   exp ┃ weight ┃',
    '┡━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━┩',
    '│       0 │     1 │ 2.718 │   0.09 │',
    '│       1 │     2 │ 7.389 │   0.24 │',
    '│       2 │     3 │ 20.09 │   0.67 │',
    '└─────────┴───────┴───────┴────────┘',
    'weights = exp / Σexp (Σexp = 30.19); ',
    'they sum to 1.',
    'Element 2 (score 3) gets the most ',
    'attention: 67%.',
    ],
    ('softmax', 80): [
    'softmax(scores)',
    '┏━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━┓',
    '┃ element ┃ score ┃   exp ┃ weight ┃               ┃',
    '┡━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━┩',
    '│       0 │     1 │ 2.718 │   0.09 │ ██            │',
    '│       1 │     2 │ 7.389 │   0.24 │ █████         │',
    '│       2 │     3 │ 20.09 │   0.67 │ █████████████ │',
    '└─────────┴───────┴───────┴────────┴───────────────┘',
    'weights = exp / Σexp (Σexp = 30.19); they sum to 1.',
    'Element 2 (score 3) gets the most attention: 67%.',
    ],
    ('token', 40): [
    'What "it" (token 8) attends to, layer by',
    'layer · mean of 12 heads · ',
    'sentence-transformers/all-MiniLM-L6-v2',
    '┏━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┓',
    '┃ layer ┃ 1st     ┃ 2nd     ┃ 3rd      ┃',
    '┡━━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━┩',
    '│     0 │ because │ [CLS]   │ tired    │',
    '│       │ 0.208   │ 0.177   │ 0.084    │',
    '│     1 │ [CLS]   │ was     │ tired    │',
    '│       │ 0.455   │ 0.138   │ 0.130    │',
    '│     2 │ [CLS]   │ tired   │ because  │',
    '│       │ 0.412   │ 0.189   │ 0.076    │',
    '│     3 │ [CLS]   │ cat     │ The      │',
    '│       │ 0.405   │ 0.094   │ 0.087    │',
    '│     4 │ [CLS]   │ cat     │ The      │',
    '│       │ 0.436   │ 0.093   │ 0.076    │',
    '│     5 │ [CLS]   │ cat     │ mat      │',
    '│       │ 0.224   │ 0.171   │ 0.137    │',
    '└───────┴─────────┴─────────┴──────────┘',
    'Besides itself and special tokens, "it" ',
    'attends most to "cat" (token 2): the top',
    'such token in 3 of 6 layers (3, 4, 5), ',
    'mean weight 0.079.',
    'Heads that send the most from "it" to ',
    '"cat": layer 5 head 11 0.712, layer 3 ',
    'head 1 0.492, layer 5 head 4 0.421.',
    ],
    ('token', 80): [
    'What "it" (token 8) attends to, layer by layer · mean of 12 heads · ',
    'sentence-transformers/all-MiniLM-L6-v2',
    '┏━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓',
    '┃ layer ┃ 1st           ┃ 2nd         ┃ 3rd           ┃',
    '┡━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩',
    '│     0 │ because 0.208 │ [CLS] 0.177 │ tired 0.084   │',
    '│     1 │ [CLS] 0.455   │ was 0.138   │ tired 0.130   │',
    '│     2 │ [CLS] 0.412   │ tired 0.189 │ because 0.076 │',
    '│     3 │ [CLS] 0.405   │ cat 0.094   │ The 0.087     │',
    '│     4 │ [CLS] 0.436   │ cat 0.093   │ The 0.076     │',
    '│     5 │ [CLS] 0.224   │ cat 0.171   │ mat 0.137     │',
    '└───────┴───────────────┴─────────────┴───────────────┘',
    'Besides itself and special tokens, "it" attends most to "cat" (token 2): the top',
    'such token in 3 of 6 layers (3, 4, 5), mean weight 0.079.',
    'Heads that send the most from "it" to "cat": layer 5 head 11 0.712, layer 3 head',
    '1 0.492, layer 5 head 4 0.421.',
    ],
    ('stats', 40): [
    'Head statistics · ',
    'sentence-transformers/all-MiniLM-L6-v2 ·',
    '6 tokens · sinks: [CLS], [SEP]',
    'layer  head     H  H/max  dist  d/unif',
    '    5     0  1.28   0.72  1.20    0.96',
    '    5     1  0.90   0.50  1.12    0.89',
    '    5     2  1.04   0.58  1.39    1.11',
    '    5     3  1.07   0.60  1.02    0.82',
    '    5     4  1.18   0.66  0.83    0.67',
    '    5     5  1.05   0.58  1.09    0.87',
    '    5     6  1.50   0.84  1.24    0.99',
    '    5     7  0.96   0.53  0.96    0.77',
    '    5     8  1.37   0.76  1.20    0.96',
    '    5     9  1.19   0.66  1.35    1.08',
    '    5    10  1.18   0.66  1.06    0.85',
    '    5    11  0.74   0.41  0.98    0.79',
    'layer  head  sink  self  prev  next',
    '    5     0  0.68  0.11  0.19  0.07',
    '    5     1  0.81  0.03  0.22  0.04',
    '    5     2  0.80  0.06  0.17  0.05',
    '    5     3  0.59  0.14  0.18  0.13',
    '    5     4  0.32  0.30  0.19  0.15',
    '    5     5  0.67  0.13  0.19  0.08',
    '    5     6  0.48  0.08  0.25  0.12',
    '    5     7  0.68  0.08  0.22  0.07',
    '    5     8  0.57  0.09  0.20  0.08',
    '    5     9  0.65  0.06  0.21  0.05',
    '    5    10  0.54  0.08  0.22  0.13',
    '    5    11  0.13  0.26  0.24  0.21',
    'layer  head  role  ',
    '    5     0  sink  ',
    '    5     1  sink  ',
    '    5     2  sink  ',
    '    5     3  sink  ',
    '    5     4  global',
    '    5     5  sink  ',
    '    5     6  global',
    '    5     7  sink  ',
    '    5     8  sink  ',
    '    5     9  sink  ',
    '    5    10  sink  ',
    '    5    11  global',
    'H: entropy (nats); H/max: H / ',
    'log(visible keys); dist: mean attention ',
    'distance (tokens); d/unif: dist / ',
    "uniform attention's; role: a score ≥ ",
    '0.5, else local if d/unif ≤ 0.5, else ',
    'global',
    ],
    ('stats', 80): [
    'Head statistics · sentence-transformers/all-MiniLM-L6-v2 · 6 tokens · sinks: ',
    '[CLS], [SEP]',
    'layer  head     H  H/max  dist  d/unif  sink  self  prev  next  role  ',
    '    5     0  1.28   0.72  1.20    0.96  0.68  0.11  0.19  0.07  sink  ',
    '    5     1  0.90   0.50  1.12    0.89  0.81  0.03  0.22  0.04  sink  ',
    '    5     2  1.04   0.58  1.39    1.11  0.80  0.06  0.17  0.05  sink  ',
    '    5     3  1.07   0.60  1.02    0.82  0.59  0.14  0.18  0.13  sink  ',
    '    5     4  1.18   0.66  0.83    0.67  0.32  0.30  0.19  0.15  global',
    '    5     5  1.05   0.58  1.09    0.87  0.67  0.13  0.19  0.08  sink  ',
    '    5     6  1.50   0.84  1.24    0.99  0.48  0.08  0.25  0.12  global',
    '    5     7  0.96   0.53  0.96    0.77  0.68  0.08  0.22  0.07  sink  ',
    '    5     8  1.37   0.76  1.20    0.96  0.57  0.09  0.20  0.08  sink  ',
    '    5     9  1.19   0.66  1.35    1.08  0.65  0.06  0.21  0.05  sink  ',
    '    5    10  1.18   0.66  1.06    0.85  0.54  0.08  0.22  0.13  sink  ',
    '    5    11  0.74   0.41  0.98    0.79  0.13  0.26  0.24  0.21  global',
    'H: entropy (nats); H/max: H / log(visible keys); dist: mean attention distance ',
    "(tokens); d/unif: dist / uniform attention's; role: a score ≥ 0.5, else local if",
    'd/unif ≤ 0.5, else global',
    ],
    ('heatmap', 40): [
    'Layer 5 · mean of 4 heads · [CLS] → ',
    'patches · attncli/shapes-vit',
    '    0  1  2  3  4  5  6  7',
    '0   0  0  0  0  0  0  0  0',
    '1   0  0  0◇23  0  0  0  0',
    '2   0  0  4  1  0  0  0  0',
    '3   0  9  1◇25  0  0  0  0',
    '4   0  0◇27  0  0  0  1  0',
    '5   0  0  0  0  0  0  0  0',
    '6   0  0  0  0  0  0  0  0',
    '7   0  0  0  0  0  0  0  0',
    'weights in percent; darker = more ',
    'attention; colours 0.000–0.273 (zero); ',
    '0% of it went to [CLS]',
    'top patches (row,col): (4,2) 0.273, ',
    '(3,3) 0.252, (1,3) 0.232',
    "patch sinks ◇ (share of all queries' ",
    'attention, heads averaged [top head: its',
    'share]): layer 5: (4,2) 24.9% [head 1: ',
    '84.0%], (3,3) 24.7% [head 2: 97.4%], ',
    '(1,3) 20.8% [head 0: 82.9%]',
    ],
    ('heatmap', 80): [
    'Layer 5 · mean of 4 heads · [CLS] → patches · attncli/shapes-vit',
    '    0  1  2  3  4  5  6  7',
    '0   0  0  0  0  0  0  0  0',
    '1   0  0  0◇23  0  0  0  0',
    '2   0  0  4  1  0  0  0  0',
    '3   0  9  1◇25  0  0  0  0',
    '4   0  0◇27  0  0  0  1  0',
    '5   0  0  0  0  0  0  0  0',
    '6   0  0  0  0  0  0  0  0',
    '7   0  0  0  0  0  0  0  0',
    'weights in percent; darker = more attention; colours 0.000–0.273 (zero); 0% of ',
    'it went to [CLS]',
    'top patches (row,col): (4,2) 0.273, (3,3) 0.252, (1,3) 0.232',
    "patch sinks ◇ (share of all queries' attention, heads averaged [top head: its ",
    'share]): layer 5: (4,2) 24.9% [head 1: 84.0%], (3,3) 24.7% [head 2: 97.4%], ',
    '(1,3) 20.8% [head 0: 82.9%]',
    ],
}


@pytest.mark.parametrize(("name", "width"), list(EXPECTED), ids=[f"{n}-{w}" for n, w in EXPECTED])
def test_exact_text(cli, monkeypatch, name, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = cli(*CASES[name])
    assert code == 0, err
    assert out.splitlines() == EXPECTED[(name, width)]


@pytest.fixture(scope="module")
def cross_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny Marian (align) and a tiny ViT-GPT-2 (caption)."""
    from tiny_seq2seq import make_marian, make_vit_gpt2

    root = tmp_path_factory.mktemp("cross")
    return {"marian": make_marian(root / "marian"), "ved": make_vit_gpt2(root / "ved")}


COMMANDS = {  # one invocation of every command that prints to the terminal (`attn --help` lists them)
    "softmax": ["softmax", "1", "2", "3", "--key-size", "64", "-T", "2"],
    "explain": ["explain", CAT],
    "explain-token": ["explain", CAT, "--token", "it", "--layer", "5"],
    "explain-matrix": ["explain", CAT, "--matrix"],
    "stats": ["stats", CAT],
    "stats-image": ["stats", STAR, "--model", "shapes"],
    "heatmap-image": ["heatmap", STAR, "--model", "shapes", "--terminal"],
    "heatmap-heads": ["heatmap", STAR, "--model", "shapes", "--terminal", "--all-heads"],
    "heatmap-text": ["heatmap", "--text", CAT, "--model", "{bert}", "--terminal"],
    "heatmap-row": ["heatmap", "--text", CAT, "--model", "{bert}", "--terminal", "--token", "cat"],
    "classify": ["classify", STAR, "--model", "shapes"],
    "classify-folder": ["classify", str(ROOT / "samples" / "shapes"), "--model", "shapes"],
    "patches": ["patches", STAR, "--model", "shapes", "-o", "{tmp}/patches.png"],
    "generate": ["generate", "The cat", "--model", "{gpt2}", "--max-new-tokens", "3"],
    "align": ["align", "the cat sat", "--model", "{marian}", "--score", "die katze"],
    "caption": ["caption", STAR, "--model", "{ved}", "--max-new-tokens", "3"],
    "evaluate": ["evaluate", "--model", "shapes", "--n", "2", "--no-auc", "--methods", "attention"],
}
# Tables whose cells rich still shortens with "…" at 40 columns (their renderers do not yet choose what to drop,
# as explain's top table and stats do): checked for width only, until they do.
STILL_CUT = {"generate", "caption", "align", "classify-folder"}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_fits_40_60_and_80_columns(name, cli, monkeypatch, request, tmp_path):
    models = {"tmp": tmp_path}
    for key, fixture in (("bert", "tiny_bert"), ("gpt2", "tiny_gpt2")):
        if "{" + key + "}" in COMMANDS[name]:
            models[key] = request.getfixturevalue(fixture)
    if name in ("align", "caption"):
        models.update(request.getfixturevalue("cross_models"))
    args = [arg.format(**models) for arg in COMMANDS[name]]
    too_wide = []
    for width in (40, 60, 80):
        monkeypatch.setenv("COLUMNS", str(width))
        code, out, err = cli(*args)
        assert code == 0 and out.strip(), (width, err)
        too_wide += [(width, cell_len(line), line) for line in out.splitlines()
                     if cell_len(line) > width or ("…" in line and name not in STILL_CUT)]
    assert not too_wide, "\n".join(map(repr, too_wide))


def test_messages_wrap_at_spaces_on_a_terminal_and_stay_one_line_when_piped():
    from attncli.quiet import wrapped

    message = ("attn: error: --layer 9 is out of range: the model has 6 layers (0..5) (use --layer 0..5, or -1 for "
               "the last)")
    assert wrapped(message, isatty=False) == message
    lines = wrapped(message, 40).splitlines()
    assert lines == ["attn: error: --layer 9 is out of range:", "  the model has 6 layers (0..5) (use",
                     "  --layer 0..5, or -1 for the last)"]
    assert " ".join(line.strip() for line in lines) == message  # nothing lost, no word cut
    long_path = "attn: error: /a/very/long/path/that/is/longer/than/the/terminal/itself.png: not an image"
    assert "/a/very/long/path/that/is/longer/than/the/terminal/itself.png:" in wrapped(long_path, 40).split()


def test_the_error_boundary_wraps_at_words_in_a_40_column_terminal():
    """On a terminal (a pty here) the one-line error wraps at spaces; the message is the piped one, re-flowed."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(ROOT / "src")}
    args = [sys.executable, "-m", "attncli", "softmax", "1", "nan", "3"]
    done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env, timeout=60)
    os.close(slave)
    tty = b""
    try:
        while chunk := os.read(master, 4096):
            tty += chunk
    except OSError:  # the pty is closed once the child has gone
        pass
    os.close(master)
    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    lines = tty.decode().replace("\r\n", "\n").splitlines()
    assert done.returncode == piped.returncode == 2
    assert len(lines) > 1 and all(cell_len(line) <= 40 for line in lines), lines
    assert lines[0].startswith("attn: error: ") and all(line.startswith("  ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == piped.stderr.strip()


def test_cell_text_contrasts_with_its_shade_in_16_256_and_true_colour():
    """No shade puts white on white (or black on navy) once a 16-colour terminal rounds the background."""
    from rich.color import Color, ColorSystem
    from rich.terminal_theme import DEFAULT_TERMINAL_THEME

    from attncli.render.tables import _luminance, shade

    for step in range(101):
        style = shade(step / 100, 1.0)
        ink = style.color.get_truecolor(DEFAULT_TERMINAL_THEME)
        back = style.bgcolor.get_truecolor()
        for system in (None, ColorSystem.EIGHT_BIT, ColorSystem.STANDARD):
            shown = back if system is None else Color.from_triplet(back).downgrade(system).get_truecolor(
                DEFAULT_TERMINAL_THEME)
            light, dark = sorted((_luminance(*ink), _luminance(*shown)), reverse=True)
            assert (light + 0.05) / (dark + 0.05) >= 3.0, (step, system, ink, shown)


def test_no_colour_means_no_escape_codes_and_shading_in_characters(monkeypatch):
    import numpy as np
    from rich.console import Console

    from attncli.cli.common import out
    from attncli.render.vision import grid_text

    monkeypatch.setenv("NO_COLOR", "1")
    console = out(40)
    console.force_terminal = True  # as on a terminal: NO_COLOR still sends no escape (rich would send bold)
    assert console.color_system is None
    grid = grid_text(np.linspace(0, 1, 2 * 30, dtype=np.float32).reshape(2, 30), width=40)
    with console.capture() as captured:
        console.print(grid)
    text = captured.get()
    assert "\x1b" not in text and "░" in text and "█" in text
    plain = Console(width=40, force_terminal=True, color_system=None)  # TERM=dumb: rich's colour system is None
    with plain.capture() as captured:
        plain.print(grid)
    assert captured.get() == text and all(cell_len(line) <= 40 for line in text.splitlines())


def test_a_default_named_figure_that_existed_is_said_replaced(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, first = cli("heatmap", STAR, "--model", "shapes")
    assert code == 0 and first.startswith("wrote heatmap-"), first
    name = first.split()[1]
    code, out, second = cli("heatmap", STAR, "--model", "shapes")
    assert code == 0 and f"replaced {name}" in second, second
