"""Plotly figures for the bias probes. Every function returns a figure; nothing is shown here.

Token and term strings are HTML-escaped before they reach plotly (which renders a subset of HTML in
labels), and categorical axes use positions + tick text so repeated tokens stay separate. Every label a
reader sees comes from the ``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`; None = the
default language); groups, targets, terms and bias types are the caller's data and shown as given.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve

DIVERGING = "RdBu_r"
HEATMAP_MIN_HEIGHT = 360  # px: room for a colour bar with ticks (presenter mode grows it up to 1.5x)
PCT_PAD = 4  # % beyond 0 and 100 on the minimal-pairs axis, so whisker caps at the ends are not cut


def _esc(items) -> list[str]:
    return [html.escape(str(s)) for s in items]


def template_heatmap(res, labels: Labels | None = None) -> go.Figure:
    """Group x target heatmap of the probe's score (Kurita for MLMs, target log-prob for causal LMs)."""
    L = resolve(labels)
    z = res.score
    label = L("kurita_label") if res.method == "mlm_kurita" else L("logp_label")
    skew = res.skew()
    fig = go.Figure(
        go.Heatmap(
            z=skew,
            x=list(range(len(res.targets))),
            y=list(range(len(res.groups))),
            colorscale=DIVERGING,
            zmid=0,
            customdata=np.dstack([z, res.log_prob]),
            # title beside the bar (on top it eats the bar's height), full height, a readable thickness
            colorbar={
                "title": {"text": L("vs_group_mean"), "side": "right"},
                "len": 1.0,
                "lenmode": "fraction",
                "thickness": 18,
                "thicknessmode": "pixels",
                "xpad": 8,
            },
            hovertemplate=L("template_hover", label=label),
        )
    )
    fig.update_xaxes(tickvals=list(range(len(res.targets))), ticktext=_esc(res.targets), title=L("target"))
    fig.update_yaxes(
        tickvals=list(range(len(res.groups))), ticktext=_esc(res.groups), title=L("group"), autorange="reversed"
    )
    fig.update_layout(
        title=L("template_title", label=label),
        # a floor: with two groups the plot area (and the colour bar, its height) was ~80 px tall
        height=max(HEATMAP_MIN_HEIGHT, 140 + 40 * len(res.groups)),
        margin={"t": 60, "b": 70, "r": 60},
    )
    return fig


def template_ratio_bars(res, a: int = 0, b: int = 1, labels: Labels | None = None) -> go.Figure:
    """Per-target score difference between group a and group b, sorted."""
    L = resolve(labels)
    r = res.log_ratio(a, b)
    order = np.argsort(r)
    fig = go.Figure(
        go.Bar(
            x=r[order],
            y=list(range(len(order))),
            orientation="h",
            marker_color=np.where(r[order] > 0, "#c0392b", "#2e86c1"),
            hovertemplate="%{x:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(tickvals=list(range(len(order))), ticktext=_esc([res.targets[i] for i in order]))
    ga, gb = html.escape(res.groups[a]), html.escape(res.groups[b])
    fig.update_layout(
        title=L("ratio_title", a=ga, b=gb),
        xaxis_title=L("ratio_axis", a=ga, b=gb),
        height=120 + 22 * len(order),
        margin={"t": 60},
    )
    fig.add_vline(x=0, line_color="gray")
    return fig


def pairs_summary(summary: dict, labels: Labels | None = None) -> go.Figure:
    """% stereotype-consistent pairs per bias type with 95 % bootstrap CIs and the 50 % line.

    The interval is clipped to 0–100 % (a percentile bootstrap never leaves it; another interval
    method might) and the axis reaches PCT_PAD beyond both ends, so every whisker and its cap lies
    inside the plot. The "50 % = no preference" label sits above the plot area, never on a bar."""
    L = resolve(labels)
    rows = [(L("all_pairs"), summary)] + sorted(summary.get("by_bias_type", {}).items())
    names = [html.escape(L("pairs_row", name=k, n=v["n"])) for k, v in rows]
    pct = [v["pct_stereotype"] for _, v in rows]
    ci = [(min(max(v["ci95"][0], 0.0), 100.0), min(max(v["ci95"][1], 0.0), 100.0)) for _, v in rows]
    lo = [max(p - c[0], 0.0) for p, c in zip(pct, ci)]
    hi = [max(c[1] - p, 0.0) for p, c in zip(pct, ci)]
    fig = go.Figure(
        go.Bar(
            x=pct,
            y=names,
            orientation="h",
            error_x={"type": "data", "array": hi, "arrayminus": lo},
            marker_color=["#34495e"] + ["#7f8c8d"] * (len(rows) - 1),
            customdata=ci,
            hovertemplate=L("pairs_hover"),
        )
    )
    fig.add_vline(x=50, line_dash="dash", line_color="#c0392b")
    fig.add_annotation(
        text=L("no_preference"),
        x=50,
        xref="x",
        y=1,
        yref="paper",
        yanchor="bottom",
        yshift=2,
        showarrow=False,
        font={"color": "#c0392b"},
    )
    fig.update_layout(
        title={
            "text": L("pairs_title"),
            "yref": "container",
            "y": 1,
            "yanchor": "top",
            "pad": {"t": 8},
        },
        xaxis={"range": [-PCT_PAD, 100 + PCT_PAD], "title": "%", "tickvals": [0, 25, 50, 75, 100]},
        # category labels ("nationality (n=8)") push the left margin in every export, the CLI's too
        yaxis={"autorange": "reversed", "automargin": True},
        height=170 + 34 * len(rows),
        margin={"t": 100},
    )
    return fig


def score_diff_hist(scores, labels: Labels | None = None) -> go.Figure:
    """Distribution of score_more − score_less, one colour per bias type."""
    L = resolve(labels)
    fig = go.Figure()
    types = scores.frame["bias_type"].to_numpy()
    for t in sorted(set(types)):
        fig.add_trace(go.Histogram(x=scores.diff[types == t], name=html.escape(str(t)), opacity=0.75, nbinsx=30))
    fig.add_vline(x=0, line_color="black")
    fig.update_layout(
        barmode="stack",
        title=L("diff_hist_title"),
        xaxis_title=L("diff_hist_axis"),
        yaxis_title=L("pairs"),
        height=360,
        margin={"t": 60},
    )
    return fig


def pair_token_bars(detail, labels: Labels | None = None) -> go.Figure:
    """Per shared token: log p in sent_more minus log p in sent_less. A causal LM's sentence score
    counts the changed words too: their share (``detail.changed_diff``) gets a grey bar of its own,
    so the bars always add up to score(sent_more) − score(sent_less)."""
    L = resolve(labels)
    d = detail.token_diff
    fig = go.Figure(
        go.Bar(
            x=list(range(len(d))),
            y=d,
            marker_color=np.where(d > 0, "#c0392b", "#2e86c1"),
            customdata=np.stack([detail.lp_more[detail.shared_more], detail.lp_less[detail.shared_less]], axis=-1),
            hovertemplate=L("pair_token_hover"),
            showlegend=False,
        )
    )
    ticks = _esc(detail.shared_tokens)
    title = L("pair_token_title")
    changed = getattr(detail, "changed_diff", 0.0)
    if abs(changed) > 1e-9:
        fig.add_trace(
            go.Bar(
                x=[len(d)],
                y=[changed],
                marker_color="#95a5a6",
                name=L("changed_words"),
                hovertemplate=L("changed_hover"),
                showlegend=False,
            )
        )
        ticks.append(L("changed_tick"))
        title = L("pair_token_title_changed")
    fig.update_xaxes(tickvals=list(range(len(ticks))), ticktext=ticks, title=L("shared_token"))
    fig.update_layout(title=title, yaxis_title=L("pair_token_axis"), height=340, margin={"t": 60})
    return fig


def attention_diff_heatmap(detail, layer: int, head: int | None, labels: Labels | None = None) -> go.Figure:
    """Attention(sent_more) − attention(sent_less) on shared tokens, one head or the head mean."""
    L = resolve(labels)
    a = detail.attention_diff[layer]
    m = a.mean(axis=0) if head is None else a[head]  # [A, A]
    n = len(detail.attention_tokens)
    lim = float(np.abs(m).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=list(range(n)),
            y=list(range(n)),
            colorscale=DIVERGING,
            zmin=-lim,
            zmax=lim,
            hovertemplate=L("att_diff_hover"),
        )
    )
    ticks = _esc(detail.attention_tokens)
    fig.update_xaxes(tickvals=list(range(n)), ticktext=ticks, title=L("key_attended"))
    fig.update_yaxes(tickvals=list(range(n)), ticktext=ticks, title=L("query"), autorange="reversed")
    which = L("mean_of_heads") if head is None else L("head_n", head=head)
    fig.update_layout(
        title=L("att_diff_title", layer=layer, which=which),
        height=220 + 22 * n,
        margin={"t": 60},
    )
    return fig


def counterfactual_box(res, labels: Labels | None = None) -> go.Figure:
    """VADER sentiment of each group's continuations, with the mean marked."""
    L = resolve(labels)
    fig = go.Figure()
    for g, name in enumerate(res.groups):
        fig.add_trace(
            go.Box(
                y=res.sentiment[g],
                name=html.escape(name),
                boxmean=True,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                hovertemplate="%{y:.3f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=L("sentiment_title"),
        yaxis={"range": [-1.05, 1.05], "title": L("compound")},
        showlegend=False,
        height=380,
        margin={"t": 60},
    )
    return fig


def weat_layers(res, labels: Labels | None = None) -> go.Figure:
    """Effect size per layer; marker filled where p < 0.05."""
    L = resolve(labels)
    layers = list(range(len(res.effect_size)))
    sig = res.p_value < 0.05
    fig = go.Figure(
        go.Scatter(
            x=layers,
            y=res.effect_size,
            mode="lines+markers",
            customdata=res.p_value,
            marker={"size": 10, "symbol": np.where(sig, "circle", "circle-open").tolist(), "color": "#34495e"},
            hovertemplate=L("weat_hover"),
        )
    )
    fig.add_hline(y=0, line_color="gray")
    fig.update_layout(
        title=L("weat_title", mode=res.mode.upper()),
        xaxis_title=L("layer_embeddings"),
        yaxis={"title": L("caliskan_d"), "range": [-2.05, 2.05]},
        height=360,
        margin={"t": 60},
    )
    return fig


def mitigation_bars(res, labels: Labels | None = None) -> go.Figure:
    """WEAT/SEAT effect size d and bias recoverability (k-NN accuracy, 0–1) before and after the
    projection, side by side on their own axes: d is unbounded and signed, accuracy is a share."""
    from plotly.subplots import make_subplots

    L = resolve(labels)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=(L("effect_size_d"), L("recoverability")), horizontal_spacing=0.18
    )
    for name, colour, d, acc in (
        (L("before"), "#7f8c8d", res.effect_before, res.recover_before),
        (L("after_projection"), "#27ae60", res.effect_after, res.recover_after),
    ):
        fig.add_trace(
            go.Bar(
                x=[name],
                y=[d],
                name=name,
                marker_color=colour,
                legendgroup=name,
                hovertemplate="d = %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=[name],
                y=[acc],
                name=name,
                marker_color=colour,
                legendgroup=name,
                showlegend=False,
                hovertemplate="%{y:.3f}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(title_text="d", row=1, col=1, automargin=True)
    fig.update_yaxes(title_text=L("accuracy"), range=[0, 1.05], row=1, col=2, automargin=True)
    fig.add_hline(
        y=0.5,
        line_dash="dot",
        line_color="#999",
        row=1,
        col=2,
        annotation_text=L("chance"),
        annotation_position="bottom right",
    )
    fig.update_layout(title=L("mitigation_title", layer=res.layer), height=360, margin={"t": 80})
    return fig
