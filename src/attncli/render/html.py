"""The interactive view as one self-contained HTML file: inline CSS and JS, no CDN, nothing fetched.

The page's code lives in ``html_assets/`` (vanilla JS and CSS, read with importlib.resources and inlined);
the view's data goes in a ``<script type="application/json">`` block. A Content-Security-Policy forbids
every fetch, so the file behaves the same from ``file://`` with the network off.
"""

from __future__ import annotations

import html
import json
from functools import cache, singledispatch
from importlib.resources import files
from pathlib import Path
from typing import Any

from attncli.choices import Format
from attncli.corpus.report import CorpusReport
from attncli.cache import write_atomic
from attncli.views.interactive import InteractiveView

ASSETS = ("core.js", "picture.js", "text.js", "image.js", "stats.js", "qk.js")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


@cache
def asset(name: str) -> str:
    """The text of one file of html_assets/."""
    return files("attncli.render").joinpath("html_assets").joinpath(name).read_text(encoding="utf-8")


def _json_for_script(data: dict) -> str:
    """JSON that cannot end its <script> block early (``</`` and ``<!--`` escaped)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def html_document(view: "InteractiveView") -> str:
    """The whole page for a view, as one string."""
    title = f"attn · {view.model_id} · {view.input}"[:200]
    scripts = "\n".join(asset(name) for name in ASSETS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{asset('page.css')}\n</style>\n</head>\n"
        f"<body class=\"kind-{view.kind}\">\n{asset('body.html')}\n"
        f"<script id=\"attn-data\" type=\"application/json\">{_json_for_script(view.to_dict())}</script>\n"
        f"<script>\n{scripts}\n</script>\n</body>\n</html>\n"
    )


def write_html(view: "InteractiveView", path: Path | str) -> Path:
    """Write the page atomically and return its path."""
    return write_atomic(Path(path), html_document(view).encode("utf-8"))


@singledispatch
def render(view: Any, path: Path | None = None, **options: Any) -> Path:
    """Only the interactive view has a page (commands build it from their capture when -o ends in .html)."""
    from attncli.render import unsupported

    raise unsupported(view, Format.html)


@render.register
def _(view: InteractiveView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import write_bytes

    assert path is not None, "a page needs a path"
    return write_bytes(Path(path), html_document(view).encode("utf-8"))


@render.register
def _(view: CorpusReport, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.corpus import write_page

    assert path is not None, "a page needs a path"
    return write_page(view, path)
