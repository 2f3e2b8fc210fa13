"""Figures for the Intervene page: patching heatmaps, the DLA waterfall and head heatmap, DLA vs
patching, a token's log-probability against α, and a probe before/after steering. Titles and axis
names come from the page (already translated); the builders' own labels come from the ``figures``
catalogue through ``labels`` (:func:`llmviz.i18n.labels`; None = the default language); token strings are
HTML-escaped (plotly reads tags)."""

from __future__ import annotations

import html
import re
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve
from llmviz.interventions.sites import HEAD

MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}
_COMPONENT = re.compile(r"(attn|mlp) (\d+)")  # llmviz.interventions.dla's names: embed, attn 3, mlp 3, biases


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def position_labels(clean: Sequence[str], corrupt: Sequence[str]) -> list[str]:
    """``"3 cat→dog"`` where the prompts differ, ``"3 sat"`` where they agree (unique, escaped)."""
    return [f"{i} {_esc(a)}" if a == b else f"{i} {_esc(a)}→{_esc(b)}" for i, (a, b) in enumerate(zip(clean, corrupt))]


def patch_heatmap(
    scores: np.ndarray,
    kind: str,
    clean: Sequence[str],
    corrupt: Sequence[str],
    title: str,
    x_title: str,
    y_title: str | None = None,
    colour_title: str | None = None,
    labels: Labels | None = None,
) -> go.Figure:
    """Layer × position (or layer × head) heatmap of the normalised metric (0 = corrupted, 1 = clean)."""
    L = resolve(labels)
    y_title = L("layer") if y_title is None else y_title
    colour_title = L("restored") if colour_title is None else colour_title
    z = np.asarray(scores, dtype=float)
    x = [f"h{h}" for h in range(z.shape[1])] if kind == HEAD else position_labels(clean, corrupt)
    finite = z[np.isfinite(z)]
    lim = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=[f"L{i}" for i in range(z.shape[0])],
            zmin=-lim,
            zmax=lim,
            zmid=0,
            colorscale="RdBu_r",
            colorbar={"title": _esc(colour_title)},
            hovertemplate="%{y} · %{x}<br>%{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=_esc(title),
        xaxis_title=_esc(x_title),
        yaxis_title=_esc(y_title),
        height=max(300, 16 * z.shape[0] + 140),
        margin=MARGIN,
        yaxis={"autorange": "reversed"},
    )
    return fig


def component_name(name: str, labels: Labels | None = None) -> str:
    """A DLA component's name (``embed``, ``attn 3``, ``mlp 3``, ``biases``) in the reader's language."""
    L = resolve(labels)
    m = _COMPONENT.fullmatch(name)
    if m:
        return L(f"dla_{m.group(1)}", layer=m.group(2))
    return L.get(f"dla_{name}", name)


def dla_waterfall(
    names: Sequence[str],
    terms: np.ndarray,
    total: float,
    title: str,
    total_name: str,
    labels: Labels | None = None,
) -> go.Figure:
    """Waterfall: each component's direct contribution, ending at the (frozen-scale) logit difference.
    ``names``: llmviz.interventions.dla's component names (shown in the reader's language)."""
    L = resolve(labels)
    fig = go.Figure(
        go.Waterfall(
            x=[_esc(component_name(n, L)) for n in names] + [_esc(total_name)],
            y=[float(v) for v in terms] + [float(total)],
            measure=["relative"] * len(names) + ["total"],
            hovertemplate="%{x}: %{y:.4f}<extra></extra>",
            increasing={"marker": {"color": "rgb(214,39,40)"}},
            decreasing={"marker": {"color": "rgb(31,119,180)"}},
        )
    )
    fig.update_layout(title=_esc(title), height=380, margin=MARGIN, yaxis_title="logit")
    return fig


def head_heatmap(
    values: np.ndarray, title: str, colour_title: str = "logit", labels: Labels | None = None
) -> go.Figure:
    L = resolve(labels)
    z = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(z))) if z.size and np.isfinite(z).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"h{h}" for h in range(z.shape[1])],
            y=[f"L{i}" for i in range(z.shape[0])],
            zmin=-(lim or 1),
            zmax=lim or 1,
            zmid=0,
            colorscale="RdBu_r",
            colorbar={"title": _esc(colour_title)},
            hovertemplate="%{y} · %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=_esc(title),
        xaxis_title=L("head"),
        yaxis_title=L("layer"),
        height=max(300, 16 * z.shape[0] + 140),
        margin=MARGIN,
        yaxis={"autorange": "reversed"},
    )
    return fig


def dla_vs_patching(
    dla_heads: np.ndarray,
    patch_heads: np.ndarray,
    title: str,
    x_title: str,
    y_title: str,
    labels: Labels | None = None,
) -> go.Figure:
    """Scatter: one point per head, DLA (x) against the patching metric (y)."""
    L = resolve(labels)
    n_layers, n_heads = dla_heads.shape
    heads = [f"L{layer}.h{h}" for layer in range(n_layers) for h in range(n_heads)]
    fig = go.Figure(
        go.Scatter(
            x=dla_heads.ravel(),
            y=np.asarray(patch_heads).ravel(),
            mode="markers",
            text=heads,
            hovertemplate=L("dla_hover"),
        )
    )
    fig.update_layout(
        title=_esc(title), xaxis_title=_esc(x_title), yaxis_title=_esc(y_title), height=360, margin=MARGIN
    )
    return fig


def alpha_curve(
    alphas: np.ndarray,
    tokens: Sequence[str],
    logprobs: np.ndarray,
    title: str,
    x_title: str = "α",
    y_title: str = "log p",
    labels: Labels | None = None,
) -> go.Figure:
    """log p of each token against α; every word is the caller's (``labels``: a uniform signature)."""
    fig = go.Figure()
    for j, tok in enumerate(tokens):
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=logprobs[:, j],
                mode="lines+markers",
                name=_esc(repr(tok)),
                hovertemplate="α %{x}<br>log p %{y:.3f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=_esc(title), xaxis_title=_esc(x_title), yaxis_title=_esc(y_title), height=360, margin=MARGIN
    )
    return fig


def probe_before_after(
    before: dict, after: dict, names: tuple[str, str], title: str, y_title: str, labels: Labels | None = None
) -> go.Figure:
    """Two bars with 95 % CI error bars; ``names`` of the bars, title and axis are the caller's (translated)."""
    vals = [before["value"], after["value"]]
    lo = [v - c[0] if c[0] is not None else 0 for v, c in zip(vals, (before["ci95"], after["ci95"]))]
    hi = [c[1] - v if c[1] is not None else 0 for v, c in zip(vals, (before["ci95"], after["ci95"]))]
    fig = go.Figure(
        go.Bar(
            x=[_esc(name) for name in names],
            y=vals,
            error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(title=_esc(title), yaxis_title=_esc(y_title), height=340, margin=MARGIN)
    return fig
