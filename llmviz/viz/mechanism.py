"""Figures of "where does the bias live?" (:mod:`llmviz.bias.mechanism`): the layer × head map of confirmed
component effects (MLPs in their own column) and the bias-versus-cost curve of the corrections. Labels from the
``figures`` catalogue (``labels``: :func:`llmviz.i18n.labels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from llmviz.i18n import Labels, resolve

MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def effect_grid(components: list[dict[str, Any]], n_layers: int, n_heads: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n_layers, n_heads + 1]`` effects (last column: the MLP) and their CI text; NaN where not confirmed."""
    z = np.full((n_layers, n_heads + 1), np.nan)
    ci = np.full((n_layers, n_heads + 1), "", dtype=object)
    for c in components:
        j = n_heads if c["kind"] == "mlp" else int(c["head"])
        z[int(c["layer"]), j] = c["effect"]
        lo, hi = c["ci95"]
        ci[int(c["layer"]), j] = f"[{lo:+.3f}, {hi:+.3f}]"
    return z, ci


def effect_heatmap(
    components: list[dict[str, Any]], n_layers: int, n_heads: int, labels: Labels | None = None
) -> go.Figure:
    """Effect of ablating each confirmed component (blue: removing it lowers S, i.e. it pushed towards the
    stereotype; red: the opposite); hover: effect, 95 % CI, screen estimate."""
    L = resolve(labels)
    z, ci = effect_grid(components, n_layers, n_heads)
    est = np.full_like(z, np.nan)
    for c in components:
        j = n_heads if c["kind"] == "mlp" else int(c["head"])
        if c.get("screen_estimate") is not None:
            est[int(c["layer"]), j] = c["screen_estimate"]
    m = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    x = [L("mech_head_n", h=h) for h in range(n_heads)] + [L("mech_mlp")]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=list(range(n_layers)),
            zmin=-m,
            zmax=m,
            colorscale="RdBu_r",
            customdata=np.dstack([ci, est]),
            hovertemplate=L("mech_hover"),
            colorbar={"title": L("mech_effect")},
        )
    )
    fig.update_layout(
        title=L("mech_heatmap_title"),
        xaxis_title=L("mech_component"),
        yaxis_title=L("layer"),
        yaxis={"autorange": "reversed"},
        margin=MARGIN,
        height=max(320, 18 * n_layers + 120),
    )
    return fig


def bias_cost_curve(correction: dict[str, Any], labels: Labels | None = None) -> go.Figure:
    """x: change of the mean log-likelihood per token on neutral sentences (the cost; 0 = none), y: the bias
    figure on the test half (and, dotted, on the find half the components were chosen on) for k = 1, 2, 4, …,
    with Self-Debias and the steering vector as single points."""
    L = resolve(labels)
    fig = go.Figure()
    curve = correction["ablate_top_k"]["curve"]
    xs = [b["cost"]["neutral_ll_per_token_change"] for b in curve]
    ks = [b["k"] for b in curve]
    fig.add_scatter(
        x=xs,
        y=[b["test"]["after"] for b in curve],
        mode="lines+markers+text",
        text=[f"k={k}" for k in ks],
        textposition="top center",
        name=L("mech_curve_test"),
    )
    fig.add_scatter(
        x=xs,
        y=[b["find"]["after"] for b in curve],
        mode="lines+markers",
        line={"dash": "dot"},
        name=L("mech_curve_find"),
    )
    before = correction["ablate_top_k"]["test"]["before"]
    fig.add_scatter(x=[0.0], y=[before], mode="markers", marker={"symbol": "x", "size": 12}, name=L("mech_before"))
    for key in ("self_debias", "steering"):
        block = correction.get(key)
        if block:
            fig.add_scatter(
                x=[block["cost"]["neutral_ll_per_token_change"]],
                y=[block["test"]["after"]],
                mode="markers",
                marker={"size": 11, "symbol": "diamond" if key == "steering" else "square"},
                name=L(f"mech_method_{key}"),
            )
    fig.add_hline(y=50, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=L("mech_curve_title"),
        xaxis_title=L("mech_cost_axis"),
        yaxis_title=L("mech_bias_axis"),
        margin=MARGIN,
        height=420,
    )
    return fig
