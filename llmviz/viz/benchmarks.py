"""Plotly figures for the published benchmarks (StereoSet, run comparisons). Labels are HTML-escaped."""

from __future__ import annotations

import html

import plotly.graph_objects as go


def _esc(x) -> str:
    return html.escape(str(x))


def stereoset_bars(rows: list[dict], metric: str = "SS Score") -> go.Figure:
    """One bar per (split, bias type) row of stereoset.result_rows with its 95 % CI; a line at the ideal."""
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
            hovertemplate=metric + " %{y:.1f}<br>95 % CI %{customdata[1]:.1f}–%{customdata[2]:.1f}<br>"
            "n = %{customdata[0]}<extra></extra>",
        )
    )
    ideal = {"SS Score": 50, "LM Score": 100, "ICAT Score": 100}.get(metric)
    if ideal is not None:
        fig.add_hline(y=ideal, line_dash="dot", annotation_text=f"ideal {ideal}")
    fig.update_xaxes(tickvals=list(range(len(rows))), ticktext=labels)
    fig.update_yaxes(title=metric, range=[0, 105])
    fig.update_layout(
        title=f"StereoSet {metric} (95 % bootstrap CI over examples)", height=420, margin={"t": 50, "b": 120}
    )
    return fig


def paired_diff(cmp: dict) -> go.Figure:
    """Mean paired difference (run B − run A) per group with its bootstrap 95 % CI."""
    groups = list(cmp["by_group"]) + ["overall"]
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
            hovertemplate="B − A = %{x:.3f}<br>95 % CI %{customdata[1]:.3f} – %{customdata[2]:.3f}"
            "<br>n = %{customdata[0]}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line_dash="dot")
    fig.update_yaxes(tickvals=list(range(len(groups))), ticktext=[_esc(g) for g in groups], autorange="reversed")
    fig.update_xaxes(title=f"run {cmp['b']['id']} − run {cmp['a']['id']} (per item, paired)")
    fig.update_layout(title="Paired difference per group (bootstrap 95 % CI)", height=max(300, 40 * len(groups) + 120))
    return fig
