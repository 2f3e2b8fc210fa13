"""Bias probes: template fills, minimal pairs with CIs, counterfactual generations, WEAT/SEAT,
projection debiasing, caveats. Thin: widgets -> llmviz.bias.* -> llmviz.viz.bias figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from llmviz.bias import counterfactual as CF
from llmviz.bias import mitigation as MIT
from llmviz.bias import pairs as P
from llmviz.bias import stats as S
from llmviz.bias import templates as T
from llmviz.bias import weat as W
from llmviz.bias.pairs_data import MAX_UPLOAD_BYTES, PairSet, load_pairs, parse_pairs, starter_pairs
from llmviz.errors import LlmvizError
from llmviz.models.loading import CAUSAL_LM, ENCODER, MASKED_LM
from llmviz.report import export_name
from llmviz.viz import bias as V
from ui import bias_views as BV
from ui.common import current_model, export_buttons, plot, show_error, show_notice, t_text
from ui.i18n import fig_labels, t
from ui.jobs import cached, heavy
from ui.links import copy_link, presenter_mode, qp, to_url, url_state

SECTIONS = ("templates", "pairs", "counterfactual", "weat", "mitigation", "stereoset", "runs")


def _terms(text: str) -> list[str]:
    return [x.strip() for x in text.replace(",", "\n").splitlines() if x.strip()]


@st.cache_data(max_entries=32, show_spinner=False)
def _template(_loaded, spec, template, groups, targets):
    res = T.template_probe(_loaded, template, list(groups), list(targets))
    BV.REC.record_template(_loaded, res, {"template": template, "page": "bias"})  # run store (never raises)
    return res


@st.cache_data(max_entries=8, show_spinner=False)
def _detail(_loaded, spec, more, less):
    return P.pair_detail(_loaded, more, less)


@st.cache_data(max_entries=16, show_spinner=False)
def _weat(_loaded, spec, X, Y, A, B, mode, pooling, templates, names):
    res = W.weat_test(_loaded, list(X), list(Y), list(A), list(B), mode, pooling, list(templates) or None, dict(names))
    BV.record_weat(_loaded, res)  # run store; a failing store is ignored here (cached call)
    return res


@st.cache_data(max_entries=8, show_spinner=False)
def _mitigate(_loaded, spec, pairs, X, Y, A, B, neutral, layer, mode, pooling):
    return MIT.mitigation_demo(
        _loaded, [list(p) for p in pairs], list(X), list(Y), list(A), list(B), list(neutral), layer, mode, pooling
    )


def _needs_lm(loaded, what: str) -> bool:
    """Explain (and return True) when an encoder without an LM head is loaded."""
    if loaded.facts.kind == ENCODER:
        st.info(t_text("bias.needs_lm", model=loaded.facts.model_id, what=what))
        return True
    return False


def _request(what: str) -> None:
    """Button callback: remember the request in session state (survives the rerun the click starts)."""
    st.session_state[f"bias_go_{what}"] = True


def _notices(items) -> None:
    for n in items or []:
        show_notice(n)


# ---------------------------------------------------------------- sections
def section_templates(loaded) -> None:
    st.markdown(t("bias.templates_intro"))
    if _needs_lm(loaded, t("bias.section_templates")):
        return
    template = st.text_input(t("bias.template"), T.EXAMPLE_TEMPLATE, key="bias_tpl", help=t("bias.template_help"))
    c1, c2 = st.columns(2)
    groups = c1.text_area(
        t("bias.groups"),
        "\n".join(T.EXAMPLE_GROUPS),
        key="bias_tpl_groups",
        height=120,
        help=t("bias.groups_help", n=T.MAX_GROUPS),
    )
    targets = c2.text_area(
        t("bias.targets"),
        "\n".join(T.EXAMPLE_TARGETS),
        key="bias_tpl_targets",
        height=120,
        help=t("bias.targets_help", n=T.MAX_TARGETS),
    )
    try:
        with st.spinner(t("bias.running")):
            res = cached(
                "templates",
                _template,
                loaded,
                loaded.spec,
                template,
                tuple(_terms_lines(groups)),
                tuple(_terms_lines(targets)),
            )
    except LlmvizError as err:
        show_error(err)
        return
    _notices(res.notices)
    st.caption(t("bias.templates_metric_mlm") if res.method == "mlm_kurita" else t("bias.templates_metric_causal"))
    fig = V.template_heatmap(res, labels=fig_labels())
    name = export_name("templates", loaded.facts.model_id, "by-group")
    plot(fig, key="bias_tpl_heat", export_name=name)
    if len(res.groups) >= 2:
        c1, c2 = st.columns(2)
        a = c1.selectbox(
            t("bias.group_a"), range(len(res.groups)), format_func=lambda i: res.groups[i], key="bias_tpl_a"
        )
        b = c2.selectbox(
            t("bias.group_b"), range(len(res.groups)), index=1, format_func=lambda i: res.groups[i], key="bias_tpl_b"
        )
        plot(
            V.template_ratio_bars(res, a, b, labels=fig_labels()),
            key="bias_tpl_bars",
            export_name=export_name("templates", loaded.facts.model_id, res.groups[a], "vs", res.groups[b]),
        )
    st.markdown(f"**{t('bias.ranking')}**")
    st.dataframe(
        pd.DataFrame(res.ranking()[:10], columns=["target", "spread (max − min)", "highest for"]), hide_index=True
    )
    export_buttons(
        "bias_tpl_exp",
        fig,
        pd.DataFrame(res.to_records()),
        name,
        {"model": loaded.spec, "template": res.template, "method": res.method},
    )


def _pair_source() -> PairSet | None:
    from llmviz import serving

    sources = ["starter", "upload"] + (["path"] if serving.paths_allowed("data") else [])  # shared server: uploads
    src = st.radio(
        t("bias.pairs_source"),
        sources,
        horizontal=True,
        key="bias_pairs_src",
        format_func=lambda s: t(f"bias.pairs_source_{s}"),
    )
    if src == "starter":
        st.caption(t("bias.starter_note"))
        return starter_pairs()
    if src == "upload":
        up = st.file_uploader(
            t("bias.upload"),
            type=["csv"],
            key="bias_pairs_upload",
            help=t("bias.upload_help", mb=MAX_UPLOAD_BYTES // 10**6),
        )
        return parse_pairs(up.getvalue(), up.name) if up is not None else None
    path = st.text_input(t("bias.path"), key="bias_pairs_path", placeholder="/data/crows_pairs_anonymized.csv")
    return load_pairs(path) if path.strip() else None


def section_pairs(loaded) -> None:
    st.markdown(t("bias.pairs_intro"))
    if _needs_lm(loaded, t("bias.section_pairs")):
        return
    try:
        data = _pair_source()
    except LlmvizError as err:
        show_error(err)
        return
    if data is None:
        st.info(t("bias.pairs_need_data"))
        return
    _notices(data.notices)
    frame = data.frame
    if len(frame) > P.MAX_PAIRS_UI:
        st.warning(t("bias.pairs_cut", n=P.MAX_PAIRS_UI, total=len(frame)))
        frame = frame.head(P.MAX_PAIRS_UI)
    st.caption(t("bias.pairs_loaded", n=len(frame), types=frame["bias_type"].nunique()))
    key = (loaded.spec, data.sha256, len(frame))
    st.button(t("bias.run_pairs"), key="bias_pairs_run", type="primary", on_click=_request, args=("pairs",))
    if st.session_state.pop("bias_go_pairs", False):
        bar = st.progress(0.0, text=t("bias.scoring"))
        done = [0]

        def tick(n):
            done[0] += n
            bar.progress(min(done[0] / len(frame), 1.0), text=t("bias.scoring_n", i=done[0], n=len(frame)))

        try:
            with heavy("pairs") as job:  # the server-wide queue; Stop or a rerun cancels at the next batch
                st.session_state["bias_pairs_res"] = (key, P.score_pairs(loaded, frame, progress=job.wrap(tick)))
        except LlmvizError as err:
            show_error(err)
            return
        bar.empty()
        BV.record_pairs(loaded, st.session_state["bias_pairs_res"][1], data)
    stored = st.session_state.get("bias_pairs_res")
    if not stored or stored[0] != key:
        st.info(t("bias.pairs_press"))
        return
    res = stored[1]
    summary = res.summary()
    c1, c2, c3 = st.columns(3)
    c1.metric(t("bias.pct_stereo"), f"{summary['pct_stereotype']:.1f} %")
    c2.metric(t("bias.ci95"), f"{summary['ci95'][0]:.1f} – {summary['ci95'][1]:.1f} %")
    c3.metric(t("bias.n_pairs"), summary["n"])
    warn = S.ci_width_warning(summary["n"])
    if warn:
        show_notice(warn)
    st.caption(t("bias.pairs_metric_mlm") if res.method == "mlm_pll" else t("bias.pairs_metric_causal"))
    fig = V.pairs_summary(summary, labels=fig_labels())
    data_name = Path(data.source).stem  # the file the pairs came from, e.g. crows_pairs_anonymized
    name = export_name(data_name, loaded.facts.model_id, "by-category")
    plot(fig, key="bias_pairs_sum", export_name=name)
    plot(
        V.score_diff_hist(res, labels=fig_labels()),
        key="bias_pairs_hist",
        export_name=export_name(data_name, loaded.facts.model_id, "score-differences"),
    )
    table = res.table()
    st.dataframe(table, key="bias_pairs_table", hide_index=False)
    export_buttons(
        "bias_pairs_exp",
        fig,
        table,
        name,
        {"model": loaded.spec, "data": data.source, "sha256": data.sha256, "summary": summary},
    )
    st.subheader(t("bias.drill"))
    i = st.selectbox(
        t("bias.drill_pick"),
        range(len(table)),
        key="bias_pairs_pick",
        format_func=lambda k: f"{k}: {table.loc[k, 'sent_more'][:70]}",
    )
    try:
        with st.spinner(t("bias.running")):
            d = _detail(loaded, loaded.spec, table.loc[i, "sent_more"], table.loc[i, "sent_less"])
    except LlmvizError as err:
        show_error(err)
        return
    _notices(d.notices)
    BV.pair_scores(table.loc[i])
    st.markdown(t("bias.drill_help"))
    if abs(d.changed_diff) > 1e-9:
        st.caption(t("bias.drill_changed_note"))
    pair = (data_name, loaded.facts.model_id, f"pair-{i}")
    plot(V.pair_token_bars(d, labels=fig_labels()), key="bias_pairs_tok", export_name=export_name(*pair, "tokens"))
    if d.attention_diff is not None:
        L, H = d.attention_diff.shape[:2]
        c1, c2 = st.columns(2)
        layer = c1.slider(t("bias.layer"), 0, L - 1, L - 1, key="bias_pairs_layer")
        head = c2.selectbox(
            t("bias.head"),
            [None] + list(range(H)),
            key="bias_pairs_head",
            format_func=lambda h: t("bias.head_mean") if h is None else str(h),
        )
        plot(
            V.attention_diff_heatmap(d, layer, head, labels=fig_labels()),
            key="bias_pairs_att",
            export_name=export_name(*pair, f"layer-{layer}", "head-mean" if head is None else f"head-{head}"),
        )
        st.caption(t("bias.att_diff_note"))


def section_counterfactual(loaded) -> None:
    st.markdown(t("bias.cf_intro"))
    if loaded.facts.kind != CAUSAL_LM:
        st.info(t_text("bias.needs_causal", model=loaded.facts.model_id))
        return
    prompt = st.text_input(t("bias.cf_prompt"), CF.EXAMPLE_PROMPT, key="bias_cf_prompt", help=t("bias.cf_prompt_help"))
    groups = st.text_input(
        t("bias.cf_groups"),
        ", ".join(CF.EXAMPLE_GROUPS),
        key="bias_cf_groups",
        help=t("bias.cf_groups_help", n=CF.MAX_GROUPS),
    )
    c1, c2, c3 = st.columns(3)
    n = c1.number_input(t("bias.cf_n"), 1, CF.MAX_SAMPLES, 8, key="bias_cf_n", help=t("bias.cf_n_help"))
    new, seed = 16, 0
    if not presenter_mode():
        new = c2.number_input(t("bias.cf_tokens"), 1, CF.MAX_NEW_TOKENS, 16, key="bias_cf_tokens")
        seed = c3.number_input(t("bias.seed"), 0, 2**31 - 1, 0, key="bias_cf_seed")
    st.button(t("bias.run_cf"), key="bias_cf_run", type="primary", on_click=_request, args=("cf",))
    if st.session_state.pop("bias_go_cf", False):
        bar = st.progress(0.0, text=t("bias.generating"))
        try:
            with heavy("counterfactual") as job:
                res = CF.counterfactual_generate(
                    loaded,
                    prompt,
                    _terms(groups),
                    int(n),
                    int(new),
                    int(seed),
                    progress=job.wrap(lambda i, k: bar.progress(i / k, text=t("bias.generating"))),
                )
            st.session_state["bias_cf_res"] = (loaded.spec, res)
        except LlmvizError as err:
            show_error(err)
            return
        bar.empty()
    stored = st.session_state.get("bias_cf_res")
    if not stored or stored[0] != loaded.spec:
        st.info(t("bias.cf_press"))
        return
    res = stored[1]
    _notices(res.notices)
    fig = V.counterfactual_box(res, labels=fig_labels())
    name = export_name("counterfactual", loaded.facts.model_id, "sentiment")
    plot(fig, key="bias_cf_box", export_name=name)
    rows = [
        {
            "group": g,
            "mean": float(res.means[i]),
            "difference vs first": float(res.diff[i]),
            "95 % CI": f"[{res.ci[i][0]:.3f}, {res.ci[i][1]:.3f}]",
        }
        for i, g in enumerate(res.groups)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(t("bias.cf_note"))
    with st.expander(t("bias.cf_examples")):
        st.dataframe(pd.DataFrame(res.records()), hide_index=True)
    export_buttons("bias_cf_exp", fig, pd.DataFrame(res.records()), name, res.params)


def _word_set_widgets(prefix: str):
    sets = W.word_sets()
    tests = sets["tests"]
    tid = st.selectbox(t("bias.weat_set"), list(tests), key=f"{prefix}_set", format_func=lambda k: tests[k]["title"])
    ws = tests[tid]
    st.caption(t("bias.citation", cite=ws["citation"]))
    cols = st.columns(4)
    out = {}
    for c, k in zip(cols, "XYAB"):
        out[k] = _terms_lines(
            c.text_area(f"{k}: {ws[k + '_name']}", "\n".join(ws[k]), key=f"{prefix}_{tid}_{k}", height=150)
        )
    names = {k: ws[k + "_name"] for k in "XYAB"}
    return out, names, sets


def section_weat(loaded) -> None:
    st.markdown(t("bias.weat_intro"))
    words, names, sets = _word_set_widgets("bias_weat")
    c1, c2 = st.columns(2)
    mode = c1.radio(
        t("bias.weat_mode"),
        ["weat", "seat"],
        horizontal=True,
        key="bias_weat_mode",
        format_func=lambda m: m.upper(),
        help=t("bias.weat_mode_help"),
    )
    pooling = "last" if loaded.facts.kind == CAUSAL_LM else "mean"
    if not presenter_mode():
        pooling = c2.radio(
            t("bias.pooling"),
            W.POOLINGS,
            horizontal=True,
            key="bias_weat_pool",
            index=W.POOLINGS.index(pooling),
            help=t("bias.pooling_help"),
        )
    templates = sets["seat_templates"]
    if mode == "seat" and not presenter_mode():
        templates = _terms_lines(
            st.text_area(
                t("bias.seat_templates"), "\n".join(templates), key="bias_weat_tpl", help=sets["seat_citation"]
            )
        )
    try:
        with st.spinner(t("bias.running")):
            res = cached(
                "weat",
                _weat,
                loaded,
                loaded.spec,
                *(tuple(words[k]) for k in "XYAB"),
                mode,
                pooling,
                tuple(templates) if mode == "seat" else (),
                tuple(names.items()),
            )
    except LlmvizError as err:
        show_error(err)
        return
    fig = V.weat_layers(res, labels=fig_labels())
    name = export_name(mode, names["X"], "vs", names["Y"], loaded.facts.model_id, "by-layer")
    plot(fig, key="bias_weat_fig", export_name=name)
    last = len(res.effect_size) - 1
    c0, c1, c2 = st.columns(3)
    chosen = c0.slider(t("bias.layer"), 0, last, last, key="bias_weat_layer", help=t("bias.layer_help"))
    c1.metric(t("bias.effect_last"), f"{res.effect_size[chosen]:+.3f}")
    c2.metric(t("bias.p_last"), f"{res.p_value[chosen]:.4g}")
    st.caption(t("bias.weat_p_note", how=t("bias.exact") if res.exact else t("bias.sampled"), n=res.n_partitions))
    export_buttons(
        "bias_weat_exp",
        fig,
        pd.DataFrame(res.records()),
        name,
        {"model": loaded.spec, "mode": mode, "pooling": pooling, **{k: words[k] for k in "XYAB"}},
    )
    BV.seat_files_block(loaded)


def _terms_lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip()]


def section_mitigation(loaded) -> None:
    st.markdown(t("bias.mit_intro"))
    words, names, sets = _word_set_widgets("bias_mit")
    default_pairs = "\n".join(f"{a}, {b}" for a, b in sets["definitional_pairs"])
    c1, c2 = st.columns(2)
    pairs_txt = c1.text_area(
        t("bias.mit_pairs"), default_pairs, key="bias_mit_pairs", height=150, help=sets["definitional_citation"]
    )
    neutral = c2.text_area(t("bias.mit_neutral"), "\n".join(sets["neutral_words"]), key="bias_mit_neutral", height=150)
    n_layers = loaded.facts.n_layers
    layer = st.slider(t("bias.layer"), 0, n_layers, n_layers, key="bias_mit_layer", help=t("bias.layer_help"))
    pairs = tuple(tuple(x.strip() for x in line.split(",")) for line in pairs_txt.splitlines() if "," in line)
    st.button(t("bias.run_mit"), key="bias_mit_run", type="primary", on_click=_request, args=("mit",))
    if st.session_state.pop("bias_go_mit", False):
        try:
            with st.spinner(t("bias.running")):
                res = cached(
                    "weat",
                    _mitigate,
                    loaded,
                    loaded.spec,
                    pairs,
                    *(tuple(words[k]) for k in "XYAB"),
                    tuple(_terms_lines(neutral)),
                    int(layer),
                    "weat",
                    "last" if loaded.facts.kind == CAUSAL_LM else "mean",
                )
            st.session_state["bias_mit_res"] = (loaded.spec, res)
        except LlmvizError as err:
            show_error(err)
            return
    stored = st.session_state.get("bias_mit_res")
    if not stored or stored[0] != loaded.spec:
        st.info(t("bias.mit_press"))
        return
    res = stored[1]
    c1, c2, c3 = st.columns(3)
    c1.metric(
        t("bias.effect_before_after"),
        f"{res.effect_after:+.3f}",
        f"{res.effect_after - res.effect_before:+.3f}",
        delta_color="off",
    )
    c2.metric(t("bias.neighbours_changed"), f"{res.n_changed} / {len(res.neutral)}")
    c3.metric(t("bias.explained"), f"{100 * res.explained[0]:.0f} %")
    fig = V.mitigation_bars(res, labels=fig_labels())
    name = export_name("mitigation", names["X"], "vs", names["Y"], loaded.facts.model_id, f"layer-{res.layer}")
    plot(fig, key="bias_mit_fig", export_name=name)
    st.dataframe(pd.DataFrame(res.neighbour_rows()), hide_index=True)
    st.warning(t("bias.mit_limits", before=f"{res.recover_before:.2f}", after=f"{res.recover_after:.2f}"))
    export_buttons(
        "bias_mit_exp",
        fig,
        pd.DataFrame(res.neighbour_rows()),
        name,
        {
            "model": loaded.spec,
            "layer": res.layer,
            "pairs": res.pairs,
            "effect_before": res.effect_before,
            "effect_after": res.effect_after,
        },
    )


# ---------------------------------------------------------------- page
st.title(t("bias.title"))
st.markdown(t("bias.intro"))
loaded = current_model()
kind = loaded.facts.kind
st.caption(
    t_text(
        "bias.model_kind",
        model=loaded.facts.model_id,
        kind=t(f"home.kind_a_{kind}"),
        probes=t(f"bias.works_{kind if kind in (ENCODER, MASKED_LM, CAUSAL_LM) else 'encoder'}"),
    )
)
# The URL is the page's state on every navigation (tour step, card, copied link): ui.links.url_state.
url_state("bias", {"bias_section": qp("section", "templates", choices=SECTIONS)})
section = (
    st.segmented_control(
        t("bias.section"),
        SECTIONS,
        format_func=lambda s: t(f"bias.section_{s}"),
        key="bias_section",
        required=True,
        on_change=to_url("bias_section", "section", "bias"),
    )
    or "templates"
)
copy_link("bias", {"section": section}, key="bias")
{
    "templates": section_templates,
    "pairs": section_pairs,
    "counterfactual": section_counterfactual,
    "weat": section_weat,
    "mitigation": section_mitigation,
    "stereoset": BV.section_stereoset,
    "runs": BV.section_runs,
}[section](loaded)

with st.expander(t("bias.caveats_title"), expanded=not presenter_mode()):
    st.markdown(t("bias.caveats"))
