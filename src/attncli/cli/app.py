"""Assemble the `attn` Typer app; main() is the single error boundary."""

from __future__ import annotations

import sys
from typing import Any

import typer

from attncli import __version__
from attncli.cli import analysis as analysis_cmd
from attncli.cli import crossattn as cross_cmd
from attncli.cli import generate as generate_cmd
from attncli.cli import softmax as softmax_cmd
from attncli.cli import text as text_cmd
from attncli.cli import vision as vision_cmd



def _usage_name(self: typer.core.TyperArgument) -> str:
    """NAME for a required argument, [NAME] for an optional one, NAME... when it takes several."""
    name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
    return name + ("..." if self.nargs != 1 else "")


# Typer prints a Python type after every argument's name ("[TEXT] <str>") and wraps required ones in braces
# ("{scores}..."); the metavar and help already say what an argument takes, so both are plain here.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
typer.core.TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]

PANELS = ("Input", "Model", "View", "Output")  # option groups in every command's --help, in this order


def _format_options(self: typer.core.TyperCommand, ctx, formatter) -> None:
    """Arguments, then options grouped by their rich_help_panel (Input, Model, View, Output), then the rest."""
    args: list = []
    groups: dict[str, list] = {}
    for param in self.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            args.append(record)
        else:
            groups.setdefault(getattr(param, "rich_help_panel", None) or "Other options", []).append(record)
    if args:
        with formatter.section("Arguments"):
            formatter.write_dl(args)
    for name in sorted(groups, key=lambda n: PANELS.index(n) if n in PANELS else len(PANELS)):
        with formatter.section(name if name == "Other options" else f"{name} options"):
            formatter.write_dl(groups[name])


# Plain click help (rich_markup_mode=None) ignores rich_help_panel; group the options by it here.
typer.core.TyperCommand.format_options = _format_options  # type: ignore[method-assign]

app = typer.Typer(
    name="attn",
    help="See what a transformer attends to: tables in the terminal, heatmaps, JSON.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # attn --install-completion / --show-completion
    rich_markup_mode=None,  # plain click help: no type column, no choices broken mid-word
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def version_line() -> str:
    """'attn 0.1.0 (torch 2.13.0+cpu, transformers 5.24.0, Python 3.11.7)', read without importing torch."""
    import platform
    from importlib import metadata

    parts = []
    for name in ("torch", "transformers"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"attn {__version__} ({', '.join(parts)}, Python {platform.python_version()})"


def _version(value: bool) -> None:
    if value:
        print(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """See what a transformer attends to."""


app.command("explain", short_help="Which tokens each token attends to.")(text_cmd.explain)
app.command("softmax", short_help="The softmax step of attention, on numbers you type.",
            context_settings={"ignore_unknown_options": True})(softmax_cmd.softmax)
app.command("stats", short_help="Per-head statistics and the role of each head.")(analysis_cmd.stats)
app.command("evaluate", short_help="How faithful each map method is, against a random baseline.")(
    analysis_cmd.evaluate)
app.command("classify", short_help="Classify images and say where [CLS] looks.")(vision_cmd.classify)
app.command("patches", short_help="The image cut into its patch grid; position embeddings.")(vision_cmd.patches)
app.command("heatmap", short_help="Attention as a figure, a terminal grid, JSON or a page.")(vision_cmd.heatmap)
app.command("align", short_help="What each translated token attended to in the source.")(cross_cmd.align)
app.command("caption", short_help="What each caption word attended to in the image.")(cross_cmd.caption)
app.command("generate", short_help="Continue a prompt; what each new token attended to.")(generate_cmd.generate)


def _fail(message: str, code: int) -> None:
    """One message on stderr and exit: one line when piped, wrapped at spaces on a terminal."""
    from attncli.quiet import wrapped

    sys.stderr.write(wrapped(f"attn: error: {message}") + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: known errors become one line on stderr (exit 1 runtime, 2 usage); ATTN_DEBUG=1 shows tracebacks."""
    from attncli.errors import AttnError
    from attncli.quiet import debugging, libraries_quiet

    # Typer vendors its own click; its UsageError is the base of BadParameter, NoSuchOption, MissingParameter…
    usage_error: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

    debug = debugging()
    from attncli.cli import common

    common.typed[:] = ["attn", *(sys.argv[1:] if argv is None else argv)]  # for warnings that give a command
    from attncli import cache

    def say(message: str) -> None:  # a model converted on first use says so
        sys.stderr.write(f"attn: {message}\n")

    cache.progress_hook = say
    try:
        with libraries_quiet():
            code = app(args=argv, prog_name="attn", standalone_mode=False)
    except AttnError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
            raise SystemExit(2) from None
        _fail(exc.format_message(), 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a message.
        sys.stderr.close()
        raise SystemExit(1) from None
    except Exception as exc:  # the last resort: still one line, with a way to see more
        if debug:
            raise
        _fail(f"unexpected {exc.__class__.__name__}: {exc} (set ATTN_DEBUG=1 for a traceback)", 1)
    raise SystemExit(code if isinstance(code, int) else 0)
