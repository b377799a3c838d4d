"""What every command shares: where output goes (one `show` call per command), warnings, keeping captures."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from attncli.choices import Format
from attncli.errors import AttnError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from attncli.capture import Capture, Report, Selection
    from attncli.sources import Plan, Resolved


# Widest table when stdout is not a terminal: wide enough for any matrix, so a file gets every number.
DATA_WIDTH = 100_000


@dataclass(frozen=True)
class Target:
    """One destination of a view: a format, and a file (None: stdout)."""

    fmt: Format
    path: Path | None = None
    view: Any = None  # a view of its own (the interactive page), instead of the command's view


@dataclass(frozen=True)
class Outputs:
    """Every destination of a command's view, and the terminal width tables are laid out for."""

    targets: tuple[Target, ...]
    width: int | None = None


def outputs(*, as_json: bool = False, output: Path | None = None, terminal: bool = True, width: int | None = None,
            file_formats: Iterable[Format] = (Format.figure, Format.html), inputs: Iterable[Path | str] = (),
            extra: Iterable[Target] = ()) -> Outputs:
    """The destinations a command's flags ask for, checked before any work (bad suffix, folder, an input)."""
    from attncli.outputs import check_output, output_format

    targets: list[Target] = []
    inputs = list(inputs)
    if output is not None:
        checked = check_output(output, inputs)
        targets.append(Target(output_format(output, file_formats), checked))
    for target in extra:
        if target.path is not None:
            check_output(target.path, inputs, "--csv" if target.fmt is Format.csv else "--plot")
        targets.append(target)
    if as_json:
        targets.append(Target(Format.json))
    elif terminal:
        targets.append(Target(Format.terminal))
    stdout = [t for t in targets if t.path is None]
    if len(stdout) > 1:
        raise UsageError(f"{' and '.join(_flag(t.fmt) for t in stdout)} both write to stdout",
                         "write one of them to a file, or drop one")
    return Outputs(tuple(targets), width)


def _flag(fmt: Format) -> str:
    """The option that asks for a format on stdout."""
    return {Format.json: "--json", Format.csv: "--csv -", Format.terminal: "the table"}.get(fmt, fmt.value)


def terminal_width(width: int | None = None) -> int:
    """--width, else COLUMNS, else the terminal's width; unlimited when stdout is not a terminal (a file gets all)."""
    if width is not None:
        return width
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return DATA_WIDTH


def _plain() -> dict:
    """Console settings for NO_COLOR: no escape codes at all (rich would still send bold and dim)."""
    return {"color_system": None} if os.environ.get("NO_COLOR", "") != "" else {}


def out(width: int | None = None) -> "Console":
    """Console for data (stdout), laid out for the terminal width (see terminal_width)."""
    from rich.console import Console

    return Console(soft_wrap=False, width=terminal_width(width), highlight=False, **_plain())


def err() -> "Console":
    """Console for progress, warnings and errors (stderr); plain text when stderr is not a terminal."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, **_plain())


def say(message: str) -> None:
    """One message on stderr (what was written, what was saved): the same words for every command; wrapped at
    spaces on a terminal (see attncli.quiet.wrapped), one line when stderr is piped."""
    from attncli.quiet import wrapped

    err().print(wrapped(message), markup=False)


def warn(messages: Iterable[str]) -> None:
    """Print warnings on stderr, one line each."""
    for message in messages:
        say(f"warning: {message}")


def show(view: Any, where: Outputs, resolved: "Resolved | None" = None, save: Path | None = None,
         dtype: Any = None, *, capture: "Capture | None" = None) -> None:
    """Render one view to every destination, then keep the capture (--save, and the last capture when fresh).

    Files come first (the view's, then --save), then stdout, then one stderr line per file. If any file fails,
    the files this run created are removed and the last capture is left as it was: a failing command changes
    nothing.
    """
    from attncli.render import render

    width = terminal_width(where.width)
    if capture is None and resolved is not None:
        capture = resolved.capture
    created: list[Path] = []
    lines: list[str] = []
    data: list[Any] = []
    try:
        for target in where.targets:
            new = target.path is not None and not target.path.exists()
            result = render(target.view if target.view is not None else view, target.fmt, path=target.path,
                            width=width)
            if target.path is None:
                data.append(result)
                continue
            if not isinstance(result, Path):  # text formats written to a file
                from attncli.render.figures import write_bytes

                result = write_bytes(target.path, str(result).encode("utf-8"))
            created += [result] if new else []
            lines.append(f"{'wrote' if new else 'replaced'} {result}")  # a default name may have been there
        if save is not None and capture is not None:
            from attncli.store import save_capture

            new = not save.exists()
            written = save_capture(capture, save, dtype)  # an existing file is replaced (atomically), not skipped
            created += [written] if new else []
            lines.append(f"saved capture to {save}")
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    if capture is not None and (resolved is None or resolved.plan.fresh):
        lines += kept_note(capture) + _store_last(capture, dtype)
    warn(resolved.warnings if resolved is not None else [])
    for result in data:
        if isinstance(result, str):
            sys.stdout.write(result)
            sys.stdout.flush()
        else:
            out(where.width).print(result, crop=False)  # never-wrapped lines (see render.terminal.line) stay whole
    for line in lines:
        say(line)


typed: list[str] = []  # the command line as typed (main() sets it): warnings give it back with the fix


def kept_note(capture: "Capture") -> list[str]:
    """One warning when a new capture kept only part of the model (it was over the capture budget), with the
    whole command that keeps everything. A capture that holds no self-attention at all by design (audio longer
    than one model window: its own warning says why) was not cut by the budget, so it gets none."""
    if capture.complete or capture.n_tokens == 0:
        return []
    import math
    import shlex

    from attncli.capture import capture_budget

    parts = [f"{len(capture.layer_ids)} of {capture.total_layers} layers" if capture.layer_ids is not None else "",
             f"{len(capture.head_ids)} of {capture.total_heads} heads" if capture.head_ids is not None else "",
             f"the {capture.fused_heads} of the heads" if capture.fused_heads else "",
             f"{len(capture.query_ids)} of {capture.n_tokens} query rows" if capture.query_ids is not None else ""]
    layers, heads = capture.total_layers or capture.n_layers, capture.total_heads or capture.n_heads
    whole = layers * heads * capture.n_tokens * capture.n_tokens * 4 / 2**20  # float32 MB of everything
    command = shlex.join(typed) if typed else "the same command"
    if "-" in typed[1:] or not typed:
        command += " (with the same input)"
    return [f"warning: this capture kept only {', '.join(p for p in parts if p)} (all of it would take "
            f"{_mb(whole)}, over the {_mb(capture_budget() / 2**20)} capture budget), so other views of it "
            f"may be refused; to keep everything: ATTN_CAPTURE_BUDGET_MB={math.ceil(whole) + 1} {command}"]


def _mb(megabytes: float) -> str:
    """'66 MB', '0.3 MB', '0 MB'."""
    return f"{megabytes:.0f} MB" if megabytes >= 10 or megabytes == 0 else f"{megabytes:.1g} MB"


def _store_last(capture: "Capture", dtype: Any = None) -> list[str]:
    """Store the capture as the last capture (best effort, within its budget): the lines to show about it."""
    from attncli.store import fit_budget, last_budget, last_capture_path, save_capture, stored_dtype

    try:
        kind = stored_dtype(capture, dtype)
        kept, note = fit_budget(capture, last_budget(), kind)
        save_capture(kept, last_capture_path(), kind)
    except AttnError as exc:
        return [f"warning: could not store the last capture: {exc.message}"]
    return [f"warning: {note}"] if note else []


def with_page(where: Outputs, capture: "Capture", spec: Any = None, grads: Any = None,
              label: str | None = None, stats: Any = None, qk: bool = False) -> Outputs:
    """Give an HTML target its interactive view of the capture (built only when a page is asked for).

    The page opens on what the command asked for (spec: layer, head or fusion, method, query, skip-special,
    scale); rollout comes along when the capture allows it, without a word; ``stats`` (a StatsReport) adds
    the statistics table.
    """
    if not any(t.fmt is Format.html for t in where.targets):
        return where
    from attncli.methods.registry import Method
    from attncli.views.interactive import Initial, interactive_view

    method = Method(getattr(spec, "method", Method.attention))
    methods = [method, Method.attention]
    whole = capture.cross_attentions is None and capture.layer_ids is None and capture.fused_heads is None
    if whole and method is not Method.rollout:
        methods.append(Method.rollout)  # free to add: the page can switch to it
    table = None
    if stats is not None:  # the whole table (every head), whatever --layer/--sort chose for the terminal
        from attncli.views.stats import COLUMNS

        table = dict(stats.to_dict(), columns=list(COLUMNS), notes=list(stats.notes))
    page = interactive_view(capture, methods=methods, gradients=grads, target_label=label,
                            discard_ratio=getattr(spec, "discard_ratio", 0.0), initial=Initial.of(spec), stats=table, qk=qk)
    warn([w for w in page.warnings if w not in capture.warnings])
    return Outputs(tuple(replace(t, view=page) if t.fmt is Format.html else t for t in where.targets), where.width)


def keeping(where: Outputs, selection: "Selection", save: Path | None = None) -> "Selection":
    """What a capture keeps: the view's selection, or every weight when an interactive page is among the outputs.

    The page shows every layer, head and query row, and rollout. Any capture under the capture budget keeps
    everything; with --save (and no ATTN_CAPTURE_BUDGET_MB set) the budget is what memory allows: a saved capture
    should answer any later view.
    """
    from attncli.capture import Selection, capture_budget

    capture_budget()  # a bad ATTN_CAPTURE_BUDGET_MB is refused before any model loads
    if any(t.fmt is Format.html for t in where.targets):
        return Selection(extras=selection.extras)  # everything, and the extra arrays the method reads
    if save is not None and not os.environ.get("ATTN_CAPTURE_BUDGET_MB", "").strip():
        import psutil

        return replace(selection, budget=max(capture_budget(), psutil.virtual_memory().available // 3))
    return selection


def select(plan: "Plan", where: Outputs, selection: "Selection", layers: str | None = None,
           heads: str | None = None, save: Path | None = None) -> "Plan":
    """The plan keeping what its views need (see keeping); --layers/--heads on a saved capture are refused."""
    if plan.fresh:
        return plan.selecting(keeping(where, selection, save))
    if layers is not None or heads is not None:
        raise UsageError("--layers and --heads choose what a new capture keeps; this input is a saved capture",
                         "drop them, or give the image or text again to capture it anew")
    return plan


def check_save_path(save: Path | None, inputs: Iterable[Path | str] = ()) -> None:
    """Refuse a --save target before any work: wrong suffix, or the name of an input."""
    if save is None:
        return
    if save.is_dir():
        raise UsageError(f"--save {save} is a folder", "give a file name ending in .npz")
    if save.suffix.lower() != ".npz":
        raise UsageError(f"--save {save}: a capture is saved as .npz", "give a file name ending in .npz")
    from attncli.outputs import check_output

    check_output(save, inputs, "--save")  # one of the inputs, an unwritable folder or file


def gradients(resolved: "Resolved", spec: Any) -> tuple[Any, str | None]:
    """(attention gradients, explained class) when the spec's method is grad-rollout, else (None, None)."""
    from attncli.choices import Kind
    from attncli.methods.registry import info

    if not info(spec.method).gradients:
        return None, None
    from attncli.gradcapture import gradients_for
    from attncli.views.common import require_whole

    require_whole(resolved.capture, f"--method {info(spec.method).name}")  # before the model runs again to compare with it

    req = resolved.plan.request
    position, word = None, None
    if spec.query is not None and resolved.capture.kind is Kind.text:  # a token classifier explains this token's tag
        from attncli.views.explain import find_word

        pieces = find_word(resolved.capture, spec.query)
        position, word = pieces[0], resolved.capture.tokens[pieces[0]]
    explained = gradients_for(resolved.capture, spec.target, resolved.loaded, device=req.device,
                              trust_remote_code=req.trust_remote_code, allow_pickle=req.allow_pickle,
                              position=position)
    tagged = word is not None and explained.logits.ndim == 1 and _tags_tokens(resolved)
    return explained.gradients, (f'{explained.label} (the tag of "{word}")' if tagged else explained.label)


def _tags_tokens(resolved: "Resolved") -> bool:
    """Whether the model behind a capture tags every token (a token classifier)."""
    loaded = resolved.loaded
    name = type(loaded.model).__name__ if loaded is not None else ""
    return name.endswith("ForTokenClassification")


class Progress:
    """A rich progress bar on stderr (only when stderr is a terminal and there is more than one item)."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what = total, what
        self.bar: Any = None

    def __enter__(self):
        if self.total > 1 and err().is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(self.what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=self.total)
        return self.advance

    def advance(self, done: int, total: int | None) -> None:
        """Advance by ``done`` items, or (with ``total``) set the count done."""
        if self.bar is None:
            return
        if total is None:
            self.bar.advance(self.task, done)
        else:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextmanager
def stages() -> "Iterator[Report | None]":
    """A transient spinner on stderr naming the step under way, with a bar once it has a count (a forward's layers).

    Yields the callback the core reports to, or None (nothing drawn) when stderr is not a terminal.
    """
    console = err()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task("starting", total=None)

    def report(stage: str, done: int | None, total: int | None) -> None:
        bar.update(task, description=stage, completed=done or 0, total=total)

    with bar:
        yield report


def resolve(plan: "Plan") -> "Resolved":
    """sources.resolve with the progress of loading and long forwards drawn on stderr (when it is a terminal)."""
    from attncli import sources

    with stages() as report:
        return sources.resolve(plan, report)
