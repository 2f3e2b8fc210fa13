"""Bias page, "Where does the bias live?": components that carry a benchmark's bias (attribution-patching screen,
exact ablation with CIs), their removal tested on held-out items next to Self-Debias and a steering vector, and
what each correction costs (:func:`llmviz.bias.mechanism.trace`). Strings in llmviz/catalogues/<lang>/bias.json
(``mech_*``) and figures.json."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from llmviz.bias import mechanism as mech
from llmviz.errors import LlmvizError
from llmviz.estimate import BACKWARD_FACTOR, Work, estimate, generation_work
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel
from llmviz.report import export_name
from llmviz.runs import record as run_record
from llmviz.viz import mechanism as figures
from ui.common import export_buttons, plot
from ui.i18n import fig_labels, t
from ui.jobs import run_on_click
from ui.links import presenter_mode
from ui.text import show_error, show_notice, t_text

MAX_ITEMS_UI = 200  # items a page run takes (the CLI takes more)
STAGES = ("means", "screen", "exact", "correction", "cost")


def _estimate(loaded: LoadedModel, items: list, top_k: int, causal: bool) -> float:
    rows = [r for it in items for u in (it.a, it.b) for r in u.rows]
    forwards = 2.0 + 0.5 * top_k + 2 * len(mech.DEFAULT_KS) + (3.0 if causal else 0.0) + 0.5 * BACKWARD_FACTOR
    work = Work(forwards * max(1, -(-len(rows) // 16)), forwards * sum(len(r) for r in rows))
    if causal:  # the Playground presets' greedy answers (the correction's cost)
        work += generation_work(24, 5 * 48)
    return estimate(loaded, "mechanism", work)


def _run(loaded: LoadedModel, items: list, cfg: mech.TraceConfig, benchmark: str, ss, progress: Callable) -> dict:
    def tick(done, total, stage):
        k = STAGES.index(stage) if stage in STAGES else 0
        progress(k * 100 + int(100 * done / max(total, 1)), 100 * len(STAGES))

    res = mech.trace(loaded, items, cfg, benchmark=benchmark, stereoset=ss, progress=tick)
    return {"result": res, "recorded": None}


def _record(loaded: LoadedModel, out: dict, sha: str, source: str) -> None:
    rec = run_record.record_mechanism(loaded, out["result"], sha, source, {"page": "bias"})
    out["recorded"] = rec


def _items(loaded: LoadedModel, benchmark: str, pair_source: Callable, ss_source: Callable):
    """(items, sha256, source, StereoSet data or None), or None while no data is chosen."""
    if benchmark == "stereoset":
        data = ss_source()
        if data is None:
            st.info(t("benchmarks.ss_need_data"))
            return None
        return mech.items_from_stereoset(loaded, data, MAX_ITEMS_UI), data.sha256, data.source, data
    data = pair_source()
    if data is None:
        st.info(t("bias.pairs_need_data"))
        return None
    if len(data.frame) > MAX_ITEMS_UI:
        st.warning(t("bias.mech_cut", n=MAX_ITEMS_UI, total=len(data.frame)))
    return mech.items_from_pairs(loaded, data.frame, MAX_ITEMS_UI), data.sha256, data.source, None


def _settings(n_components: int, causal: bool) -> mech.TraceConfig:
    c1, c2, c3, c4 = st.columns(4)
    ablation = c1.selectbox(
        t("bias.mech_ablation"),
        mech.ABLATIONS,
        key="bias_mech_ablation",
        format_func=lambda a: t(f"bias.mech_ablation_{a}"),
        help=t("bias.mech_ablation_help"),
    )
    top_k = c2.number_input(
        t("bias.mech_top_k"),
        1,
        min(60, n_components),
        min(mech.DEFAULT_TOP_K, n_components),
        key="bias_mech_top_k",
        help=t("bias.mech_top_k_help"),
    )
    seed = c3.number_input(t("bias.mech_seed"), 0, 10_000, 0, key="bias_mech_seed", help=t("bias.mech_seed_help"))
    alpha = c4.number_input(
        t("bias.mech_alpha"),
        0.0,
        20.0,
        2.0,
        0.5,
        key="bias_mech_alpha",
        help=t("bias.mech_alpha_help"),
        disabled=not causal,
    )
    return mech.TraceConfig(ablation=ablation, top_k=int(top_k), split_seed=int(seed), steer_alpha=float(alpha))


def _components_table(res: mech.TraceResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                t("bias.mech_col_component"): r["name"],
                t("bias.mech_col_effect"): round(r["effect"], 4),
                t("bias.mech_col_ci"): f"{r['ci95'][0]:+.4f} … {r['ci95'][1]:+.4f}",
                t("bias.mech_col_screen"): None if r["screen_estimate"] is None else round(r["screen_estimate"], 4),
            }
            for r in res.components
        ]
    )


def _correction_table(correction: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for key in ("ablate_top_k", "self_debias", "steering"):
        b = correction.get(key)
        if not b:
            continue
        presets = b["cost"].get("presets")
        lm = b["cost"].get("stereoset_lm")
        rows.append(
            {
                t("bias.mech_col_method"): t(f"bias.mech_method_{key}", k=b.get("k")),
                t("bias.mech_col_find"): f"{b['find']['before']:.1f} → {b['find']['after']:.1f}",
                t("bias.mech_col_test"): f"{b['test']['before']:.1f} → {b['test']['after']:.1f}",
                t("bias.mech_col_change_ci"): f"{b['test']['diff_ci95'][0]:+.1f} … {b['test']['diff_ci95'][1]:+.1f}",
                t("bias.mech_col_neutral"): round(b["cost"]["neutral_ll_per_token_change"], 4),
                t("bias.mech_col_presets"): "" if not presets else f"{presets['same_answers']}/{presets['n_presets']}",
                t("bias.mech_col_lm"): "" if not lm else f"{lm['before']:.1f} → {lm['after']:.1f}",
            }
        )
    return pd.DataFrame(rows)


def _drill(res: mech.TraceResult) -> None:
    st.subheader(t("bias.mech_drill"))
    names = [r["name"] for r in res.components]
    if not names:
        return
    name = st.selectbox(t("bias.mech_drill_pick"), names, key="bias_mech_drill")
    by_key = {it.key: it for it in res.items}
    rows = [
        {
            t("bias.mech_col_delta"): round(m["delta_S"], 4),
            t("bias.mech_col_more"): by_key[m["id"]].text_a,
            t("bias.mech_col_less"): by_key[m["id"]].text_b,
            t("bias.mech_col_group"): by_key[m["id"]].group,
        }
        for m in res.moved.get(name, [])
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="bias_mech_drill_table")  # sentences shown as text


def section(loaded: LoadedModel, pair_source: Callable, ss_source: Callable) -> None:
    """The section: data, settings, the run (queue, progress, Stop, estimate) and the three panels."""
    st.markdown(t("bias.mech_intro"))
    with st.expander(t("bias.mech_definitions_title"), expanded=not presenter_mode()):
        st.markdown(t("bias.mech_definitions"))
    kind = loaded.facts.kind
    if kind not in (CAUSAL_LM, MASKED_LM):
        st.info(t_text("bias.needs_lm", model=loaded.facts.model_id, what=t("bias.section_mechanism")))
        return
    causal = kind == CAUSAL_LM
    benchmark = st.radio(
        t("bias.mech_benchmark"),
        ("crows_pairs", "stereoset"),
        horizontal=True,
        key="bias_mech_bench",
        format_func=lambda b: t(f"bias.mech_benchmark_{b}"),
    )
    try:
        got = _items(loaded, benchmark, pair_source, ss_source)
    except LlmvizError as err:
        show_error(err)
        return
    if got is None:
        return
    items, sha, source, ss = got
    if len(items) < 4:
        show_error(t("bias.mech_too_few"))
        return
    n_comp = len(mech.components_of(loaded))
    cfg = _settings(n_comp, causal)
    st.caption(t("bias.mech_loaded", n=len(items), comps=n_comp))
    out = run_on_click(
        "bias_mech_run",
        t("bias.mech_run"),
        _run,
        loaded,
        items,
        cfg,
        benchmark,
        ss,
        inputs=[loaded.spec, sha, benchmark, len(items), cfg.ablation, cfg.top_k, cfg.split_seed, cfg.steer_alpha],
        kind="mechanism",
        estimate_s=_estimate(loaded, items, cfg.top_k, causal),
        progress="progress",
        progress_text=t("bias.mech_running"),
        hint="",
        on_result=lambda r: _record(loaded, r, sha, source),
    )
    if out is None:
        if not st.session_state.get("bias_mech_run"):
            st.info(t("bias.mech_press"))
        return
    res: mech.TraceResult = out["result"]
    for stage, (rid, warning) in (out.get("recorded") or {}).items():
        if warning:
            show_notice(warning)
        elif rid is not None:
            st.caption(t("bias.mech_recorded", stage=t(f"bias.mech_stage_{stage}"), id=rid))
    n_find = int(res.find.sum())
    c1, c2, c3 = st.columns(3)
    c1.metric(t("bias.pct_stereo"), f"{mech.bias_figure(res.s):.1f} %")
    c2.metric(t("bias.mech_n_find"), n_find)
    c3.metric(t("bias.mech_n_test"), len(res.items) - n_find)
    pearson = res.screen.get("pearson")
    if pearson is not None:
        st.caption(t("bias.mech_screen_corr", r=f"{pearson:.2f}", n=res.screen["n_confirmed"]))
        if pearson < 0.5:
            show_notice(t("bias.mech_screen_weak", r=f"{pearson:.2f}"))
    for note in res.notes:
        show_notice(note)
    anat = anatomy(loaded.model)
    fig = figures.effect_heatmap(res.components, anat.n_layers, anat.n_heads, labels=fig_labels())
    stem = export_name(loaded.facts.model_id, benchmark, "bias-components")
    plot(fig, key="bias_mech_heat", export_name=stem)
    table = _components_table(res)
    st.dataframe(table, hide_index=True, key="bias_mech_table")
    export_buttons("bias_mech_exp", fig, res.to_dict(), stem, {"model": loaded.spec, "data": source, "sha256": sha})
    _drill(res)
    st.subheader(t("bias.mech_correction"))
    st.markdown(t("bias.mech_correction_intro"))
    corr = _correction_table(res.correction)
    st.dataframe(corr, hide_index=True, key="bias_mech_corr")
    st.info(
        t(
            "bias.mech_overfit",
            find_b=f"{res.correction['ablate_top_k']['find']['before']:.1f}",
            find_a=f"{res.correction['ablate_top_k']['find']['after']:.1f}",
            test_b=f"{res.correction['ablate_top_k']['test']['before']:.1f}",
            test_a=f"{res.correction['ablate_top_k']['test']['after']:.1f}",
        )
    )
    curve = figures.bias_cost_curve(res.correction, labels=fig_labels())
    cstem = export_name(loaded.facts.model_id, benchmark, "bias-vs-cost")
    plot(curve, key="bias_mech_curve", export_name=cstem)
    export_buttons("bias_mech_curve_exp", curve, corr, cstem, {"model": loaded.spec, "data": source})
    st.caption(t("bias.mech_caveat"))
