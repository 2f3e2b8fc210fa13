"""Figures for the training lab's translator (plotly; returned, never shown). Every label comes from the
``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`); tokens are escaped by
:func:`llmviz.viz.attention.axis_labels` (plotly renders tick text as HTML).

Cross-attention matrices are [target words, source words]: row t is the decoding step that produced
target word t, so a head that aligns shows one bright cell per row on the reference word (marked ``□``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.i18n import Labels, resolve
from llmviz.viz.attention import SEQUENTIAL, axis_labels

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def quality_curves(history, labels: Labels | None = None) -> go.Figure:
    """Held-out exact match, BLEU / 100 and the best head's alignment accuracy per evaluation.

    ``history``: a ``llmviz.train.translator.TranslatorHistory``."""
    L = resolve(labels)
    fig = go.Figure()
    best = [float(np.max(a)) for a in history.align_acc]
    for name, ys, color in (
        (L("tr_exact_match"), history.exact_match, COLORS[0]),
        (L("tr_bleu"), [b / 100 for b in history.bleu], COLORS[2]),
        (L("tr_best_alignment"), best, COLORS[1]),
    ):
        fig.add_scatter(x=history.step, y=ys, mode="lines+markers", name=name, line={"color": color})
    fig.update_layout(
        title=L("tr_quality_title"),
        xaxis_title=L("training_step"),
        yaxis={"title": L("tr_share"), "range": [0, 1.02], "tickformat": ".0%"},
        height=360,
        margin={"t": 50, "b": 40, "l": 60, "r": 20},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(range=[0, max(history.total_steps, 1)])
    return fig


def alignment_by_head(history, chance: float, labels: Labels | None = None) -> go.Figure:
    """Every cross-attention head's alignment accuracy over training (one line each) and the chance level."""
    L = resolve(labels)
    acc = np.stack(history.align_acc)  # [evals, layers, heads]
    fig = go.Figure()
    n_heads = acc.shape[2]
    for layer in range(acc.shape[1]):
        for head in range(n_heads):
            fig.add_scatter(
                x=history.step,
                y=acc[:, layer, head],
                mode="lines",
                name=L("tr_layer_head", layer=layer, head=head),
                line={"color": COLORS[head % len(COLORS)], "dash": "solid" if layer % 2 else "dot"},
            )
    fig.add_hline(y=chance, line_dash="dash", line_color="#7f7f7f", annotation_text=L("tr_chance", p=f"{chance:.0%}"))
    fig.update_layout(
        title=L("tr_align_title"),
        xaxis_title=L("training_step"),
        yaxis={"title": L("tr_align_axis"), "range": [0, 1.02], "tickformat": ".0%"},
        height=380,
        margin={"t": 50, "b": 40, "l": 60, "r": 20},
    )
    fig.update_xaxes(range=[0, max(history.total_steps, 1)])
    return fig


def _reference_marks(alignment: Sequence[Sequence[int]], name: str) -> go.Scatter:
    xs = [j for row in alignment for j in row]
    ys = [i for i, row in enumerate(alignment) for _ in row]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        name=name,
        marker={"symbol": "square-open", "size": 22, "color": "#d62728", "line": {"width": 2}},
        hoverinfo="skip",
    )


def _axes(fig: go.Figure, src: Sequence[str], tgt: Sequence[str], L, **kw) -> None:
    fig.update_xaxes(tickvals=list(range(len(src))), ticktext=axis_labels(src), tickangle=-45, **kw)
    fig.update_yaxes(tickvals=list(range(len(tgt))), ticktext=axis_labels(tgt), autorange="reversed", **kw)


def cross_attention_animation(
    src: Sequence[str],
    tgt: Sequence[str],
    frames: Sequence[np.ndarray],
    steps: Sequence[int],
    alignment: Sequence[Sequence[int]] | None,
    title: str,
    labels: Labels | None = None,
) -> go.Figure:
    """One head's cross-attention [T, S] at each evaluation, animated (play button and a step slider);
    reference alignment cells marked. ``frames``: [T, S] per evaluation, ``steps``: their training steps."""
    L = resolve(labels)
    frames = [np.asarray(f, dtype=np.float32) for f in frames]
    hover = L("tr_cross_hover")
    ht = np.array([[(t, s) for s in axis_labels(src)] for t in axis_labels(tgt)], dtype=object)

    def heat(z):
        return go.Heatmap(z=z, zmin=0, zmax=1, colorscale=SEQUENTIAL, customdata=ht, hovertemplate=hover)

    data = [heat(frames[-1])] + ([_reference_marks(alignment, L("tr_reference"))] if alignment else [])
    fig = go.Figure(data=data)
    fig.frames = [go.Frame(data=[heat(z)], traces=[0], name=str(s)) for z, s in zip(frames, steps)]
    slider_steps = [
        {
            "args": [[str(s)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
            "label": str(s),
            "method": "animate",
        }
        for s in steps
    ]
    fig.update_layout(
        title=title,
        xaxis_title=L("tr_source_word"),
        yaxis_title=L("tr_target_word"),
        height=300 + 34 * len(tgt),
        margin={"t": 60, "b": 120, "l": 80, "r": 20},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right"},
        sliders=[
            {
                "active": len(steps) - 1,
                "steps": slider_steps,
                "currentvalue": {"prefix": L("tr_slider_step")},
                "x": 0.1,
                "len": 0.9,
                "y": 0,
                "pad": {"t": 50, "b": 10},
            }
        ],
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "direction": "left",
                "x": 0.1,
                "y": 0,
                "xanchor": "right",
                "yanchor": "top",
                "pad": {"r": 10, "t": 70},
                "buttons": [
                    {
                        "label": L("tr_play"),
                        "method": "animate",
                        "args": [None, {"frame": {"duration": 400, "redraw": True}, "fromcurrent": False}],
                    },
                    {
                        "label": L("tr_pause"),
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
                    },
                ],
            }
        ],
    )
    _axes(fig, src, tgt, L)
    return fig


def cross_attention_grid(
    src: Sequence[str],
    tgt: Sequence[str],
    cross: np.ndarray,
    alignment: Sequence[Sequence[int]] | None = None,
    accuracy: np.ndarray | None = None,
    labels: Labels | None = None,
) -> go.Figure:
    """Every head's cross-attention ``cross`` [layers, heads, T, S] on one scale; reference cells marked;
    ``accuracy`` [layers, heads] (alignment accuracy) in the subplot titles when given."""
    L = resolve(labels)
    cross = np.asarray(cross, dtype=np.float32)
    n_layers, n_heads = cross.shape[:2]
    titles = [
        L("tr_layer_head", layer=layer, head=head)
        + ("" if accuracy is None else L("tr_acc_suffix", acc=f"{accuracy[layer, head]:.0%}"))
        for layer in range(n_layers)
        for head in range(n_heads)
    ]
    fig = make_subplots(n_layers, n_heads, subplot_titles=titles, horizontal_spacing=0.04, vertical_spacing=0.12)
    ht = np.array([[(t, s) for s in axis_labels(src)] for t in axis_labels(tgt)], dtype=object)
    for layer in range(n_layers):
        for head in range(n_heads):
            kw = {"row": layer + 1, "col": head + 1}
            fig.add_trace(
                go.Heatmap(
                    z=cross[layer, head], coloraxis="coloraxis", customdata=ht, hovertemplate=L("tr_cross_hover")
                ),
                **kw,
            )
            if alignment:
                mark = _reference_marks(alignment, L("tr_reference"))
                mark.update(showlegend=layer == 0 and head == 0, marker_size=10)
                fig.add_trace(mark, **kw)
            _axes(fig, src, tgt, L, **kw)
            fig.update_xaxes(showticklabels=layer == n_layers - 1, **kw)
            fig.update_yaxes(showticklabels=head == 0, **kw)
    fig.update_layout(
        title=L("tr_grid_title"),
        coloraxis={"colorscale": SEQUENTIAL, "cmin": 0, "cmax": 1},
        height=(160 + 22 * len(tgt)) * n_layers + 80,
        margin={"t": 80, "b": 40, "l": 80, "r": 20},
        legend={"orientation": "h", "y": 1.06, "x": 1, "xanchor": "right"},
    )
    return fig


def _layer_names(n: int, L) -> list[str]:
    return [L("tr_layer_embed")] + [L("tr_layer_n", layer=i) for i in range(1, n)]


def decoder_lens_figure(lens, labels: Labels | None = None) -> go.Figure:
    """The decoder's logit lens (``llmviz.train.translator_probes.DecoderLens``): probability of each written
    word read out after every layer, the top word in each cell."""
    L = resolve(labels)
    n = lens.prob.shape[0]
    text = np.array([axis_labels(row) for row in lens.top], dtype=object)
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(lens.prob, dtype=np.float32),
            zmin=0,
            zmax=1,
            colorscale=SEQUENTIAL,
            text=text,
            texttemplate="%{text}",
            customdata=np.broadcast_to(np.array(axis_labels(lens.target), dtype=object), lens.prob.shape),
            hovertemplate=L("tr_lens_hover"),
            colorbar={"title": L("probability")},
        )
    )
    fig.update_xaxes(tickvals=list(range(len(lens.target))), ticktext=axis_labels(lens.target), title=L("tr_lens_x"))
    fig.update_yaxes(tickvals=list(range(n)), ticktext=_layer_names(n, L), autorange="reversed")
    fig.update_layout(title=L("tr_lens_title"), height=160 + 60 * n, margin={"t": 50, "b": 60, "l": 110, "r": 20})
    return fig


def source_patch_figure(patch, labels: Labels | None = None) -> go.Figure:
    """Recovery map of a source-word patch (``llmviz.train.translator_probes.SourcePatch``) [layers + 1, S]."""
    L = resolve(labels)
    n, s = patch.recovery.shape
    src = list(patch.clean) + ["<eos>"]
    ticks = axis_labels(src)
    ticks[patch.position] = f"<b>{ticks[patch.position]}→{axis_labels([patch.corrupt[patch.position]])[0]}</b>"
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(patch.recovery, dtype=np.float32),
            zmid=0,
            colorscale="RdBu_r",
            customdata=np.broadcast_to(np.array(axis_labels(src), dtype=object), (n, s)),
            hovertemplate=L("tr_patch_hover"),
            colorbar={"title": L("tr_recovered"), "tickformat": ".0%"},
        )
    )
    fig.update_xaxes(tickvals=list(range(s)), ticktext=ticks, title=L("tr_patch_x"))
    fig.update_yaxes(tickvals=list(range(n)), ticktext=_layer_names(n, L), autorange="reversed")
    fig.update_layout(title=L("tr_patch_title"), height=160 + 60 * n, margin={"t": 50, "b": 60, "l": 110, "r": 20})
    return fig
