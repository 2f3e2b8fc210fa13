"""The Explain page's information-flow section: the contribution graph (τ, full graph / route, a node's logit
lens, top heads linked to the Attention page and to patching) and QK attribution of one head, query and key.
Called from ui.views.explain; both computations run through ``ui.jobs.run_on_click`` (one forward pass each,
so they start as soon as they are shown, in the queue, their results kept)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from llmviz.estimate import estimate, forward_work
from llmviz.explain.decompose import MAX_FLOW_TOKENS
from llmviz.explain.flow import DEFAULT_TAU, build_graph, information_flow, node_lens, parse_node, top_heads
from llmviz.explain.qk_attribution import qk_attribution
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.report import export_name
from llmviz.viz import flow as viz
from ui.common import export_buttons, plot
from ui.i18n import fig_labels, t
from ui.jobs import run_on_click
from ui.links import link_for, presenter_mode, view_state
from ui.text import t_text


def _node_name(nid: str, tokens: list[str]) -> str:
    kind, layer, position = parse_node(nid)
    return t("explain.flow_node_" + kind, layer=layer, position=position, token=tokens[position])


def render(loaded: LoadedModel, text: str) -> None:
    """The graph for ``text``, then QK attribution."""
    facts = loaded.facts
    st.caption(t("explain.flow_help"))
    est = estimate(loaded, "flow", forward_work(min(MAX_FLOW_TOKENS, 32), rows=3, calls=3))
    res = run_on_click(
        "ex_flow_run",
        t("explain.flow_run"),
        information_flow,
        loaded,
        text,
        inputs=[loaded.spec, text],
        kind="explain",
        estimate_s=est,
        auto=True,
        button=False,
        shared=True,
    )
    if res is None:
        return
    st.caption(t("explain.flow_linearised_" + res.norm_style))
    if res.truncated:
        st.warning(t("explain.flow_truncated", n=res.n_tokens_original, max=MAX_FLOW_TOKENS))
    st.success(t("explain.flow_check", err=f"{res.max_rel_error:.1e}", s=f"{res.seconds:.1f}"))
    T = len(res.tokens)
    c1, c2, c3 = st.columns(3)
    tau = c1.slider(
        t("explain.flow_tau"), 0.0, 0.5, DEFAULT_TAU, 0.01, key="ex_flow_tau", help=t("explain.flow_tau_help")
    )
    mode = c2.radio(
        t("explain.flow_mode"),
        ("route", "full"),
        key="ex_flow_mode",
        horizontal=True,
        format_func=lambda m: t(f"explain.flow_mode_{m}"),
        help=t("explain.flow_mode_help"),
    )
    position = c3.selectbox(
        t("explain.flow_position"),
        list(range(T)),
        index=T - 1,
        key=f"ex_flow_pos_{T}",
        format_func=lambda i: f"{i} {res.tokens[i]}",
        help=t("explain.flow_position_help"),
    )
    graph = build_graph(res, tau, mode == "route", position)
    if res.predictions[position]:
        st.markdown(t_text("explain.flow_predicts", token=res.predictions[position], position=position))
    fig = viz.flow_graph_figure(res, graph, labels=fig_labels())
    name = export_name("explain", facts.model_id, "information-flow", f"tau-{tau:.2f}", mode)
    plot(fig, key="ex_flow_fig", export_name=name)
    st.caption(t("explain.flow_counts", nodes=len(graph.nodes), edges=len(graph.edges)))
    _node_inspector(loaded, res, graph)
    heads = top_heads(res, graph)
    _heads_table(res, heads, text)
    export_buttons(
        "ex_flow_exp",
        fig=fig,
        data={"nodes": graph.nodes, "edges": graph.edges},
        stem=name,
        meta={**graph.meta, "tau": tau, "route_only": graph.route_only, "model": facts.model_id},
    )
    st.divider()
    qk_section(loaded, text, res, heads, position)


def _node_inspector(loaded: LoadedModel, res, graph) -> None:
    ids = [n["id"] for n in graph.nodes]
    nid = st.selectbox(
        t("explain.flow_node"),
        ids,
        index=ids.index(graph.output),
        key="ex_flow_node",
        format_func=lambda n: _node_name(n, res.tokens),
        help=t("explain.flow_node_help"),
    )
    if nid is None or nid not in ids:
        return
    c1, c2 = st.columns(2)
    with c1:
        if loaded.facts.kind == CAUSAL_LM:
            lens = node_lens(loaded, res, nid)
            st.caption(t("explain.flow_node_lens"))
            st.dataframe(
                pd.DataFrame(lens, columns=[t("explain.flow_col_token"), t("explain.flow_col_prob")]),
                hide_index=True,
            )
        else:
            st.info(t("explain.flow_node_no_lens"))
    with c2:
        into = [e for e in graph.edges if e["target"] == nid]
        if into:
            st.caption(t("explain.flow_node_inputs"))
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("explain.flow_col_from"): _node_name(e["source"], res.tokens),
                            t("explain.flow_col_kind"): t(f"explain.flow_kind_{e['kind']}"),
                            t("explain.flow_col_weight"): round(e["weight"], 3),
                            t("explain.flow_col_head"): "" if e["head"] is None else f"h{e['head']}",
                            t("explain.flow_col_attention"): None
                            if e["attention"] is None
                            else round(e["attention"], 3),
                        }
                        for e in sorted(into, key=lambda e: -e["weight"])
                    ]
                ),
                hide_index=True,
            )


def _heads_table(res, heads: list[dict], text: str) -> None:
    st.markdown(f"**{t('explain.flow_top_heads')}**")
    if not heads:
        st.info(t("explain.flow_no_heads"))
        return
    rows = [
        {
            t("explain.flow_col_head"): f"L{h['layer']}·h{h['head']}",
            t("explain.flow_col_importance"): round(h["importance"], 3),
            t("explain.flow_col_edge"): f"{h['query']} {res.tokens[h['query']]} ← {h['key']} {res.tokens[h['key']]}",
            t("explain.flow_col_attention"): round(h["attention"], 3),
            t("explain.flow_col_attention_link"): link_for(
                "attention", view_state({"view": "head", "layer": h["layer"], "head": h["head"], "text": text})
            ),
            t("explain.flow_col_patch_link"): link_for("intervene", view_state({"section": "patching", "text": text})),
        }
        for h in heads
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            t("explain.flow_col_attention_link"): st.column_config.LinkColumn(display_text=t("explain.flow_open_head")),
            t("explain.flow_col_patch_link"): st.column_config.LinkColumn(display_text=t("explain.flow_open_patch")),
        },
    )
    st.caption(t("explain.flow_heads_help"))


# ------------------------------------------------------------------ QK attribution
def qk_section(loaded: LoadedModel, text: str, res, heads: list[dict], position: int) -> None:
    st.subheader(t("explain.qk_heading"))
    st.caption(t("explain.qk_help"))
    # start on the most important head whose strongest edge reads into the output token (else the first one)
    into_output = [h for h in heads if h["query"] == position]
    first = (into_output or heads or [{"layer": res.n_layers - 1, "head": 0, "query": position, "key": 0}])[0]
    T = len(res.tokens)
    c = st.columns(4)
    layer = c[0].number_input(t("explain.qk_layer"), 0, res.n_layers - 1, int(first["layer"]), key="ex_qk_layer")
    head = c[1].number_input(t("explain.qk_head"), 0, res.n_heads - 1, int(first["head"]), key="ex_qk_head")
    query = c[2].selectbox(
        t("explain.qk_query"), list(range(T)), index=int(first["query"]), key=f"ex_qk_query_{T}",
        format_func=lambda i: f"{i} {res.tokens[i]}",
    )  # fmt: skip
    key = c[3].selectbox(
        t("explain.qk_key"), list(range(T)), index=int(first["key"]), key=f"ex_qk_key_{T}",
        format_func=lambda i: f"{i} {res.tokens[i]}",
    )  # fmt: skip
    per_head = True
    if not presenter_mode():
        per_head = (
            st.radio(
                t("explain.qk_split"),
                ("head", "layer"),
                key="ex_qk_split",
                horizontal=True,
                format_func=lambda s: t(f"explain.qk_split_{s}"),
            )
            == "head"
        )
    qk = run_on_click(
        "ex_qk_run",
        t("explain.qk_run"),
        qk_attribution,
        loaded,
        text,
        int(layer),
        int(head),
        int(query),
        int(key),
        per_head,
        inputs=[loaded.spec, text, int(layer), int(head), int(query), int(key), per_head],
        kind="explain",
        auto=True,
        button=False,
        shared=True,
    )
    if qk is None:
        return
    m = st.columns(4)
    m[0].metric(t("explain.qk_score"), f"{qk.score:.3f}")
    m[1].metric(t("explain.qk_content"), f"{qk.content.sum():.3f}")
    m[2].metric(t("explain.qk_positional"), f"{qk.positional.sum():.3f}" if qk.rope else "—")
    m[3].metric(t("explain.qk_weight"), f"{qk.attention:.3f}")
    qn, kn, term = qk.top_terms(1)[0]
    L = fig_labels()
    st.markdown(
        t_text(
            "explain.qk_summary",
            score=f"{qk.score:.3f}",
            q=viz.component_label(qn, L),
            k=viz.component_label(kn, L),
            term=f"{term:.3f}",
        )
    )
    parts = ("terms", "content", "positional") if qk.rope else ("terms",)
    part = st.radio(
        t("explain.qk_part"), parts, key="ex_qk_part", horizontal=True, format_func=lambda p: t(f"explain.qk_part_{p}")
    )
    fig = viz.qk_heatmap(qk, labels=L, part=part)
    name = export_name("explain", loaded.facts.model_id, "qk-attribution", f"L{qk.layer}h{qk.head}")
    plot(fig, key="ex_qk_fig", export_name=name)
    st.caption(t("explain.qk_check", err=f"{qk.softmax_error:.1e}"))
    if not qk.rope:
        st.caption(t("explain.qk_no_rope"))
    export_buttons(
        "ex_qk_exp",
        fig=fig,
        data=pd.DataFrame(qk.rows()),
        stem=name,
        meta={**qk.params(), "model": loaded.facts.model_id},
    )
