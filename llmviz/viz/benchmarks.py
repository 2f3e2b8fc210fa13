"""Plotly figures for the published benchmarks (StereoSet, run comparisons). Labels are HTML-escaped; every
label a reader sees comes from the ``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`;
None = the default language); splits, bias types and groups are the data's and shown as they are."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve


def _esc(x) -> str:
    return html.escape(str(x))


def _metric(metric: str, L: Labels) -> str:
    """A StereoSet metric's name ("SS Score" -> ``metric_ss``)."""
    return L.get(f"metric_{metric.split()[0].lower()}", metric)


def stereoset_bars(rows: list[dict], metric: str = "SS Score", labels: Labels | None = None) -> go.Figure:
    """One bar per (split, bias type) row of stereoset.result_rows with its 95 % CI; a line at the ideal."""
    L = resolve(labels)
    name = _metric(metric, L)
    labels = [_esc(f"{r['split']} · {r['bias_type']}") for r in rows]
    vals = [r[metric] for r in rows]
    lo = [r.get(f"{metric} CI low", v) for r, v in zip(rows, vals)]
    hi = [r.get(f"{metric} CI high", v) for r, v in zip(rows, vals)]
    fig = go.Figure(
        go.Bar(
            x=list(range(len(rows))),
            y=vals,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - v for h, v in zip(hi, vals)],
                "arrayminus": [v - lo_ for v, lo_ in zip(vals, lo)],
            },
            customdata=[[r["Count"], a, b] for r, a, b in zip(rows, lo, hi)],
            hovertemplate=L("stereoset_hover", metric=name),
        )
    )
    ideal = {"SS Score": 50, "LM Score": 100, "ICAT Score": 100}.get(metric)
    if ideal is not None:
        fig.add_hline(y=ideal, line_dash="dot", annotation_text=L("ideal", value=ideal))
    fig.update_xaxes(tickvals=list(range(len(rows))), ticktext=labels)
    fig.update_yaxes(title=name, range=[0, 105])
    fig.update_layout(title=L("stereoset_title", metric=name), height=420, margin={"t": 50, "b": 120})
    return fig


def paired_diff(cmp: dict, labels: Labels | None = None) -> go.Figure:
    """Mean paired difference (run B − run A) per group with its bootstrap 95 % CI."""
    L = resolve(labels)
    groups = list(cmp["by_group"]) + [L("overall")]
    blocks = [cmp["by_group"][g] for g in cmp["by_group"]] + [cmp["overall"]]
    d = [b["mean_diff"] for b in blocks]
    fig = go.Figure(
        go.Scatter(
            x=d,
            y=list(range(len(groups))),
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [b["ci95"][1] - m for b, m in zip(blocks, d)],
                "arrayminus": [m - b["ci95"][0] for b, m in zip(blocks, d)],
            },
            customdata=[[b["n"], b["ci95"][0], b["ci95"][1]] for b in blocks],
            hovertemplate=L("paired_hover"),
        )
    )
    fig.add_vline(x=0, line_dash="dot")
    fig.update_yaxes(tickvals=list(range(len(groups))), ticktext=[_esc(g) for g in groups], autorange="reversed")
    fig.update_xaxes(title=L("paired_axis", b=cmp["b"]["id"], a=cmp["a"]["id"]))
    fig.update_layout(title=L("paired_title"), height=max(300, 40 * len(groups) + 120))
    return fig
