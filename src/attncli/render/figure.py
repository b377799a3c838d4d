"""Figure renderer: writes a view as a PNG, SVG or PDF file (by the path's suffix) and returns the path."""

from __future__ import annotations

from functools import singledispatch
from pathlib import Path
from typing import Any

from attncli.choices import Format
from attncli.corpus.report import CorpusReport
from attncli.views.classify import ClassifyResult
from attncli.views.cross import AlignView, CaptionView
from attncli.views.speech import SpeechView
from attncli.views.explain import LayerMatrix, TokenProfile
from attncli.views.generation import GenerationView
from attncli.views.maps import HeadPanels, PatchMap, TokenRow
from attncli.views.patches import PatchesView
from attncli.views.stats import StatsReport


@singledispatch
def render(view: Any, path: Path | None = None, **options: Any) -> Path:
    """Views without a figure."""
    from attncli.render import unsupported

    raise unsupported(view, Format.figure)


def _save(fig: Any, path: Path | None) -> Path:
    """Write a matplotlib figure atomically."""
    from attncli.render.figures import save_figure

    assert path is not None, "a figure needs a path"
    return save_figure(fig, path)


@render.register
def _(view: LayerMatrix, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import matrix_figure

    return _save(matrix_figure(view), path)


@render.register
def _(view: TokenProfile, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import profile_figure

    return _save(profile_figure(view), path)


@render.register
def _(view: TokenRow, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import row_figure

    return _save(row_figure(view), path)


@render.register
def _(view: PatchMap, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import write_overlay

    assert path is not None, "a figure needs a path"
    return write_overlay(view, path)


@render.register
def _(view: HeadPanels, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import heads_figure

    return _save(heads_figure(view), path)


@render.register
def _(view: ClassifyResult, path: Path | None = None, **options: Any) -> Path:
    if view.first is None:
        from attncli.render import unsupported

        raise unsupported(view, Format.figure)
    return render(view.first, path)


@render.register
def _(view: PatchesView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.figures import patches_figure

    return _save(patches_figure(view), path)


@render.register
def _(view: AlignView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.crossfig import align_figure

    return _save(align_figure(view), path)


@render.register
def _(view: SpeechView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.crossfig import speech_figure

    return _save(speech_figure(view), path)


@render.register
def _(view: CaptionView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.crossfig import caption_figure

    return _save(caption_figure(view), path)


@render.register
def _(view: GenerationView, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.generation import generation_figure

    return _save(generation_figure(view), path)


@render.register
def _(view: StatsReport, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.analysis import distance_figure

    return _save(distance_figure(view), path)


@render.register
def _(view: CorpusReport, path: Path | None = None, **options: Any) -> Path:
    from attncli.render.corpus import write_figure

    assert path is not None, "a figure needs a path"
    return write_figure(view, path)
