"""Figures for the training lab (plotly; returned, never shown). Every label a reader sees comes from the
``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`; None = the default language) or from
the caller (titles, method and model names, already translated)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"
METHOD_COLORS = {"finetune": "#2ca02c", "scratch": "#7f7f7f", "minilm": "#9467bd"}
MODEL_COLORS = {"skewed": "#d62728", "balanced": "#1f77b4", "cda": "#2ca02c"}


def loss_curves(history, title: str | None = None, labels: Labels | None = None) -> go.Figure:
    """Training and validation loss per step; marks the lowest validation loss.

    ``history``: a ``llmviz.train.loop.History`` (lists of equal length: step, train_loss, val_loss).
    """
    L = resolve(labels)
    fig = go.Figure()
    fig.add_scatter(
        x=history.step,
        y=history.train_loss,
        mode="lines+markers",
        name=L("training_loss"),
        line={"color": TRAIN_COLOR},
        marker={"size": 4},
    )
    fig.add_scatter(
        x=history.step,
        y=history.val_loss,
        mode="lines+markers",
        name=L("validation_loss"),
        line={"color": VAL_COLOR},
        marker={"size": 4},
    )
    if history.val_loss:
        best = int(np.argmin(history.val_loss))
        fig.add_scatter(
            x=[history.step[best]],
            y=[history.val_loss[best]],
            mode="markers",
            name=L("lowest_validation"),
            marker={"symbol": "star", "size": 14, "color": VAL_COLOR},
        )
        last = len(history.step) - 1
        fig.add_annotation(
            x=history.step[last],
            y=(history.val_loss[last] + history.train_loss[last]) / 2,
            text=L("gap", gap=f"{history.val_loss[last] - history.train_loss[last]:+.2f}"),
            showarrow=False,
            xanchor="right",
            font={"size": 13},
        )
    fig.update_layout(
        title=title if title is not None else L("loss_title"),
        xaxis_title=L("training_step"),
        yaxis_title=L("cross_entropy_token"),
        height=380,
        margin={"t": 50, "b": 40, "l": 60, "r": 20},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(range=[0, max(history.total_steps, 1)])
    return fig


def gap_bars(summary: list[dict], labels: Labels | None = None) -> go.Figure:
    """Final training / validation loss per preset run. ``summary``: dicts with preset (its name, as the
    reader reads it), train_loss, val_loss, best_val."""
    L = resolve(labels)
    names = [r["preset"] for r in summary]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["train_loss"] for r in summary], name=L("final_training_loss"), marker_color=TRAIN_COLOR)
    fig.add_bar(x=names, y=[r["val_loss"] for r in summary], name=L("final_validation_loss"), marker_color=VAL_COLOR)
    fig.add_scatter(
        x=names,
        y=[r["best_val"] for r in summary],
        mode="markers",
        name=L("lowest_validation_loss"),
        marker={"symbol": "star", "size": 12, "color": "black"},
    )
    fig.update_layout(
        barmode="group",
        title=L("gap_title"),
        yaxis_title=L("cross_entropy"),
        height=340,
        margin={"t": 50, "b": 40},
    )
    return fig


def transfer_figure(result, names: dict[str, str], labels: Labels | None = None) -> go.Figure:
    """Test accuracy vs labelled examples (log x) per method. ``result``: TransferResult; ``names``: the
    methods' names as the reader reads them."""
    L = resolve(labels)
    fig = go.Figure()
    for method, accs in result.accuracy.items():
        fig.add_scatter(
            x=result.sizes,
            y=accs,
            mode="lines+markers",
            name=names.get(method, method),
            line={"color": METHOD_COLORS.get(method)},
            marker={"size": 9},
        )
    fig.add_hline(y=0.5, line_dash="dot", annotation_text=L("chance"), line_color="#999")
    fig.update_layout(
        title=L("transfer_title", n=result.n_test),
        xaxis_title=L("labelled_examples"),
        yaxis_title=L("accuracy"),
        yaxis_range=[0.3, 1.02],
        height=380,
        margin={"t": 50, "b": 40},
    )
    fig.update_xaxes(type="log", tickvals=result.sizes)
    return fig


def bias_figure(result, names: dict[str, str], labels: Labels | None = None) -> go.Figure:
    """Per occupation, the he-minus-she score for each trained model. ``result``: BiasResult; occupations
    and the pronouns are words of the (English) training corpus and shown as they are."""
    L = resolve(labels)
    order = np.argsort([0 if s == "female" else 1 for s in result.stereotype], kind="stable")
    occs = [f"{result.occupations[i]} ({'♀' if result.stereotype[i] == 'female' else '♂'})" for i in order]
    fig = go.Figure()
    for name, ratio in result.log_ratio.items():
        fig.add_bar(x=occs, y=np.asarray(ratio)[order], name=names.get(name, name), marker_color=MODEL_COLORS.get(name))
    fig.add_hline(y=0, line_color="#333")
    fig.update_layout(
        barmode="group",
        title=L("pronoun_title"),
        yaxis_title=L("kurita_he_she"),
        height=400,
        margin={"t": 50, "b": 40},
    )
    return fig


def counts_figure(counts: dict[str, dict[str, int]], title: str, labels: Labels | None = None) -> go.Figure:
    """He/she co-occurrence counts per occupation in one corpus (words of the corpus, shown as they are)."""
    L = resolve(labels)
    occs = list(counts)
    fig = go.Figure()
    fig.add_bar(x=occs, y=[counts[o]["he"] for o in occs], name="he")
    fig.add_bar(x=occs, y=[counts[o]["she"] for o in occs], name="she")
    fig.update_layout(barmode="group", title=title, yaxis_title=L("stories"), height=300, margin={"t": 50, "b": 40})
    return fig


def exposure_figure(rows, n_candidates: int, labels: Labels | None = None) -> go.Figure:
    """Exposure vs times the canary was planted; the dashed line is the maximum log2 |R|."""
    L = resolve(labels)
    xs = [r.repeats for r in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=[max(x, 0.5) for x in xs],
        y=[r.exposure for r in rows],
        mode="lines+markers+text",
        text=[r.name for r in rows],
        textposition="top center",
        name=L("exposure"),
        marker={"size": 10, "color": ["#d62728" if r.leaked else "#1f77b4" for r in rows]},
    )
    top = math.log2(n_candidates)
    fig.add_hline(y=top, line_dash="dash", annotation_text=L("exposure_max", bits=f"{top:.1f}"))
    fig.add_hline(y=1.0, line_dash="dot", line_color="#999", annotation_text=L("never_seen"))
    fig.update_layout(
        title=L("exposure_title"),
        xaxis_title=L("canary_times"),
        yaxis_title=L("exposure_bits"),
        yaxis_range=[-0.5, top + 1.5],
        height=400,
        showlegend=False,
        margin={"t": 50, "b": 40},
    )
    fig.update_xaxes(type="log", tickvals=[max(x, 0.5) for x in xs], ticktext=[str(x) for x in xs])
    return fig
