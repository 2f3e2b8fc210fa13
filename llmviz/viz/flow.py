"""Figures for information flow: the contribution graph (positions across, layers up) and the QK attribution
heatmap. Tokens are HTML-escaped before they reach a plotly label; every label comes from the ``figures``
catalogue through ``labels`` (:func:`llmviz.i18n.labels`)."""

from __future__ import annotations

import html
import re

import numpy as np
import plotly.graph_objects as go

from llmviz.explain.decompose import BIASES, EMBED, POS_EMBED, TOKEN_EMBED
from llmviz.explain.flow import ATTN, MLP, MLP_IN, RESID, FlowGraph, FlowResult, parse_node
from llmviz.explain.qk_attribution import QKResult
from llmviz.i18n import Labels, resolve

LEVEL = {"x": 0, "a": 1, "m": 2}  # node kind -> offset inside its layer's band of 3 rows
COLOURS = {ATTN: "rgba(214,39,40,{a})", RESID: "rgba(120,120,120,{a})", MLP: "rgba(31,119,180,{a})"}
BINS = ((0.0, 1.0, 0.35), (0.2, 2.5, 0.6), (0.5, 4.5, 0.9))  # (lowest weight, line width, opacity)
MAX_QK_ROWS = 12


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _xy(nid: str) -> tuple[int, int]:
    kind, layer, position = parse_node(nid)
    return position, 3 * layer + LEVEL[kind]


def flow_graph_figure(res: FlowResult, graph: FlowGraph, labels: Labels | None = None) -> go.Figure:
    """Nodes on a grid (x: token position; y: layer, three rows per layer: residual in, after attention, MLP);
    edges coloured by kind (attention, residual, MLP), thicker when more important. The output node is ringed."""
    L = resolve(labels)
    fig = go.Figure()
    for kind in (RESID, MLP, ATTN):
        for lo, width, alpha in BINS:
            hi = next((b[0] for b in BINS if b[0] > lo), 1.01)
            xs, ys = [], []
            for e in graph.edges:
                k = MLP if e["kind"] == MLP_IN else e["kind"]
                if k != kind or not lo <= e["weight"] < hi:
                    continue
                (x0, y0), (x1, y1) = _xy(e["source"]), _xy(e["target"])
                xs += [x0, x1, None]
                ys += [y0, y1, None]
            if xs:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines",
                        line={"width": width, "color": COLOURS[kind].format(a=alpha)},
                        hoverinfo="skip",
                        name=L(f"flow_edge_{kind}"),
                        legendgroup=kind,
                        showlegend=lo == 0.0,
                    )
                )
    incoming: dict[str, float] = {}
    for e in graph.edges:
        incoming[e["target"]] = incoming.get(e["target"], 0.0) + e["weight"]
    nodes = graph.nodes
    kinds = [n["kind"] for n in nodes]
    hover = [
        L(f"flow_node_{n['kind']}", layer=n["layer"], position=n["position"], token=_esc(n["token"])) for n in nodes
    ]
    fig.add_trace(
        go.Scatter(
            x=[n["position"] for n in nodes],
            y=[3 * n["layer"] + LEVEL[n["kind"]] for n in nodes],
            mode="markers",
            marker={
                "size": [12 if n["id"] == graph.output else 7 for n in nodes],
                "color": ["#222" if k == "x" else "#d62728" if k == "a" else "#1f77b4" for k in kinds],
                "line": {"width": [3 if n["id"] == graph.output else 0 for n in nodes], "color": "#ff7f0e"},
            },
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            name=L("flow_nodes"),
            showlegend=False,
        )
    )
    T, n_layers = len(res.tokens), res.n_layers
    fig.update_layout(
        title=L("flow_title", tau=f"{graph.tau:.2f}"),
        xaxis={
            "title": L("input_position"),
            "tickvals": list(range(T)),
            "ticktext": [f"{i} {_esc(t)}" for i, t in enumerate(res.tokens)],
            "range": [-0.7, T - 0.3],
        },
        yaxis={
            "title": L("layer"),
            "tickvals": [3 * layer for layer in range(n_layers + 1)],
            "ticktext": [L("lens_embed")] + [str(layer) for layer in range(1, n_layers + 1)],
        },
        height=max(420, 10 * 3 * n_layers + 160),
        legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig


_HEAD = re.compile(r"^L(\d+)\.h(\d+)$")
_LAYER = re.compile(r"^L(\d+) (attn|mlp)$")


def component_label(name: str, labels: Labels | None = None) -> str:
    """A component's name in the reader's language: ``L3.h2`` -> "layer 3 head 2" etc."""
    L = resolve(labels)
    fixed = {EMBED: "comp_embed", TOKEN_EMBED: "comp_token_embed", POS_EMBED: "comp_pos_embed", BIASES: "comp_biases"}
    if name in fixed:
        return L(fixed[name])
    if m := _HEAD.match(name):
        return L("comp_head", layer=int(m.group(1)), head=int(m.group(2)))
    if m := _LAYER.match(name):
        return L(f"comp_{m.group(2)}", layer=int(m.group(1)))
    return _esc(name)


def _top(values: np.ndarray, n: int) -> list[int]:
    return sorted(np.argsort(-values)[:n].tolist())


def qk_heatmap(res: QKResult, labels: Labels | None = None, part: str = "terms") -> go.Figure:
    """Query-side component (rows) × key-side component (columns): each term of the score (``part``:
    ``terms``, ``content`` or ``positional``); the components with the largest terms, the rest summed as
    "other"."""
    L = resolve(labels)
    z = {"terms": res.terms, "content": res.content, "positional": res.positional}[part]
    rows = _top(np.abs(res.terms).sum(1), MAX_QK_ROWS)
    cols = _top(np.abs(res.terms).sum(0), MAX_QK_ROWS)
    other_r = [i for i in range(len(res.names)) if i not in rows]
    other_c = [j for j in range(len(res.names)) if j not in cols]
    grid = z[np.ix_(rows, cols)]
    ynames = [component_label(res.names[i], L) for i in rows]
    xnames = [component_label(res.names[j], L) for j in cols]
    if other_r:
        grid = np.vstack([grid, z[np.ix_(other_r, cols)].sum(0)])
        ynames.append(L("comp_other"))
    if other_c:
        extra = z[np.ix_(rows + other_r if other_r else rows, other_c)]
        col = extra[: len(rows)].sum(1)
        if other_r:
            col = np.append(col, extra[len(rows) :].sum())
        grid = np.hstack([grid, col[:, None]])
        xnames.append(L("comp_other"))
    top = float(np.abs(grid).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=xnames,
            y=ynames,
            zmin=-top,
            zmax=top,
            colorscale="RdBu",
            reversescale=True,
            text=np.round(grid, 3),
            texttemplate="%{text}",
            hovertemplate=L("qk_hover"),
            colorbar={"title": L("qk_bar")},
        )
    )
    fig.update_layout(
        title=L(
            f"qk_title_{part}",
            layer=res.layer,
            head=res.head,
            qpos=f"{res.query} {_esc(res.tokens[res.query])}",
            kpos=f"{res.key} {_esc(res.tokens[res.key])}",
        ),
        xaxis={"title": L("qk_key_side"), "type": "category"},
        yaxis={"title": L("qk_query_side"), "type": "category", "autorange": "reversed"},
        height=max(380, 30 * len(ynames) + 180),
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig
