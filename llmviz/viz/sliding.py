"""Marks for sliding-window attention (Gemma 3): the window boundary on a [T, T] attention heatmap and
local / global labels on the layer axis of an L x H head-statistic heatmap."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve

BOUNDARY_COLOR = "#d62728"


def window_boundary_path(n_tokens: int, window: int) -> str | None:
    """SVG path of the staircase left of which keys are out of the window: query row i sees keys
    j with i - window < j <= i, so the boundary runs at x = i - window + 0.5 for rows i >= window."""
    t, w = int(n_tokens), int(window)
    if w <= 0 or t <= w:
        return None
    pts = []
    for i in range(w, t):
        x = i - w + 0.5
        pts += [(x, i - 0.5), (x, i + 0.5)]
    return "M " + " L ".join(f"{x:g},{y:g}" for x, y in pts)


def mark_window(
    fig: go.Figure,
    n_tokens: int,
    window: int | None,
    row: int | None = None,
    col: int | None = None,
    labels: Labels | None = None,
) -> go.Figure:
    """Draw the sliding-window boundary (dashed) on an attention heatmap; nothing when the text fits the window."""
    L = resolve(labels)
    path = window_boundary_path(n_tokens, window) if window else None
    if path is not None:
        kw = {"row": row, "col": col} if row is not None else {}
        fig.add_shape(type="path", path=path, line={"color": BOUNDARY_COLOR, "width": 2, "dash": "dash"}, **kw)
        if row is None:
            fig.add_annotation(
                x=0,
                y=int(window) - 0.5,
                text=L("window_mark", window=int(window)),
                showarrow=False,
                xanchor="left",
                yanchor="top",
                font={"color": BOUNDARY_COLOR},
            )
    return fig


def mark_sliding_layers(
    fig: go.Figure, layer_types: Sequence[str], window: int | None, labels: Labels | None = None
) -> go.Figure:
    """Label every layer of an L x H heatmap as local (sliding window W) or global."""
    if not layer_types:
        return fig
    L = resolve(labels)
    text = [
        L("layer_local", layer=i, window=window) if lt == "sliding_attention" else L("layer_global", layer=i)
        for i, lt in enumerate(layer_types)
    ]
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(layer_types))), ticktext=text)
    for i, lt in enumerate(layer_types):
        if lt != "sliding_attention":
            fig.add_hline(y=i, line={"color": BOUNDARY_COLOR, "width": 1, "dash": "dot"})
    fig.update_layout(margin={"l": 110})
    return fig
