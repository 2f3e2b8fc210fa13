"""Views of the Attention page: head statistics, heatmaps, rollout, offline bertviz, the formula step by
step, the neuron view, exports. pages/attention.py is the router; every function here takes what it draws
as arguments (an :class:`AttentionView`), none reads the page's globals.

The forward pass that returns the attention weights is light (one pass) and kept by Streamlit's caches here;
no heavy action on this page starts on a click."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from llmviz.attention import extract as A
from llmviz.attention.export import long_frame, stats_frame, to_json, to_npz
from llmviz.attention.steps import MAX_STEP_TOKENS, formula_steps, neuron_view
from llmviz.errors import LlmvizError
from llmviz.i18n import labels as labels_in
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.report import export_name
from llmviz.viz import attention as viz
from llmviz.viz import bertviz_offline as bertviz
from llmviz.viz import sliding
from ui.common import export_buttons, plot
from ui.i18n import fig_labels, t
from ui.links import presenter_mode, to_url
from ui.text import show_error, show_notice
from ui.views.attention_parts import translator as translator_view  # noqa: F401 (the router's translator views)

DEFAULT_TEXT = "The animal didn't cross the street because it was too tired."
PENDING = "att_pending"  # (layer, head) clicked in a statistic heatmap, applied before the inputs are drawn


# cache_resource, not cache_data: smollm2 at 512 tokens returns 30x9x512x512 float32 (283 MB), which
# cache_data would pickle and copy on every rerun. Results are never mutated by the page.
@st.cache_resource(max_entries=4, show_spinner=False)
def _extract(_loaded, spec: str, text: str, text_b: str | None) -> A.AttentionResult:
    return A.extract_attention(_loaded, text, text_b)


@st.cache_resource(max_entries=4, show_spinner=False)
def _hidden(_result, spec: str, text: str, text_b: str | None) -> A.AttentionResult:
    return A.without_special(_result)


@st.cache_data(max_entries=16, show_spinner=False)
def _stats(_shown, spec: str, text: str, text_b: str | None, hide: bool) -> dict:
    return A.head_statistics(_shown.attention, _shown.special_mask)


@st.cache_data(max_entries=16, show_spinner=False)
def _steps(_loaded, spec: str, text: str, text_b: str | None, layer: int, head: int):
    return formula_steps(_loaded, text, layer, head, text_b=text_b)


@dataclass(frozen=True)
class AttentionView:
    """What every view of the page draws from: the model, the inputs, the weights and the chosen head."""

    loaded: LoadedModel
    text: str
    text_b: str | None
    hide: bool
    result: A.AttentionResult  # as extracted
    shown: A.AttentionResult  # special tokens removed when ``hide``
    layer: int
    head: int

    @property
    def facts(self):
        return self.loaded.facts

    @property
    def stem(self) -> str:
        """Export names from what a file holds (llmviz.report.export_name), e.g. attention_smollm2_layer3-head2."""
        return export_name("attention", self.facts.model_id)

    @property
    def where(self) -> str:
        return f"layer{self.layer}-head{self.head}"

    def meta(self, view: str) -> dict:
        return {
            **self.result.params(),
            "hide_special": self.hide,
            "layer": self.layer,
            "head": self.head,
            "view": view,
            "model": self.facts.model_id,
        }


def url_fields(qp) -> dict:
    """The widgets the page's URL sets (``ui.links.url_state``) besides the view picker."""
    return {
        "att_text": qp("text", DEFAULT_TEXT),
        "att_text_b": qp("text_b", ""),
        "att_layer": qp("layer", 0, int),
        "att_head": qp("head", 0, int),
    }


def link_state(v: AttentionView, view: str) -> dict:
    """What "Link to this view" carries: the text (and second sentence), layer, head and view."""
    return {"text": v.text, "text_b": v.text_b, "layer": v.layer, "head": v.head, "view": view}


def inputs(loaded: LoadedModel) -> tuple | None:
    """The text (and second sentence), the special-token toggle and the weights of one forward pass:
    ``(text, text_b, hide, result, shown)``, or None (empty text or an error, with its message)."""
    text = st.text_area(t("attention.text"), key="att_text", height=80, help=t("attention.text_help", n=A.MAX_TOKENS))
    text_b = None
    if loaded.facts.kind != CAUSAL_LM:
        text_b = st.text_input(t("attention.text_b"), key="att_text_b", help=t("attention.text_b_help")) or None
    hide = st.toggle(t("attention.hide_special"), key="att_hide", help=t("attention.hide_special_help"))
    st.caption(t("attention.limit", n=A.MAX_TOKENS))
    if not text.strip():
        st.info(t("attention.empty"))
        return None
    try:
        with st.spinner(t("attention.running")):
            result = _extract(loaded, loaded.spec, text, text_b)
            shown = _hidden(result, loaded.spec, text, text_b) if hide else result
    except LlmvizError as err:
        show_error(err)
        return None
    if result.truncated:
        st.warning(t("attention.truncated", n=result.n_tokens, orig=result.n_tokens_original))
    return text, text_b, hide, result, shown


def _clamp(value: int, hi: int) -> int:
    return min(max(int(value), 0), hi)


def head_picker(loaded: LoadedModel, result: A.AttentionResult, qp) -> tuple[int, int]:
    """The layer and head inputs (a head clicked in a statistic heatmap opens here), with the layer's
    sliding-window and grouped-query notes; returns ``(layer, head)``."""
    facts, n_layers, n_heads = loaded.facts, result.n_layers, result.n_heads
    if PENDING in st.session_state:
        st.session_state["att_layer"], st.session_state["att_head"] = st.session_state.pop(PENDING)
    if "att_layer" not in st.session_state:
        st.session_state["att_layer"] = _clamp(qp("layer", 0, int), n_layers - 1)
        st.session_state["att_head"] = _clamp(qp("head", 0, int), n_heads - 1)
    # Another model may have left a layer/head this one does not have.
    st.session_state["att_layer"] = _clamp(st.session_state["att_layer"], n_layers - 1)
    st.session_state["att_head"] = _clamp(st.session_state["att_head"], n_heads - 1)
    c1, c2, _ = st.columns([1, 1, 3])
    layer = c1.number_input(
        t("attention.layer"),
        0,
        n_layers - 1,
        key="att_layer",
        help=t("attention.layer_help"),
        on_change=to_url("att_layer", "layer", "attention"),
    )
    head = c2.number_input(
        t("attention.head"),
        0,
        n_heads - 1,
        key="att_head",
        help=t("attention.head_help"),
        on_change=to_url("att_head", "head", "attention"),
    )
    if facts.layer_types:  # Gemma 3: sliding-window (local) and global layers
        w = facts.layer_window(int(layer))
        st.caption(
            t("attention.sliding_layer", layer=int(layer), w=w, n=result.n_tokens)
            if w
            else t("attention.global_layer", layer=int(layer), w=facts.sliding_window)
        )
    if facts.n_kv_heads < facts.n_heads:
        group = facts.n_heads // facts.n_kv_heads
        st.caption(t("attention.gqa", h=facts.n_heads, kv=facts.n_kv_heads, g=group, kvh=int(head) // group))
    return int(layer), int(head)


def _open_clicked_head(event, layer: int, head: int) -> None:
    """Clicking a cell of a statistic heatmap opens that head: the layer/head inputs are set on the
    next full run (a widget's state cannot change after it is drawn)."""
    points = (
        (event or {}).get("selection", {}).get("points", [])
        if isinstance(event, dict)
        else getattr(getattr(event, "selection", None), "points", [])
    )
    if points:
        clicked = (int(points[0]["y"]), int(points[0]["x"]))
        if clicked != (layer, head):
            st.session_state[PENDING] = clicked
            st.rerun(scope="app")


def _exports(v: AttentionView, view: str, key: str, fig, data, name: str, extra=None) -> None:
    """Export buttons, built only when asked: figure HTML embeds plotly.js and long tables get big."""
    with st.expander(t("attention.export")):
        if not st.toggle(t("attention.export_prepare"), key=f"{key}_on"):
            st.caption(t("attention.export_hint"))
            return
        try:
            frame = data() if callable(data) else data
        except ValueError as err:  # too many rows for CSV: NPZ in the statistics view has everything
            show_notice(err)
            frame = None
        export_buttons(key, fig=fig, data=frame, stem=f"{v.stem}_{name}", meta=v.meta(view))
        if extra is not None:
            extra()


def _head_title(v: AttentionView) -> str:
    return fig_labels()("layer_head_title", layer=v.layer, head=v.head)


def show_stats(v: AttentionView) -> None:
    shown, facts, stem = v.shown, v.facts, v.stem
    stats = _stats(shown, v.loaded.spec, v.text, v.text_b, v.hide)
    name = st.radio(
        t("attention.statistic"),
        list(A.STATISTICS),
        horizontal=True,
        key="att_stat",
        format_func=lambda s: t(f"attention.stat_{s}"),
    )
    st.caption(t(f"attention.stat_{name}_desc"))
    fig = sliding.mark_sliding_layers(
        viz.statistic_heatmap(stats[name], name, selected=(v.layer, v.head), labels=fig_labels()),
        facts.layer_types,
        facts.sliding_window,
        labels=fig_labels(),
    )
    chart = plot(
        fig, key="att_stat_chart", on_select="rerun", selection_mode="points", export_name=f"{stem}_{name}-by-head"
    )
    _open_clicked_head(chart, v.layer, v.head)
    st.caption(t("attention.click_to_open"))
    st.info(t("attention.stats_caveat"))
    if not presenter_mode():
        top = A.top_heads(stats, name, k=5, largest=name != "entropy")
        st.dataframe(pd.DataFrame(top, columns=["layer", "head", name]), hide_index=True)
    plot(
        sliding.mark_window(
            viz.attention_heatmap(shown.tokens, shown.attention[v.layer, v.head], _head_title(v), labels=fig_labels()),
            len(shown.tokens),
            facts.layer_window(v.layer),
            labels=fig_labels(),
        ),
        key="att_stat_head",
        export_name=f"{stem}_{v.where}",
    )
    meta = v.meta("stats")

    def raw_downloads() -> None:
        c = st.columns(2)
        c[0].download_button(
            "Attention + statistics (NPZ)",
            lambda: to_npz(shown, stats, meta),
            f"{stem}_all-heads.npz",
            "application/octet-stream",
            key="att_npz",
        )
        c[1].download_button(
            "Attention + statistics (JSON)",
            lambda: to_json(shown, stats, extra=meta),
            f"{stem}_all-heads.json",
            "application/json",
            key="att_json_all",
        )

    _exports(v, "stats", "att_stats_x", fig, stats_frame(stats), f"{name}-by-head", extra=raw_downloads)


def show_head(v: AttentionView) -> None:
    shown = v.shown
    fig = viz.attention_heatmap(shown.tokens, shown.attention[v.layer, v.head], _head_title(v), labels=fig_labels())
    sliding.mark_window(fig, len(shown.tokens), v.facts.layer_window(v.layer), labels=fig_labels())
    plot(fig, key="att_head_chart", export_name=f"{v.stem}_{v.where}")
    st.caption(t("attention.head_caption"))
    _exports(v, "head", "att_head_x", fig, lambda: long_frame(shown, [v.layer], [v.head]), v.where)


def show_layer(v: AttentionView) -> None:
    shown = v.shown
    fig = viz.layer_small_multiples(shown.tokens, shown.attention[v.layer], v.layer, labels=fig_labels())
    plot(fig, key="att_layer_chart", export_name=f"{v.stem}_layer{v.layer}-all-heads")
    _exports(v, "layer", "att_layer_x", fig, lambda: long_frame(shown, [v.layer]), f"layer{v.layer}-all-heads")


def show_rollout(v: AttentionView) -> None:
    shown = v.shown
    rolled = A.rollout(shown.attention)
    fig = viz.rollout_heatmap(shown.tokens, rolled, labels=fig_labels())
    plot(fig, key="att_rollout_chart", export_name=f"{v.stem}_rollout")
    st.latex(
        r"\hat A_\ell = \mathrm{norm}\!\left(\tfrac12\,\overline{A_\ell} + \tfrac12 I\right),\quad "
        r"R = \hat A_L \cdots \hat A_1"
    )
    st.info(t("attention.rollout_caveat"))
    frame = pd.DataFrame(rolled, columns=[f"{i}:{tok}" for i, tok in enumerate(shown.tokens)])
    frame.insert(0, "query", [f"{i}:{tok}" for i, tok in enumerate(shown.tokens)])
    _exports(v, "rollout", "att_rollout_x", fig, frame, "rollout")


def show_bertviz(v: AttentionView) -> None:
    shown, facts, layer = v.shown, v.facts, v.layer
    n_layers, n_heads = v.result.n_layers, v.result.n_heads
    kind = st.radio(
        t("attention.bertviz_kind"),
        ("head", "model"),
        horizontal=True,
        key="att_bv_kind",
        format_func=lambda k: t(f"attention.bertviz_{k}"),
    )
    layers = list(range(n_layers))
    heads = list(range(n_heads))
    if not presenter_mode():
        layers = st.multiselect(
            t("attention.bertviz_layers"),
            layers,
            default=bertviz.default_layers(kind, n_layers, layer),
            key=f"att_bv_layers_{kind}_{facts.model_id}",
            help=t("attention.bertviz_layers_help"),
        ) or [layer]
        heads = (
            st.multiselect(t("attention.bertviz_heads"), heads, default=heads, key=f"att_bv_heads_{facts.model_id}")
            or heads
        )
    b_start = None
    if v.text_b is not None and shown.segment is not None and shown.segment.any():
        b_start = int(np.argmax(shown.segment > 0))
    n = min(len(shown.tokens), bertviz.view_token_limit(kind, len(layers), len(heads)))
    if n < len(shown.tokens):
        st.warning(t(f"attention.bertviz_cut{'_model' if kind == 'model' else ''}", n=n, layers=len(layers)))
    frag = bertviz.view_fragment(
        shown.tokens[:n],
        shown.attention[:, :, :n, :n],
        kind,
        sentence_b_start=b_start if b_start is not None and b_start < n else None,
        layers=layers,
        heads=heads,
        layer=layer if layer in layers else None,
    )
    doc = bertviz.standalone_html(
        frag,
        title=f"llmviz {kind} view - {facts.model_id}",
        note=f"{facts.model_id} · {len(shown.tokens)} tokens · weights rounded to 3 decimals",
    )
    if kind == "model":  # every layer, one below the other: a scroll area, the frame as tall as its drawing
        with st.container(height=bertviz.MODEL_VIEW_SCROLL_PX, key="att_bv_scroll"):
            st.iframe(doc, height="content")
    else:
        st.iframe(doc, height="content")
    st.caption(t("attention.bertviz_caption", kb=len(frag) / 1024))
    st.download_button(
        t("attention.bertviz_download"), doc, f"{v.stem}_bertviz-{kind}-view.html", "text/html", key="att_bv_download"
    )


def _formula_steps(v: AttentionView, s) -> list:
    """(formula, matrix, (title, English title), rows, columns) of every step of the formula for ``s``."""
    facts, toks, dk = v.facts, s.tokens, s.q.shape[1]
    dims = [str(i) for i in range(dk)]
    L, E = fig_labels(), labels_in("en")  # step titles in the reader's language, file names in English

    def lab(key: str, **fmt) -> tuple[str, str]:
        return L(key, **fmt), E(key, **fmt)

    x_key = {"llama": "step_x_rmsnorm", "gemma3": "step_x_rmsnorm", "gpt2": "step_x_layernorm"}.get(s.family, "step_x")
    steps = [
        (r"X \in \mathbb{R}^{T\times d}", s.x, lab(x_key), toks, None),
        (r"W_Q^{(h)}", s.w_q, lab("step_wq", head=s.head), None, dims),
        (r"W_K^{(h)}", s.w_k, lab("step_wk", kv_head=s.kv_head), None, dims),
        (r"W_V^{(h)}", s.w_v, lab("step_wv", kv_head=s.kv_head), None, dims),
        (r"Q = X W_Q" + (r" + b_Q" if s.b_q is not None else ""), s.q_raw, ("Q", "Q"), toks, dims),
        (r"K = X W_K", s.k_raw, ("K", "K"), toks, dims),
    ]
    if s.q_lin is not None:  # Gemma 3: Q and K head vectors are RMS-normalised before RoPE
        steps[-2:] = [
            (r"Q = X W_Q", s.q_lin, ("Q", "Q"), toks, dims),
            (r"K = X W_K", s.k_lin, ("K", "K"), toks, dims),
            (
                r"\hat Q = \frac{Q}{\sqrt{\mathrm{mean}(Q^2)+\epsilon}}\odot(1+w_q)",
                s.q_raw,
                lab("step_q_norm"),
                toks,
                dims,
            ),
            (
                r"\hat K = \frac{K}{\sqrt{\mathrm{mean}(K^2)+\epsilon}}\odot(1+w_k)",
                s.k_raw,
                lab("step_k_norm"),
                toks,
                dims,
            ),
        ]
    if s.cos is not None:
        steps += [
            (r"\tilde Q = Q\odot\cos + \mathrm{rot}(Q)\odot\sin", s.q, lab("step_q_rope"), toks, dims),
            (r"\tilde K = K\odot\cos + \mathrm{rot}(K)\odot\sin", s.k, lab("step_k_rope"), toks, dims),
        ]
    steps += [
        (r"V = X W_V", s.v, ("V", "V"), toks, dims),
        (r"S = Q K^\top", s.scores, lab("step_scores"), toks, toks),
        (
            rf"S \cdot s \quad (s = {s.scaling:.4g}"
            + (
                rf" = 1/\sqrt{{{dk}}})"
                if abs(s.scaling * dk**0.5 - 1) < 1e-6
                else rf" = 1/\sqrt{{{facts.query_pre_attn_scalar:g}}})"
                if facts.query_pre_attn_scalar
                else ")"
            ),
            s.scaled,
            lab("step_scaled"),
            toks,
            toks,
        ),
        (
            rf"S \cdot s + M \quad (M_{{ij}}=-\infty \text{{ if }} j>i \text{{ or }} i-j \ge {s.sliding_window})"
            if s.sliding_window
            else r"S/\sqrt{d_k} + M \quad (M_{ij}=-\infty,\ j>i)"
            if facts.kind == CAUSAL_LM
            else r"M = 0 \text{ (no mask)}",
            s.scaled + s.mask,
            lab("step_masked"),
            toks,
            toks,
        ),
        (r"A = \mathrm{softmax}(S/\sqrt{d_k} + M)", s.weights, lab("step_weights"), toks, toks),
        (r"\mathrm{head}_h = A V", s.head_out, lab("step_head_out"), toks, dims),
        (r"\mathrm{Concat}(\mathrm{head}_1..\mathrm{head}_H)", s.concat, lab("step_concat"), toks, None),
        (
            r"\mathrm{Concat}(\dots)\,W^O" + (" + b_O" if s.b_o is not None else ""),
            s.projected,
            lab("step_block"),
            toks,
            None,
        ),
    ]
    if s.family == "bert":
        steps.append(
            (
                r"\mathrm{LayerNorm}(X + \mathrm{Concat}(\dots)W^O + b_O)",
                s.block_output,
                lab("step_add_norm"),
                toks,
                None,
            )
        )
    return steps


def show_formula(v: AttentionView) -> None:
    if v.result.n_tokens > MAX_STEP_TOKENS:
        st.warning(t("attention.formula_cut", n=MAX_STEP_TOKENS))
    with st.spinner(t("attention.running")):
        s = _steps(v.loaded, v.loaded.spec, v.text, v.text_b, v.layer, v.head)
    ok = s.attention_max_abs_diff <= 1e-5
    (st.success if ok else st.warning)(t("attention.formula_check", a=s.attention_max_abs_diff, b=s.block_max_abs_diff))
    if s.rope_theta is not None:
        st.caption(t("attention.formula_rope_base", theta=s.rope_theta, layer=s.layer))
    L = fig_labels()
    for i, (formula, matrix, (label, english), rows, cols) in enumerate(_formula_steps(v, s)):
        left, right = st.columns([1, 2])
        left.markdown(f"**{i + 1}. {label}**")
        left.latex(formula)
        with right:
            fig = viz.matrix_heatmap(matrix, label, rows, cols, labels=L)
            if rows is s.tokens and cols is s.tokens:
                sliding.mark_window(fig, len(s.tokens), s.sliding_window, labels=L)
            name = f"{v.stem}_{v.where}_{export_name(f'step{i + 1} {english}')}"
            plot(fig, key=f"att_step_{i}", export_name=name)


def show_neuron(v: AttentionView) -> None:
    with st.spinner(t("attention.running")):
        s = _steps(v.loaded, v.loaded.spec, v.text, v.text_b, v.layer, v.head)
    qi = st.selectbox(
        t("attention.query_token"),
        list(range(len(s.tokens))),
        key=f"att_neuron_q_{v.facts.model_id}_{len(s.tokens)}",
        format_func=lambda i: f"{i}: {s.tokens[i]}",
        index=min(len(s.tokens) - 1, 1),
    )
    nv = neuron_view(s, int(qi))
    fig = viz.neuron_figure(s.tokens, nv.products, nv.scores, nv.weights, s.tokens[int(qi)], labels=fig_labels())
    plot(fig, key="att_neuron_chart", export_name=f"{v.stem}_{v.where}_neuron-query{qi}")
    st.latex(r"\text{score}_j = \frac{1}{\sqrt{d_k}}\sum_{m=1}^{d_k} q_m\,k_{j,m}")
    st.caption(t("attention.neuron_caption"))
    frame = pd.DataFrame(nv.products, columns=[f"dim_{m}" for m in range(nv.products.shape[1])])
    frame.insert(0, "key_token", s.tokens)
    frame["score"], frame["weight"] = nv.scores, nv.weights
    _exports(v, "neuron", "att_neuron_x", fig, frame, f"{v.where}_neuron-query{qi}")


VIEWS = {
    "stats": show_stats,
    "head": show_head,
    "layer": show_layer,
    "rollout": show_rollout,
    "bertviz": show_bertviz,
    "formula": show_formula,
    "neuron": show_neuron,
}


@st.fragment
def render(view: str, v: AttentionView) -> None:
    """Draw ``view`` (a fragment: its own widgets rerun only it)."""
    try:
        VIEWS[view](v)
    except LlmvizError as err:
        show_error(err)
