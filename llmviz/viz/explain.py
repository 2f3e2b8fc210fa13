"""Figures for the Explain page: token colouring (HTML), method × token heatmaps, rank correlations,
logit lens and head-ablation heatmaps. Every token string is HTML-escaped before it reaches HTML or a
plotly label (plotly interprets a subset of HTML tags in text). Every label a reader sees comes from the
``figures`` catalogue through ``labels`` (:func:`llmviz.i18n.labels`; None = the default language), the
target's text too (:func:`llmviz.explain.targets.target_label` of the result's ``label_parts``)."""

from __future__ import annotations

import html
import math
import uuid

import numpy as np
import plotly.graph_objects as go

from llmviz.explain.ablation import AblationResult
from llmviz.explain.attribution import METHODS, Attribution
from llmviz.explain.logit_lens import LogitLensResult
from llmviz.explain.targets import target_label
from llmviz.i18n import Labels, resolve

POS, NEG = (214, 39, 40), (31, 119, 180)  # red = pushes the target up, blue = pushes it down


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _labels(tokens: list[str]) -> list[str]:
    """Unique, escaped axis labels: ``"3 the"``."""
    return [f"{i} {_esc(t)}" for i, t in enumerate(tokens)]


def normalised(res: Attribution) -> np.ndarray:
    """Scores divided by the largest |score| among non-special tokens: ``[T]`` in [-1, 1]."""
    free = res.scores[~res.special_mask] if (~res.special_mask).any() else res.scores
    top = float(np.max(np.abs(free))) if free.size else 0.0
    out = res.scores / top if top > 0 else np.zeros_like(res.scores)
    return np.clip(out, -1, 1)


def _title(method: str, L: Labels) -> str:
    return L.get(f"method_{method}", METHODS[method].title if method in METHODS else method)


def _target(res, L: Labels) -> str:
    """The target's text in the reader's language (the English ``label`` for results built by hand)."""
    parts = getattr(res, "label_parts", None)
    return target_label(parts, L) if parts else res.label


def token_html(results: list[Attribution], height_note: str = "", labels: Labels | None = None) -> str:
    """A self-contained HTML page: one line per method, each token's background coloured by its
    normalised score (red positive, blue negative); hover shows the raw score. Tokens are escaped."""
    L = resolve(labels)
    root = f"llmviz-explain-{uuid.uuid4().hex[:8]}"
    rows = []
    for res in results:
        norm = normalised(res)
        spans = []
        for i, (tok, raw, n) in enumerate(zip(res.tokens, res.scores, norm)):
            rgb = POS if n >= 0 else NEG
            alpha = 0.08 if res.special_mask[i] else abs(float(n))
            cls = "tok special" if res.special_mask[i] else "tok"
            spans.append(
                f'<span class="{cls}" data-score="{float(raw):.6g}" '
                f'style="background: rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.3f})" '
                f'title="{_esc(tok)}: {float(raw):.4g}">{_esc(tok)}</span>'
            )
        rows.append(
            f'<div class="row"><div class="method">{_esc(_title(res.method, L))}</div>'
            f'<div class="tokens">{"".join(spans)}</div></div>'
        )
    note = f'<p class="note">{_esc(height_note)}</p>' if height_note else ""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
#{root} {{ font-family: sans-serif; font-size: 15px; }}
#{root} .row {{ display: flex; align-items: baseline; margin: 6px 0; }}
#{root} .method {{ width: 190px; flex: none; color: #444; font-size: 13px; }}
#{root} .tokens {{ line-height: 2.1; }}
#{root} .tok {{ padding: 2px 3px; margin: 1px; border-radius: 3px; white-space: pre; border: 1px solid #ddd; }}
#{root} .special {{ color: #999; }}
#{root} .note {{ color: #666; font-size: 12px; }}
</style></head><body><div id="{root}">{"".join(rows)}{note}
<p class="note">{_esc(L("token_html_note"))}</p></div></body></html>"""


def method_heatmap(results: list[Attribution], labels: Labels | None = None) -> go.Figure:
    """Heatmap method × token of the normalised scores (hover: raw score)."""
    L = resolve(labels)
    z = np.stack([normalised(r) for r in results])  # [M, T]
    raw = np.stack([r.scores for r in results])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=_labels(results[0].tokens),
            y=[_esc(_title(r.method, L)) for r in results],
            customdata=raw,
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale="RdBu_r",
            hovertemplate=L("method_hover"),
            colorbar={"title": L("method_bar")},
        )
    )
    fig.update_layout(
        title=_esc(L("method_title", target=_target(results[0], L))),
        height=140 + 45 * len(results),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        yaxis={"autorange": "reversed"},
    )
    return fig


def spearman_figure(results: list[Attribution], rho: np.ndarray, labels: Labels | None = None) -> go.Figure:
    """Heatmap of the Spearman rank correlation between methods."""
    L = resolve(labels)
    names = [_esc(_title(r.method, L)) for r in results]
    text = [["–" if math.isnan(v) else f"{v:.2f}" for v in row] for row in rho]
    fig = go.Figure(
        go.Heatmap(
            z=np.nan_to_num(rho, nan=0.0),
            x=names,
            y=names,
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale="RdBu_r",
            text=text,
            texttemplate="%{text}",
            hovertemplate=L("spearman_hover"),
        )
    )
    fig.update_layout(
        title=L("spearman_title"),
        height=120 + 50 * len(results),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        yaxis={"autorange": "reversed"},
    )
    return fig


def _layer_names(res: LogitLensResult, L: Labels) -> list[str]:
    return [L("lens_embed") if n == "embed" else n for n in res.layer_names]


def logit_lens_heatmap(res: LogitLensResult, labels: Labels | None = None) -> go.Figure:
    """Layer × position: the top token after each layer (text) and its probability (colour)."""
    L = resolve(labels)
    text = [[_esc(t) for t in row] for row in res.top_tokens]
    fig = go.Figure(
        go.Heatmap(
            z=res.top_probs,
            x=_labels(res.tokens),
            y=_layer_names(res, L),
            text=text,
            texttemplate="%{text}",
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            hovertemplate=L("lens_hover"),
            colorbar={"title": L("lens_bar")},
        )
    )
    fig.update_layout(
        title=L("lens_title"),
        xaxis_title=L("input_position"),
        yaxis={"title": L("layer"), "type": "category"},
        xaxis={"type": "category"},
        height=max(350, 22 * len(res.layer_names) + 120),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def target_across_layers(res: LogitLensResult, labels: Labels | None = None) -> go.Figure:
    """Probability (left axis) and rank (right axis, log scale) of the target token at the last position."""
    L = resolve(labels)
    top_rank = max(int(np.max(res.target_ranks)), 10)
    names = _layer_names(res, L)
    fig = go.Figure()
    fig.add_scatter(x=names, y=res.target_probs, name=L("probability"), mode="lines+markers")
    fig.add_scatter(
        x=names,
        y=res.target_ranks,
        name=L("rank_top"),
        mode="lines+markers",
        yaxis="y2",
        line={"dash": "dot"},
    )
    fig.update_layout(
        title=_esc(L("lens_target_title", token=res.target_token)),
        xaxis={"title": L("layer"), "type": "category"},
        yaxis={"title": L("probability"), "rangemode": "tozero"},
        yaxis2={
            "title": L("rank_log"),
            "type": "log",
            "overlaying": "y",
            "side": "right",
            "range": [math.log10(top_rank * 1.5), -0.05],
            "tickvals": [10**k for k in range(int(math.log10(top_rank)) + 1)],
        },
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h"},
    )
    return fig


def ablation_heatmap(res: AblationResult, labels: Labels | None = None) -> go.Figure:
    """Layer × head: change in the target score when that head's output is zeroed (NaN cells, not yet run in
    a partial result, stay blank)."""
    L = resolve(labels)
    z = res.head_delta
    finite = np.abs(z[np.isfinite(z)])
    lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"h{h}" for h in range(z.shape[1])],
            y=[f"L{i}" for i in range(z.shape[0])],
            zmin=-lim,
            zmax=lim,
            zmid=0,
            colorscale="RdBu_r",
            hovertemplate=L("ablation_hover"),
            colorbar={"title": L("delta_score")},
        )
    )
    fig.update_layout(
        title=_esc(L("ablation_title", target=_target(res, L))),
        xaxis_title=L("head"),
        yaxis_title=L("layer"),
        height=max(320, 18 * z.shape[0] + 120),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        yaxis={"autorange": "reversed"},
    )
    return fig


def layer_ablation_bar(res: AblationResult, labels: Labels | None = None) -> go.Figure:
    """Change in the target score when every head of a layer is zeroed."""
    L = resolve(labels)
    fig = go.Figure(
        go.Bar(
            x=[f"L{i}" for i in range(len(res.layer_delta))],
            y=res.layer_delta,
            hovertemplate=L("layer_ablation_hover"),
        )
    )
    fig.update_layout(
        title=L("layer_ablation_title"),
        xaxis_title=L("layer"),
        yaxis_title=L("delta_score"),
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig
