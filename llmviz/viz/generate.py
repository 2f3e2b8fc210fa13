"""Figures for the Playground: probabilities along the output, alternatives, coloured tokens, fill-mask bars.

Token strings are escaped before they reach plotly labels (which render a subset of HTML) or HTML. Every
label a reader sees comes from the ``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`;
None = the default language).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.generation.generate import Generation, StepRecord
from llmviz.i18n import Labels, resolve


def _label(token: str) -> str:
    """Visible, escaped label for a token: spaces as ␣, newlines as ⏎."""
    shown = token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"
    return html.escape(shown)


def probability_chart(
    gen: Generation, selected: int | None = None, title: str = "", labels: Labels | None = None
) -> go.Figure:
    """Bars: probability of each chosen token (sampling distribution); markers: model probability;
    line (right axis): entropy in bits. x = step index; click a bar to select a step."""
    L = resolve(labels)
    x = [s.index for s in gen.steps]
    ticks = [_label(s.token) for s in gen.steps]
    colors = ["#d62728" if s.forced else ("#ff7f0e" if s.index == selected else "#1f77b4") for s in gen.steps]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    hover = [
        L("prob_hover", step=s.index, token=lab, p=f"{s.prob:.3f}", model_p=f"{s.model_prob:.3f}", rank=s.rank)
        + ("<br>" + L("forced") if s.forced else "")
        for s, lab in zip(gen.steps, ticks)
    ]
    fig.add_trace(
        go.Bar(x=x, y=gen.probs(), name=L("p_sampled"), marker_color=colors, hovertext=hover, hoverinfo="text"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=gen.model_probs(),
            mode="markers",
            name=L("p_model"),
            marker=dict(symbol="diamond", color="black", size=7),
            hoverinfo="skip",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=gen.entropies(),
            mode="lines",
            name=L("entropy_bits"),
            line=dict(color="#2ca02c", dash="dot"),
            hoverinfo="skip",
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title=title or L("prob_title"),
        height=360,
        bargap=0.15,
        margin=dict(l=40, r=40, t=50, b=80),
        legend=dict(orientation="h", y=1.12),
        clickmode="event+select",
    )
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=ticks, tickangle=-60, title=L("generated_token"))
    fig.update_yaxes(range=[0, 1.02], title=L("probability"), secondary_y=False)
    fig.update_yaxes(title=L("entropy_bits"), secondary_y=True, rangemode="tozero", showgrid=False)
    return fig


def alternatives_chart(step: StepRecord, labels: Labels | None = None) -> go.Figure:
    """Horizontal bars of the top alternatives at one step (model probability); chosen token highlighted."""
    L = resolve(labels)
    alts = list(reversed(step.alternatives))
    fig = go.Figure(
        go.Bar(
            x=[a.model_prob for a in alts],
            y=[f"{_label(a.token)} " for a in alts],
            orientation="h",
            marker_color=["#ff7f0e" if a.token_id == step.token_id else "#1f77b4" for a in alts],
            text=[f"{a.model_prob:.3f} / {a.prob:.3f}" for a in alts],
            textposition="auto",
            hovertext=[L("alt_hover", id=a.token_id, model_p=f"{a.model_prob:.4f}", p=f"{a.prob:.4f}") for a in alts],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=L("alt_title", step=step.index),
        height=80 + 28 * len(alts),
        margin=dict(l=10, r=10, t=40, b=30),
    )
    fig.update_xaxes(range=[0, 1], title=L("model_probability"))
    return fig


def _color(p: float) -> str:
    """Low probability -> warm, high -> pale (so surprising tokens stand out)."""
    alpha = 0.15 + 0.7 * (1.0 - max(0.0, min(1.0, p)))
    return f"rgba(255, 140, 0, {alpha:.2f})"


def tokens_html(gen: Generation, selected: int | None = None, labels: Labels | None = None) -> str:
    """The output as coloured spans (colour = 1 - probability); hover shows p. All tokens escaped."""
    L = resolve(labels)
    spans = []
    for s in gen.steps:
        style = f"background:{_color(s.prob)};border-radius:3px;padding:0 1px;"
        if s.forced:
            style += "outline:2px solid #d62728;"
        if s.index == selected:
            style += "box-shadow:0 0 0 2px #1f77b4;"
        text = html.escape(s.token).replace("\n", "<br>")
        tip = html.escape(L("token_span_title", step=s.index, p=f"{s.prob:.3f}"), quote=True)
        spans.append(f'<span title="{tip}" style="{style}">{text}</span>')
    return (
        '<div class="llmviz-tokens" style="font-family:monospace;white-space:pre-wrap;line-height:1.8;">'
        + "".join(spans)
        + "</div>"
    )


def fill_mask_chart(slot, method: str, labels: Labels | None = None) -> go.Figure:
    """Horizontal bars for one mask's candidates (best at the top)."""
    L = resolve(labels)
    cands = list(reversed(slot.candidates))
    probs = list(reversed(slot.probs.tolist()))
    xlabel = L("fill_axis_mlm") if method == "masked_lm" else L("fill_axis_candidates")
    fig = go.Figure(
        go.Bar(
            x=probs,
            y=[f"{html.escape(c)} " for c in cands],
            orientation="h",
            text=[f"{p:.3f}" for p in probs],
            textposition="auto",
            marker_color="#1f77b4",
        )
    )
    fig.update_layout(
        title=L("mask_n", n=slot.mask_number), height=90 + 26 * len(cands), margin=dict(l=10, r=10, t=40, b=40)
    )
    fig.update_xaxes(range=[0, 1], title=xlabel)
    return fig
