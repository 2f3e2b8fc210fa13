"""Plotly figures for the attention explorer. Every builder returns a ``go.Figure``.

Token labels go through :func:`axis_labels`: plotly merges equal category names, so axes are integer
positions with the (HTML-escaped) token text as tick labels. Every label a reader sees comes from the
``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`; None = the default language).
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.attention.extract import STATISTICS
from llmviz.i18n import Labels, resolve

SEQUENTIAL = "Blues"
DIVERGING = "RdBu_r"
MAX_LABELED_TOKENS = 80  # beyond this, tick labels are thinned so they stay readable
MAX_HOVER_TOKENS = 96  # token text in hover needs T x T strings; above this hover shows positions only


def axis_labels(tokens: Sequence[str]) -> list[str]:
    """Escaped tick labels; plotly renders tick text as HTML, so ``<img ...>`` must become text."""
    return [html.escape(str(t), quote=True) or "␣" for t in tokens]


def _ticks(n: int) -> list[int]:
    step = max(1, math.ceil(n / MAX_LABELED_TOKENS))
    return list(range(0, n, step))


def _token_axes(
    fig: go.Figure, tokens_x: Sequence[str], tokens_y: Sequence[str], row=None, col=None, show: bool = True
) -> None:
    lx, ly = axis_labels(tokens_x), axis_labels(tokens_y)
    tx, ty = _ticks(len(lx)), _ticks(len(ly))
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(
        tickvals=tx, ticktext=[lx[i] for i in tx] if show else None, showticklabels=show, tickangle=-60, **kw
    )
    fig.update_yaxes(
        tickvals=ty, ticktext=[ly[i] for i in ty] if show else None, showticklabels=show, autorange="reversed", **kw
    )


def _hover_grid(tokens_y: Sequence[str], tokens_x: Sequence[str]) -> np.ndarray:
    """[len(y), len(x), 2] array of escaped (query, key) strings for hover text."""
    ly, lx = axis_labels(tokens_y), axis_labels(tokens_x)
    grid = np.empty((len(ly), len(lx), 2), dtype=object)
    for i, q in enumerate(ly):
        for j, k in enumerate(lx):
            grid[i, j, 0], grid[i, j, 1] = q, k
    return grid


def attention_heatmap(
    tokens: Sequence[str],
    matrix: np.ndarray,
    title: str,
    zmax: float | None = None,
    colorbar_title: str | None = None,
    labels: Labels | None = None,
) -> go.Figure:
    """One [T, T] matrix (rows = queries, columns = keys) with token labels; ``title`` in the reader's
    language (e.g. ``L("layer_head_title", layer=2, head=0)``)."""
    L = resolve(labels)
    m = np.asarray(matrix, dtype=np.float32)  # float32 travels as compact base64 to the browser
    rich = len(tokens) <= MAX_HOVER_TOKENS
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=list(range(m.shape[1])),
            y=list(range(m.shape[0])),
            colorscale=SEQUENTIAL,
            zmin=0,
            zmax=zmax if zmax is not None else (float(np.nanmax(m)) if m.size else 1.0),
            customdata=_hover_grid(tokens, tokens) if rich else None,
            colorbar={"title": colorbar_title if colorbar_title is not None else L("weight")},
            hovertemplate=L("att_hover") if rich else L("att_hover_plain"),
        )
    )
    _token_axes(fig, tokens, tokens)
    side = min(900, 220 + 14 * len(tokens))
    fig.update_layout(
        title=html.escape(title),
        height=side + 80,
        xaxis_title=L("key_attended"),
        yaxis_title=L("query_attending"),
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig


def layer_small_multiples(
    tokens: Sequence[str], layer_attention: np.ndarray, layer: int, cols: int = 4, labels: Labels | None = None
) -> go.Figure:
    """All heads of one layer: ``layer_attention`` [heads, T, T] as a grid of heatmaps on one scale."""
    L = resolve(labels)
    att = np.asarray(layer_attention, dtype=np.float32)
    n = att.shape[0]
    rows = math.ceil(n / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[L("heads_subplot", head=h) for h in range(n)],
        horizontal_spacing=0.03,
        vertical_spacing=0.06,
    )
    show_labels = len(tokens) <= 24
    rich = len(tokens) <= MAX_HOVER_TOKENS // 2  # every head carries its own hover strings
    hover = _hover_grid(tokens, tokens) if rich else None
    for h in range(n):
        r, c = h // cols + 1, h % cols + 1
        fig.add_trace(
            go.Heatmap(
                z=att[h],
                coloraxis="coloraxis",
                customdata=hover,
                hovertemplate=L("heads_hover" if rich else "heads_hover_plain", head=h),
            ),
            row=r,
            col=c,
        )
        _token_axes(fig, tokens, tokens, row=r, col=c, show=show_labels and c == 1)
        if show_labels:
            fig.update_xaxes(showticklabels=r == rows, row=r, col=c)
    fig.update_layout(
        title=L("heads_title", layer=layer),
        coloraxis={"colorscale": SEQUENTIAL, "cmin": 0, "cmax": 1},
        height=260 * rows + 80,
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
    )
    return fig


def rollout_heatmap(tokens: Sequence[str], rolled: np.ndarray, labels: Labels | None = None) -> go.Figure:
    """Rollout matrix [T, T]: row i = how much output position i draws on each input token."""
    L = resolve(labels)
    fig = attention_heatmap(tokens, rolled, L("rollout_title"), colorbar_title=L("rollout_bar"), labels=L)
    fig.update_layout(yaxis_title=L("output_position"), xaxis_title=L("input_token"))
    return fig


def statistic_heatmap(
    values: np.ndarray, name: str, selected: tuple[int, int] | None = None, labels: Labels | None = None
) -> go.Figure:
    """An L x H heatmap of one head statistic (``name``: a key of STATISTICS). Clicking a cell selects
    that head: an invisible scatter marker sits on every cell so Streamlit's point selection reports
    (head, layer)."""
    L = resolve(labels)
    short = L.get(f"stat_bar_{name}", name)
    v = np.asarray(values, dtype=float)
    n_layers, n_heads = v.shape
    fig = go.Figure(
        go.Heatmap(
            z=v,
            x=list(range(n_heads)),
            y=list(range(n_layers)),
            colorscale="Viridis",
            colorbar={"title": short},
            hoverinfo="skip",
        )
    )
    hh, ll = np.meshgrid(np.arange(n_heads), np.arange(n_layers))
    fig.add_trace(
        go.Scatter(
            x=hh.ravel(),
            y=ll.ravel(),
            mode="markers",
            name=L("heads"),
            showlegend=False,
            marker={
                "size": max(6, min(30, 500 // max(n_heads, n_layers))),
                "opacity": 0.01,
                "color": "white",
                "symbol": "square",
            },
            customdata=v.ravel(),
            hovertemplate=L("stat_hover", stat=short),
        )
    )
    if selected is not None:
        fig.add_shape(
            type="rect",
            x0=selected[1] - 0.5,
            x1=selected[1] + 0.5,
            y0=selected[0] - 0.5,
            y1=selected[0] + 0.5,
            line={"color": "red", "width": 3},
        )
    fig.update_layout(
        title=L.get(f"stat_{name}", name),
        xaxis_title=L("head"),
        yaxis_title=L("layer"),
        yaxis={"range": [n_layers - 0.5, -0.5], "dtick": 1 if n_layers <= 32 else None},
        xaxis={"range": [-0.5, n_heads - 0.5], "dtick": 1 if n_heads <= 32 else None},
        height=max(340, 24 * n_layers + 160),
        clickmode="event+select",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
    )
    return fig


def matrix_heatmap(
    matrix: np.ndarray,
    title: str,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    signed: bool | None = None,
    height: int | None = None,
    labels: Labels | None = None,
) -> go.Figure:
    """A labelled matrix for the step-by-step formula (X, W_Q, Q, scores, ...); ``title`` in the
    reader's language.

    Signed data use a diverging scale centred on 0; ``-inf`` (masked) cells are drawn blank.
    """
    L = resolve(labels)
    m = np.asarray(matrix, dtype=float)
    if m.ndim == 1:
        m = m[None, :]
    finite = m[np.isfinite(m)]
    signed = bool(finite.size and finite.min() < 0) if signed is None else signed
    z = np.where(np.isfinite(m), m, np.nan).astype(np.float32)
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    trace = go.Heatmap(
        z=z,
        x=list(range(m.shape[1])),
        y=list(range(m.shape[0])),
        colorscale=DIVERGING if signed else SEQUENTIAL,
        zmin=-bound if signed else None,
        zmax=bound if signed else None,
        hovertemplate=L("matrix_hover"),
    )
    fig = go.Figure(trace)
    rows = axis_labels(row_labels) if row_labels is not None else None
    cols = axis_labels(col_labels) if col_labels is not None else None
    if rows is not None:
        t = _ticks(len(rows))
        fig.update_yaxes(tickvals=t, ticktext=[rows[i] for i in t])
    if cols is not None:
        t = _ticks(len(cols))
        fig.update_xaxes(tickvals=t, ticktext=[cols[i] for i in t], tickangle=-60)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title=html.escape(title) + f"  <sub>[{m.shape[0]} × {m.shape[1]}]</sub>",
        height=height or min(520, max(200, 16 * m.shape[0] + 140)),
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return fig


def neuron_figure(
    tokens: Sequence[str],
    products: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    query_token: str,
    labels: Labels | None = None,
) -> go.Figure:
    """Neuron view: q∘k per dimension ([T, d_k] heatmap, one row per key) beside the summed scores
    and the softmax weights for the selected query."""
    L = resolve(labels)
    p = np.asarray(products, dtype=float)
    bound = float(np.abs(p).max()) or 1.0
    ticks = axis_labels(tokens)
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.7, 0.15, 0.15],
        shared_yaxes=True,
        subplot_titles=[L("neuron_products"), L("neuron_score"), L("neuron_weight")],
        horizontal_spacing=0.02,
    )
    fig.add_trace(
        go.Heatmap(
            z=p,
            colorscale=DIVERGING,
            zmin=-bound,
            zmax=bound,
            colorbar={"x": 1.02, "len": 0.9},
            hovertemplate=L("neuron_hover"),
        ),
        1,
        1,
    )
    finite = np.where(np.isfinite(scores), scores, np.nan)
    ys = list(range(len(tokens)))
    fig.add_trace(
        go.Bar(
            x=finite,
            y=ys,
            orientation="h",
            marker_color="#4477aa",
            name=L("score"),
            hovertemplate=L("neuron_score_hover"),
        ),
        1,
        2,
    )
    fig.add_trace(
        go.Bar(
            x=weights,
            y=ys,
            orientation="h",
            marker_color="#228833",
            name=L("weight"),
            hovertemplate=L("neuron_weight_hover"),
        ),
        1,
        3,
    )
    t = _ticks(len(ticks))
    fig.update_yaxes(tickvals=t, ticktext=[ticks[i] for i in t], autorange="reversed", row=1, col=1)
    fig.update_layout(
        title=L("neuron_title", token=html.escape(query_token)),
        height=min(900, 200 + 18 * len(tokens)),
        showlegend=False,
        margin={"l": 100, "r": 20, "t": 70, "b": 40},
    )
    return fig


def statistic_help() -> dict[str, str]:
    return dict(STATISTICS)
