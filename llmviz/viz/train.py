"""Figures for the training lab (plotly; returned, never shown)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"
METHOD_COLORS = {"finetune": "#2ca02c", "scratch": "#7f7f7f", "minilm": "#9467bd"}
MODEL_COLORS = {"skewed": "#d62728", "balanced": "#1f77b4", "cda": "#2ca02c"}


def loss_curves(history, title: str = "Loss") -> go.Figure:
    """Training and validation loss per step; marks the lowest validation loss.

    ``history``: a ``llmviz.train.loop.History`` (lists of equal length: step, train_loss, val_loss).
    """
    fig = go.Figure()
    fig.add_scatter(
        x=history.step,
        y=history.train_loss,
        mode="lines+markers",
        name="training loss",
        line={"color": TRAIN_COLOR},
        marker={"size": 4},
    )
    fig.add_scatter(
        x=history.step,
        y=history.val_loss,
        mode="lines+markers",
        name="validation loss",
        line={"color": VAL_COLOR},
        marker={"size": 4},
    )
    if history.val_loss:
        best = int(np.argmin(history.val_loss))
        fig.add_scatter(
            x=[history.step[best]],
            y=[history.val_loss[best]],
            mode="markers",
            name="lowest validation",
            marker={"symbol": "star", "size": 14, "color": VAL_COLOR},
        )
        last = len(history.step) - 1
        fig.add_annotation(
            x=history.step[last],
            y=(history.val_loss[last] + history.train_loss[last]) / 2,
            text=f"gap {history.val_loss[last] - history.train_loss[last]:+.2f}",
            showarrow=False,
            xanchor="right",
            font={"size": 13},
        )
    fig.update_layout(
        title=title,
        xaxis_title="training step",
        yaxis_title="cross-entropy (nats / token)",
        height=380,
        margin={"t": 50, "b": 40, "l": 60, "r": 20},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(range=[0, max(history.total_steps, 1)])
    return fig


def gap_bars(summary: list[dict]) -> go.Figure:
    """Final training / validation loss per preset run. ``summary``: dicts with preset, train_loss,
    val_loss, best_val."""
    names = [r["preset"] for r in summary]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["train_loss"] for r in summary], name="final training loss", marker_color=TRAIN_COLOR)
    fig.add_bar(x=names, y=[r["val_loss"] for r in summary], name="final validation loss", marker_color=VAL_COLOR)
    fig.add_scatter(
        x=names,
        y=[r["best_val"] for r in summary],
        mode="markers",
        name="lowest validation loss",
        marker={"symbol": "star", "size": 12, "color": "black"},
    )
    fig.update_layout(
        barmode="group",
        title="Runs compared: the gap between the bars is the overfitting",
        yaxis_title="cross-entropy",
        height=340,
        margin={"t": 50, "b": 40},
    )
    return fig


def transfer_figure(result, labels: dict[str, str]) -> go.Figure:
    """Test accuracy vs labelled examples (log x) per method. ``result``: TransferResult."""
    fig = go.Figure()
    for method, accs in result.accuracy.items():
        fig.add_scatter(
            x=result.sizes,
            y=accs,
            mode="lines+markers",
            name=labels.get(method, method),
            line={"color": METHOD_COLORS.get(method)},
            marker={"size": 9},
        )
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance", line_color="#999")
    fig.update_layout(
        title=f"Accuracy on {result.n_test} held-out sentences",
        xaxis_title="labelled examples",
        yaxis_title="accuracy",
        yaxis_range=[0.3, 1.02],
        height=380,
        margin={"t": 50, "b": 40},
    )
    fig.update_xaxes(type="log", tickvals=result.sizes)
    return fig


def bias_figure(result, names: dict[str, str]) -> go.Figure:
    """Per occupation, the he-minus-she score for each trained model. ``result``: BiasResult."""
    order = np.argsort([0 if s == "female" else 1 for s in result.stereotype], kind="stable")
    occs = [f"{result.occupations[i]} ({'♀' if result.stereotype[i] == 'female' else '♂'})" for i in order]
    fig = go.Figure()
    for name, ratio in result.log_ratio.items():
        fig.add_bar(x=occs, y=np.asarray(ratio)[order], name=names.get(name, name), marker_color=MODEL_COLORS.get(name))
    fig.add_hline(y=0, line_color="#333")
    fig.update_layout(
        barmode="group",
        title="Pronoun preference per occupation (> 0: 'he', < 0: 'she')",
        yaxis_title="Kurita score he − she (nats)",
        height=400,
        margin={"t": 50, "b": 40},
    )
    return fig


def counts_figure(counts: dict[str, dict[str, int]], title: str) -> go.Figure:
    """He/she co-occurrence counts per occupation in one corpus."""
    occs = list(counts)
    fig = go.Figure()
    fig.add_bar(x=occs, y=[counts[o]["he"] for o in occs], name="he")
    fig.add_bar(x=occs, y=[counts[o]["she"] for o in occs], name="she")
    fig.update_layout(barmode="group", title=title, yaxis_title="stories", height=300, margin={"t": 50, "b": 40})
    return fig


def exposure_figure(rows, n_candidates: int) -> go.Figure:
    """Exposure vs times the canary was planted; the dashed line is the maximum log2 |R|."""
    xs = [r.repeats for r in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=[max(x, 0.5) for x in xs],
        y=[r.exposure for r in rows],
        mode="lines+markers+text",
        text=[r.name for r in rows],
        textposition="top center",
        name="exposure",
        marker={"size": 10, "color": ["#d62728" if r.leaked else "#1f77b4" for r in rows]},
    )
    top = math.log2(n_candidates)
    fig.add_hline(y=top, line_dash="dash", annotation_text=f"max = log2 |R| = {top:.1f} bits")
    fig.add_hline(y=1.0, line_dash="dot", line_color="#999", annotation_text="≈ 1: never seen (average)")
    fig.update_layout(
        title="Exposure vs repetitions (red: greedy completion leaks the secret)",
        xaxis_title="times the canary is in the training data (0 plotted at 0.5)",
        yaxis_title="exposure (bits)",
        yaxis_range=[-0.5, top + 1.5],
        height=400,
        showlegend=False,
        margin={"t": 50, "b": 40},
    )
    fig.update_xaxes(type="log", tickvals=[max(x, 0.5) for x in xs], ticktext=[str(x) for x in xs])
    return fig
