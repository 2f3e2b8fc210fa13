"""Plotly figures and export tables for the positional-encoding lab. Builders return ``go.Figure`` / DataFrames.

Token strings are HTML-escaped (plotly renders tick text as HTML) and prefixed with their index so that equal
tokens stay separate categories. Every label a reader sees comes from the ``figures`` catalogue through
``labels`` (:func:`llmviz.i18n.labels`; None = the default language); ``title``/axis arguments are already
in the reader's language.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.i18n import Labels, resolve
from llmviz.positional.ablation import RUNS, CausalAblation, EncoderAblation, reorder_attention
from llmviz.positional.encodings import DistanceSimilarity, RopeDecay, ShiftMap, SinusoidalPE
from llmviz.positional.model import LearnedAnalysis

MAX_HEATMAP_CELLS = 300_000  # larger matrices are shown with a stride (exports keep every value)
RUN_LABELS = {  # English names of the ablation runs in exports (figures: the catalogue's run_* keys)
    "with_a": "positions · original",
    "with_b": "positions · shuffled",
    "without_a": "no positions · original",
    "without_b": "no positions · shuffled",
}
RUN_COLORS = {"with_a": "#1f77b4", "with_b": "#aec7e8", "without_a": "#d62728", "without_b": "#ff9896"}


def token_labels(tokens: Sequence[str]) -> list[str]:
    return [f"{i}:{html.escape(str(t), quote=True) or '␣'}" for i, t in enumerate(tokens)]


def _stride(n_rows: int, n_cols: int) -> int:
    return max(1, int(np.ceil(np.sqrt(n_rows * n_cols / MAX_HEATMAP_CELLS))))


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=50, b=40))
    return fig


# ------------------------------------------------------------------ sinusoidal
DEFAULT_WAVES = 4  # curves drawn by default: all d_model of them (128) are an unreadable tangle
MAX_WAVES = 16  # the "number of curves" control goes up to this; any dimension can still be picked by hand
MAX_STACKED = 8  # up to this many curves get a row each


def readable_dims(pe: SinusoidalPE, n: int = DEFAULT_WAVES) -> list[int]:
    """``n`` sine dimensions (2i) whose wavelengths are spread evenly on a log scale from the fastest pair to
    the slowest one that still visibly bends over the plotted positions (``4 · max_len``), so each curve is
    told apart from the next. With d_model = 128, 100 positions: dims 0, 20, 38, 58 (λ ≈ 6, 26, 95, 410)."""
    lam = np.asarray(pe.wavelengths, dtype=float)  # [pairs], increasing
    n = max(1, min(int(n), lam.size))
    top = min(lam[-1], max(lam[0], 4.0 * pe.max_len))
    targets = np.geomspace(lam[0], top, n) if n > 1 else lam[:1]
    pairs: list[int] = []
    for target in targets:  # nearest pair on a log scale that is not taken yet
        for i in np.argsort(np.abs(np.log(lam) - np.log(target))):
            if int(i) not in pairs:
                pairs.append(int(i))
                break
    return sorted(2 * i for i in pairs)


def waves(pe: SinusoidalPE, dims: Sequence[int], labels: Labels | None = None) -> go.Figure:
    """PE[:, d] against position for each selected dimension d. Up to :data:`MAX_STACKED` curves get a row
    each on a shared position axis (two fast waves on one axis cover each other); more share one axis."""
    L = resolve(labels)
    dims = list(dims)
    pos = np.arange(pe.max_len)
    n = len(dims)
    stacked = 1 < n <= MAX_STACKED
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.2 / n) if stacked else go.Figure()
    for k, d in enumerate(dims):
        kind = "sin" if d % 2 == 0 else "cos"
        trace = go.Scatter(
            x=pos,
            y=pe.matrix[:, d],
            mode="lines+markers" if pe.max_len <= 40 else "lines",
            name=L("wave_name", dim=d, kind=kind, wavelength=f"{pe.wavelengths[d // 2]:.3g}"),
        )
        if stacked:
            fig.add_trace(trace, row=k + 1, col=1)
            fig.update_yaxes(title=L("dim_n", dim=d), range=[-1.1, 1.1], tickvals=[-1, 0, 1], row=k + 1, col=1)
        else:
            fig.add_trace(trace)
    if stacked:
        fig.update_xaxes(title=L("position"), row=n, col=1)
        return _layout(fig, L("waves_title"), max(420, 110 + 90 * n))
    fig.update_xaxes(title=L("position"))
    fig.update_yaxes(title=L("pe_value"), range=[-1.1, 1.1])
    return _layout(fig, L("waves_title"))


def heatmap(
    matrix: np.ndarray,
    title: str,
    x_title: str,
    y_title: str,
    zmid: float | None = 0.0,
    colorscale: str = "RdBu_r",
    labels: Labels | None = None,
) -> go.Figure:
    """Any [rows, cols] matrix; big ones are strided (the title says so). Titles in the reader's language."""
    L = resolve(labels)
    s = _stride(*matrix.shape)
    rows, cols = np.arange(0, matrix.shape[0], s), np.arange(0, matrix.shape[1], s)
    fig = go.Figure(go.Heatmap(z=matrix[::s, ::s], x=cols, y=rows, colorscale=colorscale, zmid=zmid))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, autorange="reversed")
    return _layout(fig, L("strided_title", title=title, step=s) if s > 1 else title, 480)


def pe_heatmap(pe: SinusoidalPE, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    title = L("pe_matrix_title", positions=pe.max_len, dims=pe.d_model)
    return heatmap(pe.matrix, title, L("dimension"), L("position"), labels=L)


def distance_curves(ds: DistanceSimilarity, refs: Sequence[int], labels: Labels | None = None) -> go.Figure:
    """sim(PE(p), PE(p + d)) against d for a few start positions p: the curves coincide."""
    L = resolve(labels)
    fig = go.Figure()
    n = ds.matrix.shape[0]
    for p in refs:
        d = np.arange(0, n - p)
        fig.add_trace(go.Scatter(x=d, y=ds.matrix[p, p:], mode="lines", name=L("start_p", p=p)))
    fig.add_trace(
        go.Scatter(x=ds.distances, y=ds.mean, mode="lines", name=L("mean_over_p"), line=dict(dash="dot", color="black"))
    )
    fig.update_xaxes(title=L("distance_d"))
    fig.update_yaxes(title=L(f"similarity_{ds.metric}"))
    return _layout(fig, L(f"distance_title_{ds.metric}"))


def shift_map_figure(sm: ShiftMap, max_dims: int = 32, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    n = min(max_dims, sm.matrix.shape[0])
    fig = go.Figure(go.Heatmap(z=sm.matrix[:n, :n], colorscale="RdBu_r", zmid=0, zmin=-1, zmax=1))
    fig.update_xaxes(title=L("shift_in"))
    fig.update_yaxes(title=L("shift_out"), autorange="reversed")
    return _layout(fig, L("shift_title", k=sm.k, n=n), 440)


# ------------------------------------------------------------------ learned
def pca_trajectory(
    an: LearnedAnalysis, dims: int = 2, limit: int | None = None, labels: Labels | None = None
) -> go.Figure:
    """Positions as points on the top principal axes, joined in order and coloured by position."""
    L = resolve(labels)
    c = an.pca[:limit]
    pos = np.arange(c.shape[0])
    marker = dict(color=pos, colorscale="Viridis", size=4 if dims == 3 else 6, colorbar=dict(title=L("position")))
    ev = [L("pc_axis", n=i + 1, share=f"{an.explained[i]:.0%}") for i in range(an.explained.size)]
    if dims == 3 and c.shape[1] >= 3:
        fig = go.Figure(
            go.Scatter3d(
                x=c[:, 0],
                y=c[:, 1],
                z=c[:, 2],
                mode="lines+markers",
                marker=marker,
                line=dict(color="lightgray"),
                text=[L("position_n", position=p) for p in pos],
            )
        )
        fig.update_layout(scene=dict(xaxis_title=ev[0], yaxis_title=ev[1], zaxis_title=ev[2]))
    else:
        fig = go.Figure(
            go.Scatter(
                x=c[:, 0],
                y=c[:, 1],
                mode="lines+markers",
                marker=marker,
                line=dict(color="lightgray"),
                text=[L("position_n", position=p) for p in pos],
            )
        )
        fig.update_xaxes(title=ev[0])
        fig.update_yaxes(title=ev[1] if len(ev) > 1 else "")
    return _layout(fig, L("pca_title", model=an.positions.model_id), 520)


def spectrum(an: LearnedAnalysis, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=an.freq[1:], y=an.power_learned[1:], name=L("learned_model", model=an.positions.model_id))
    )
    fig.add_trace(go.Scatter(x=an.freq[1:], y=an.power_sinusoidal[1:], name=L("sinusoidal_same")))
    fig.update_xaxes(title=L("frequency_axis"), type="log")
    fig.update_yaxes(title=L("power_share"), type="log")
    return _layout(fig, L("spectrum_title"))


def dominant_histogram(an: LearnedAnalysis, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    fig = go.Figure()
    bins = np.log10(an.freq[1:])
    for name, dom in ((L("learned"), an.dominant_learned), (L("sinusoidal"), an.dominant_sinusoidal)):
        fig.add_trace(
            go.Histogram(
                x=np.log10(np.maximum(dom, an.freq[1])),
                name=name,
                opacity=0.6,
                xbins=dict(start=bins[0] - 0.05, end=bins[-1] + 0.05, size=0.1),
            )
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title=L("dominant_axis"))
    fig.update_yaxes(title=L("dimensions"))
    return _layout(fig, L("dominant_title"), 360)


# ------------------------------------------------------------------ RoPE
def rope_angle_heatmap(angles: np.ndarray, labels: Labels | None = None) -> go.Figure:
    """Angles [P, pairs] shown modulo 2π with a cyclic colour scale."""
    L = resolve(labels)
    return heatmap(
        np.mod(angles, 2 * np.pi),
        L("rope_angle_title"),
        L("pair_j"),
        L("position_m"),
        zmid=None,
        colorscale="Twilight",
        labels=L,
    )


def rope_angle_lines(
    positions: np.ndarray, angles: np.ndarray, pairs: Sequence[int], labels: Labels | None = None
) -> go.Figure:
    L = resolve(labels)
    fig = go.Figure()
    for j in pairs:
        fig.add_trace(go.Scatter(x=positions, y=angles[:, j], name=L("pair_n", pair=j), mode="lines"))
    fig.update_xaxes(title=L("position_m"))
    fig.update_yaxes(title=L("total_angle"), type="log")
    return _layout(fig, L("rope_lines_title"), 380)


def rope_rotation(points: np.ndarray, positions: Sequence[int], pair: int, labels: Labels | None = None) -> go.Figure:
    """The 2-D slice (q_j, q_{j+d/2}) of a query at each position [P, 2]: same length, turned by m·θ_j."""
    L = resolve(labels)
    fig = go.Figure()
    r = float(np.linalg.norm(points[0])) or 1.0
    t = np.linspace(0, 2 * np.pi, 200)
    fig.add_trace(
        go.Scatter(
            x=r * np.cos(t),
            y=r * np.sin(t),
            mode="lines",
            line=dict(color="lightgray"),
            showlegend=False,
            hoverinfo="skip",
        )
    )
    colors = np.linspace(0, 1, len(positions))
    for (x, y), m, c in zip(points, positions, colors):
        fig.add_trace(
            go.Scatter(
                x=[0, x],
                y=[0, y],
                mode="lines+markers+text",
                text=["", f"m={m}"],
                textposition="top center",
                name=L("position_n", position=m),
                line=dict(color=f"rgba({int(255 * c)},{int(80 + 100 * (1 - c))},200,0.9)"),
            )
        )
    fig.update_xaxes(title=f"q[{pair}]", scaleanchor="y", range=[-1.3 * r, 1.3 * r])
    fig.update_yaxes(title=f"q[{pair} + d/2]", range=[-1.3 * r, 1.3 * r])
    return _layout(fig, L("rope_rotation_title", pair=pair), 480)


def rope_decay_figure(decay: RopeDecay, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=decay.distances, y=decay.bound / decay.bound[0], name=L("decay_bound")))
    fig.add_trace(go.Scatter(x=decay.distances, y=decay.ones_score, name=L("decay_ones"), opacity=0.6))
    fig.update_xaxes(title=L("relative_distance"))
    fig.update_yaxes(title=L("relative_score"))
    return _layout(fig, L("decay_title"))


# ------------------------------------------------------------------ ablation
def layer_cosine(res: EncoderAblation, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    layers = np.arange(res.layer_cos_with.size)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=layers, y=res.layer_cos_with, name=L("with_positions"), mode="lines+markers"))
    fig.add_trace(go.Scatter(x=layers, y=res.layer_cos_without, name=L("without_positions"), mode="lines+markers"))
    fig.update_xaxes(title=L("layer_embeddings"), dtick=1)
    fig.update_yaxes(title=L("cosine_shuffled"))
    return _layout(fig, L("layer_cosine_title"), 380)


def attention_pair(res: EncoderAblation, layer: int, head: int, labels: Labels | None = None) -> go.Figure:
    """Original attention and the shuffle's attention put back in the original order, with and without positions."""
    L = resolve(labels)
    ticks = token_labels(res.shuffle.tokens_a)
    titles = [L("run_with_a"), L("run_with_b_reordered"), L("run_without_a"), L("run_without_b_reordered")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.12, vertical_spacing=0.14)
    for i, w in enumerate(("with", "without")):
        a = res.attention[f"{w}_a"][layer, head]
        b = reorder_attention(res.attention[f"{w}_b"], res.shuffle.order)[layer, head]
        for j, m in enumerate((a, b)):
            fig.add_trace(
                go.Heatmap(z=m, x=ticks, y=ticks, colorscale="Blues", zmin=0, zmax=1, showscale=(i == 0 and j == 1)),
                row=i + 1,
                col=j + 1,
            )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-60)
    return _layout(fig, L("attention_pair_title", layer=layer, head=head), 820)


def next_token_bars(res: CausalAblation, tokenizer, k: int = 6, labels: Labels | None = None) -> go.Figure:
    L = resolve(labels)
    rows = res.top_table(tokenizer, k)
    ticks = [html.escape(r["token"]) for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                x=ticks,
                y=[r[run] for r in rows],
                name=L(f"rope_run_{run}"),
                marker_color=RUN_COLORS[run],
            )
            for run in RUNS
        ]
    )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=L("next_token_probability"))
    return _layout(fig, L("next_token_title"))


# ------------------------------------------------------------------ export tables
def matrix_frame(matrix: np.ndarray, row_name: str, col_prefix: str) -> pd.DataFrame:
    df = pd.DataFrame(matrix, columns=[f"{col_prefix}{j}" for j in range(matrix.shape[1])])
    df.insert(0, row_name, np.arange(matrix.shape[0]))
    return df


def distance_frame(ds: DistanceSimilarity) -> pd.DataFrame:
    return pd.DataFrame({"distance": ds.distances, f"mean_{ds.metric}": ds.mean, "spread_over_p": ds.spread})


def encoder_frame(res: EncoderAblation) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": np.arange(res.layer_cos_with.size),
            "cosine_with_positions": res.layer_cos_with,
            "cosine_without_positions": res.layer_cos_without,
        }
    )
