"""Terminal renderer: one rich renderable per view type, laid out for the terminal's width.

The tables themselves live in ``tables`` (text), ``vision`` (images), ``cross`` (cross-attention) and
``analysis`` (stats, evaluate); this module only says which one draws which view.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from rich.console import Group

from attncli.choices import Format
from attncli.corpus.report import CorpusReport
from attncli.methods.softmax import SoftmaxResult
from attncli.render.tables import line, matrix_table, profile_table, softmax_table, top_table
from attncli.views.classify import ClassifyResult
from attncli.views.cross import AlignView, CaptionView
from attncli.views.evaluation import EvalReport
from attncli.views.explain import TokenMatrix, TokenProfile, TokenTable
from attncli.views.generation import GenerationView
from attncli.views.maps import HeadPanels, PatchMap, TokenRow
from attncli.views.patches import PatchesView
from attncli.views.speech import SpeechView
from attncli.views.stats import StatsReport

@singledispatch
def render(view: Any, width: int = 80, **options: Any) -> Any:
    """A rich renderable of a view, laid out for ``width`` columns."""
    from attncli.render import unsupported

    raise unsupported(view, Format.terminal)


@render.register
def _(view: TokenTable, width: int = 80, **options: Any) -> Any:
    return top_table(view, width=width)


@render.register
def _(view: TokenMatrix, width: int = 80, **options: Any) -> Any:
    return matrix_table(view, width=width)


@render.register
def _(view: TokenProfile, width: int = 80, **options: Any) -> Any:
    return profile_table(view)


@render.register
def _(view: SoftmaxResult, width: int = 80, **options: Any) -> Any:
    return softmax_table(view, width)


@render.register
def _(view: TokenRow, width: int = 80, **options: Any) -> Any:
    from attncli.render.vision import row_table

    return row_table(view, width)


@render.register(PatchMap)
@render.register(HeadPanels)
def _(view: Any, width: int = 80, **options: Any) -> Any:
    from attncli.render.vision import grid_view

    return grid_view(view, width=width)


@render.register
def _(view: ClassifyResult, width: int = 80, **options: Any) -> Any:
    from attncli.render.vision import classify_output

    return classify_output(view, width)


@render.register
def _(view: PatchesView, width: int = 80, **options: Any) -> Any:
    return Group(line(view.summary))


@render.register
def _(view: AlignView, width: int = 80, **options: Any) -> Any:
    from attncli.render.cross import align_table

    return align_table(view, width)


@render.register
def _(view: CaptionView, width: int = 80, **options: Any) -> Any:
    from attncli.render.cross import caption_table

    return caption_table(view)


@render.register
def _(view: GenerationView, width: int = 80, **options: Any) -> Any:
    from attncli.render.generation import generation_table

    return generation_table(view)


@render.register
def _(view: SpeechView, width: int = 80, **options: Any) -> Any:
    from attncli.render.cross import speech_table

    return speech_table(view, width)


@render.register
def _(view: StatsReport, width: int = 80, **options: Any) -> Any:
    from attncli.render.analysis import stats_table

    return stats_table(view, width)


@render.register
def _(view: EvalReport, width: int = 80, **options: Any) -> Any:
    from attncli.render.analysis import evaluate_table

    return evaluate_table(view)


@render.register
def _(view: CorpusReport, width: int = 80, **options: Any) -> Any:
    from attncli.render.corpus import corpus_table

    return corpus_table(view, width)
