"""Figure labels in the user's language, without streamlit: ``translate_figure(fig, phrases)``
rewrites every text a reader sees in a plotly figure — title, axis and legend titles, trace
names, hover templates, colour-bar titles, annotations, tick labels given as text — replacing
English phrases by their translation (longest phrase first, whole words only). Pages pass the
``figures`` catalogue of the active language (ui.common.plot and export_buttons do it for every
figure), so the builders in llmviz.viz keep one set of English labels and the Chinese page shows
Chinese figures. Placeholders such as ``%{y}`` and numbers are left as they are."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Mapping


@lru_cache(maxsize=8)
def _pattern(keys: tuple[str, ...]) -> re.Pattern | None:
    if not keys:
        return None
    alts = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])(?:{alts})(?![A-Za-z])")


def translate_text(text, phrases: Mapping[str, str]):
    """``text`` with every known phrase replaced; non-strings come back unchanged."""
    if not isinstance(text, str) or not text or not phrases:
        return text
    pat = _pattern(tuple(phrases))
    return pat.sub(lambda m: phrases[m.group(0)], text) if pat else text


def _fix(holder, attr: str, phrases) -> None:
    try:
        value = getattr(holder, attr)
    except (AttributeError, ValueError):
        return
    if isinstance(value, str):
        new = translate_text(value, phrases)
        if new != value:
            setattr(holder, attr, new)


def translate_figure(fig, phrases: Mapping[str, str]):
    """A copy of ``fig`` with its labels translated (``fig`` itself is untouched)."""
    if not phrases:
        return fig
    import plotly.graph_objects as go

    fig = go.Figure(fig)
    lay = fig.layout
    if lay.title is not None:
        _fix(lay.title, "text", phrases)
    if lay.legend is not None and lay.legend.title is not None:
        _fix(lay.legend.title, "text", phrases)
    for name in [k for k in lay.to_plotly_json() if k.startswith(("xaxis", "yaxis", "scene"))]:
        axis = lay[name]
        if getattr(axis, "title", None) is not None:
            _fix(axis.title, "text", phrases)
        if getattr(axis, "ticktext", None) is not None:
            axis.ticktext = [translate_text(t, phrases) for t in axis.ticktext]
    if lay.coloraxis is not None and lay.coloraxis.colorbar is not None and lay.coloraxis.colorbar.title is not None:
        _fix(lay.coloraxis.colorbar.title, "text", phrases)
    if lay.annotations:
        for ann in lay.annotations:
            _fix(ann, "text", phrases)
    for trace in fig.data:
        for attr in ("name", "hovertemplate", "legendgrouptitle"):
            if attr == "legendgrouptitle":
                lg = getattr(trace, "legendgrouptitle", None)
                if lg is not None:
                    _fix(lg, "text", phrases)
            elif attr in trace:
                _fix(trace, attr, phrases)
        for holder in (getattr(trace, "colorbar", None), getattr(getattr(trace, "marker", None), "colorbar", None)):
            if holder is not None and getattr(holder, "title", None) is not None:
                _fix(holder.title, "text", phrases)
    return fig
