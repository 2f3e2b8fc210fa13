"""Views of the Bias page: template probes, minimal pairs with CIs, counterfactual generations, WEAT/SEAT,
projection debiasing, StereoSet, SEAT test files and the run store.

Every section takes the loaded model as its argument. Heavy work goes through ``ui.jobs.run_on_click``
(queue, progress, Stop, the result kept for this session and its inputs and drawn again on every rerun):
minimal pairs, counterfactuals, mitigation, StereoSet and SEAT files start on a click; the template probe,
WEAT/SEAT on the word lists and a pair's drill-down run as soon as they are shown, kept server-wide (the
next student asking the same gets a copy). A finished audit is recorded in the run store once, by
``on_result`` after a fresh computation, never by a kept or shared copy of it.
Strings in llmviz/catalogues/<lang>/bias.json and benchmarks.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from llmviz import serving
from llmviz.bias import counterfactual as cf
from llmviz.bias import mitigation, stereoset, weat
from llmviz.bias import pairs as pair_scoring
from llmviz.bias import seat as seat_files
from llmviz.bias import templates as template_probe
from llmviz.bias.pairs_data import PairSet, load_pairs, parse_pairs, starter_pairs
from llmviz.bias.stats import ci_width_warning
from llmviz.errors import InputError, LlmvizError
from llmviz.limits import MAX_PATH_CHARS, MAX_UPLOAD_MB
from llmviz.models.loading import CAUSAL_LM, ENCODER, MASKED_LM, LoadedModel
from llmviz.precision import EXACT
from llmviz.report import export_name, frame_csv, sha256_bytes
from llmviz.runs import record as run_record
from llmviz.runs import store as run_store
from llmviz.viz import benchmarks as benchmark_figures
from llmviz.viz import bias as bias_figures
from ui.common import export_buttons, path_box_problem, plot
from ui.i18n import fig_labels, t
from ui.jobs import run_on_click
from ui.links import presenter_mode
from ui.text import show_error, show_notice, t_text
from ui.views.bias_parts import live as live_view
from ui.views.bias_parts import mechanism as mechanism_view
from ui.views.bias_parts import precision as precision_view


# ---------------------------------------------------------------- shared helpers
@dataclass
class Recorded:
    """A result and what recording it in the run store gave (``on_result``, once): its id and the store's
    warning (a failing store warns, the result is still shown)."""

    value: Any
    run_id: int | None = None
    warning: str | None = None

    def keep(self, recorded: tuple[int | None, str | None]) -> None:
        self.run_id, self.warning = recorded


def _terms(text: str) -> list[str]:
    return [x.strip() for x in text.replace(",", "\n").splitlines() if x.strip()]


def _terms_lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip()]


def _notices(items) -> None:
    for n in items or []:
        show_notice(n)


def _needs_lm(loaded: LoadedModel, what: str) -> bool:
    """Explain (and return True) when an encoder without an LM head is loaded."""
    if loaded.facts.kind == ENCODER:
        st.info(t_text("bias.needs_lm", model=loaded.facts.model_id, what=what))
        return True
    return False


def _counting(slot, total: int, text: str, text_n: str) -> Callable[[int], None]:
    """A progress callback for work reported in batches (``progress(n)``: n more items done), drawing a bar
    into ``slot`` (made below the start button before the run) with ``text`` at 0 and ``text_n`` after."""
    done = [0]

    def progress(n: int = 0) -> None:
        done[0] += n
        label = t(text_n, i=done[0], n=total) if done[0] else t(text)
        slot.progress(min(done[0] / max(total, 1), 1.0), text=label)

    return progress


def _press(key: str, message: str) -> None:
    """Nothing kept for these inputs: say what to press (not right after a click: that run failed or stopped
    and said so)."""
    if not st.session_state.get(key):
        st.info(message)


def model_caption(loaded: LoadedModel) -> None:
    """Which probes the loaded model supports."""
    kind = loaded.facts.kind
    st.caption(
        t_text(
            "bias.model_kind",
            model=loaded.facts.model_id,
            kind=t(f"home.kind_a_{kind}"),
            probes=t(f"bias.works_{kind if kind in (ENCODER, MASKED_LM, CAUSAL_LM) else 'encoder'}"),
        )
    )


def caveats(presenter: bool) -> None:
    with st.expander(t("bias.caveats_title"), expanded=not presenter):
        st.markdown(t("bias.caveats"))


# ---------------------------------------------------------------- templates
def _probe_templates(loaded: LoadedModel, template: str, groups: list[str], targets: list[str]) -> Recorded:
    return Recorded(template_probe.template_probe(loaded, template, groups, targets))


def section_templates(loaded: LoadedModel) -> None:
    st.markdown(t("bias.templates_intro"))
    if _needs_lm(loaded, t("bias.section_templates")):
        return
    template = st.text_input(
        t("bias.template"), template_probe.EXAMPLE_TEMPLATE, key="bias_tpl", help=t("bias.template_help")
    )
    c1, c2 = st.columns(2)
    groups = c1.text_area(
        t("bias.groups"),
        "\n".join(template_probe.EXAMPLE_GROUPS),
        key="bias_tpl_groups",
        height=120,
        help=t("bias.groups_help", n=template_probe.MAX_GROUPS),
    )
    targets = c2.text_area(
        t("bias.targets"),
        "\n".join(template_probe.EXAMPLE_TARGETS),
        key="bias_tpl_targets",
        height=120,
        help=t("bias.targets_help", n=template_probe.MAX_TARGETS),
    )
    groups, targets = _terms_lines(groups), _terms_lines(targets)
    with st.spinner(t("bias.running")):
        out = run_on_click(
            "bias_tpl_run",
            t("bias.section_templates"),
            _probe_templates,
            loaded,
            template,
            groups,
            targets,
            inputs=[loaded.spec, template, groups, targets],
            kind="templates",
            auto=True,  # a few forward passes: no button, it runs (in the queue) as soon as it is shown
            button=False,
            shared=True,
            hint="",
            on_result=lambda r: r.keep(
                run_record.record_template(loaded, r.value, {"template": template, "page": "bias"})
            ),
        )
    if out is None:
        return
    if out.warning:  # the run store could not record it (the probe is still shown)
        show_notice(out.warning)
    res = out.value
    _notices(res.notices)
    st.caption(t("bias.templates_metric_mlm") if res.method == "mlm_kurita" else t("bias.templates_metric_causal"))
    fig = bias_figures.template_heatmap(res, labels=fig_labels())
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
            bias_figures.template_ratio_bars(res, a, b, labels=fig_labels()),
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


# ---------------------------------------------------------------- minimal pairs
def _pair_source() -> PairSet | None:
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
            help=t("bias.upload_help", mb=MAX_UPLOAD_MB),
        )
        return parse_pairs(up.getvalue(), up.name) if up is not None else None
    path = st.text_input(
        t("bias.path"),
        key="bias_pairs_path",
        placeholder="/data/crows_pairs_anonymized.csv",
        help=t("app.path_help", n=f"{MAX_PATH_CHARS:,}"),
    )
    if not path.strip():
        return None
    problem = path_box_problem(path, "bias.pairs_need_data")
    if problem:  # too long: said without echoing it
        raise InputError(problem)
    return load_pairs(path)


def _score_pairs(
    loaded: LoadedModel, frame: pd.DataFrame, mode: str = EXACT, progress: Callable | None = None
) -> Recorded:
    """``progress(done, total, scores so far)`` after each chunk of pairs: the table grows as they come."""
    return Recorded(pair_scoring.score_pairs(loaded, frame, partial=progress, precision=mode))


def _record_pairs(loaded: LoadedModel, data: PairSet, out: Recorded) -> None:
    res = out.value
    params = {"page": "bias", "precision": res.precision, "deviation": res.deviation}
    out.keep(run_record.record_crows(loaded, res.records(), res.summary(), data.sha256, data.source, params))


def section_pairs(loaded: LoadedModel) -> None:
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
    if len(frame) > pair_scoring.MAX_PAIRS_UI:
        st.warning(t("bias.pairs_cut", n=pair_scoring.MAX_PAIRS_UI, total=len(frame)))
        frame = frame.head(pair_scoring.MAX_PAIRS_UI)
    st.caption(t("bias.pairs_loaded", n=len(frame), types=frame["bias_type"].nunique()))
    mode = precision_view.choice("bias_pairs_precision", "scores")
    out = run_on_click(
        "bias_pairs_run",
        t("bias.run_pairs"),
        _score_pairs,
        loaded,
        frame,
        mode,
        inputs=[loaded.spec, data.sha256, len(frame), mode],
        kind="pairs",
        estimate_s=live_view.pairs_estimate(loaded, frame, data.sha256, mode),
        progress="progress",
        progress_text=t("bias.scoring"),
        live=live_view.pairs,
        hint="",
        on_result=lambda r: _record_pairs(loaded, data, r),
    )
    if out is None:
        _press("bias_pairs_run", t("bias.pairs_press"))
        return
    if out.warning:
        show_notice(out.warning)
    res = out.value
    summary = res.summary()
    precision_view.ran("pairs", res.precision, res.deviation)
    live_view.pairs_metrics(summary)
    warn = ci_width_warning(summary["n"])
    if warn:
        show_notice(warn)
    st.caption(t("bias.pairs_metric_mlm") if res.method == "mlm_pll" else t("bias.pairs_metric_causal"))
    fig = bias_figures.pairs_summary(summary, labels=fig_labels())
    data_name = Path(data.source).stem  # the file the pairs came from, e.g. crows_pairs_anonymized
    name = export_name(data_name, loaded.facts.model_id, "by-category")
    plot(fig, key="bias_pairs_sum", export_name=name)
    plot(
        bias_figures.score_diff_hist(res, labels=fig_labels()),
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
        {
            "model": loaded.spec,
            "data": data.source,
            "sha256": data.sha256,
            "summary": summary,
            "precision": res.precision,
            "deviation": res.deviation,
        },
    )
    pair_drill_down(loaded, table, data_name)


def pair_drill_down(loaded: LoadedModel, table: pd.DataFrame, data_name: str) -> None:
    """One pair of a scored table: both sentences with their scores, per-token bars, attention difference."""
    st.subheader(t("bias.drill"))
    i = st.selectbox(
        t("bias.drill_pick"),
        range(len(table)),
        key="bias_pairs_pick",
        format_func=lambda k: f"{k}: {table.loc[k, 'sent_more'][:70]}",
    )
    more, less = str(table.loc[i, "sent_more"]), str(table.loc[i, "sent_less"])
    with st.spinner(t("bias.running")):
        d = run_on_click(
            "bias_pairs_detail",
            t("bias.drill"),
            pair_scoring.pair_detail,
            loaded,
            more,
            less,
            inputs=[loaded.spec, more, less],
            kind="pairs",
            auto=True,  # two sentences: it runs (in the queue) as soon as a pair is picked
            button=False,
            shared=True,
            hint="",
        )
    if d is None:
        return
    _notices(d.notices)
    pair_scores(table.loc[i])
    st.markdown(t("bias.drill_help"))
    if abs(d.changed_diff) > 1e-9:
        st.caption(t("bias.drill_changed_note"))
    pair = (data_name, loaded.facts.model_id, f"pair-{i}")
    plot(
        bias_figures.pair_token_bars(d, labels=fig_labels()),
        key="bias_pairs_tok",
        export_name=export_name(*pair, "tokens"),
    )
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
            bias_figures.attention_diff_heatmap(d, layer, head, labels=fig_labels()),
            key="bias_pairs_att",
            export_name=export_name(*pair, f"layer-{layer}", "head-mean" if head is None else f"head-{head}"),
        )
        st.caption(t("bias.att_diff_note"))


def pair_scores(row) -> None:
    """Both sentences of the chosen pair, each with its score as the run scored it, and their difference."""
    st.markdown(t_text("bias.drill_more", sentence=row["sent_more"]))
    st.markdown(t_text("bias.drill_less", sentence=row["sent_less"]))
    c1, c2, c3 = st.columns(3)
    c1.metric(t("bias.drill_score_more"), f"{row['score_more']:.3f}", help=t("bias.drill_score_help"))
    c2.metric(t("bias.drill_score_less"), f"{row['score_less']:.3f}", help=t("bias.drill_score_help"))
    c3.metric(t("bias.drill_diff"), f"{row['difference']:+.3f}", help=t("bias.drill_diff_help"))


# ---------------------------------------------------------------- counterfactual generations
def section_counterfactual(loaded: LoadedModel) -> None:
    st.markdown(t("bias.cf_intro"))
    if loaded.facts.kind != CAUSAL_LM:
        st.info(t_text("bias.needs_causal", model=loaded.facts.model_id))
        return
    prompt = st.text_input(t("bias.cf_prompt"), cf.EXAMPLE_PROMPT, key="bias_cf_prompt", help=t("bias.cf_prompt_help"))
    groups = st.text_input(
        t("bias.cf_groups"),
        ", ".join(cf.EXAMPLE_GROUPS),
        key="bias_cf_groups",
        help=t("bias.cf_groups_help", n=cf.MAX_GROUPS),
    )
    c1, c2, c3 = st.columns(3)
    n = c1.number_input(t("bias.cf_n"), 1, cf.MAX_SAMPLES, 8, key="bias_cf_n", help=t("bias.cf_n_help"))
    new, seed = 16, 0
    if not presenter_mode():
        new = c2.number_input(t("bias.cf_tokens"), 1, cf.MAX_NEW_TOKENS, 16, key="bias_cf_tokens")
        seed = c3.number_input(t("bias.seed"), 0, 2**31 - 1, 0, key="bias_cf_seed")
    args = (prompt, _terms(groups), int(n), int(new), int(seed))
    res = run_on_click(
        "bias_cf_run",
        t("bias.run_cf"),
        cf.counterfactual_generate,
        loaded,
        *args,
        inputs=[loaded.spec, *args],
        kind="counterfactual",
        progress="progress",
        progress_text=t("bias.generating"),
        hint="",
    )
    if res is None:
        _press("bias_cf_run", t("bias.cf_press"))
        return
    _notices(res.notices)
    fig = bias_figures.counterfactual_box(res, labels=fig_labels())
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


# ---------------------------------------------------------------- WEAT / SEAT
def _word_set_widgets(prefix: str):
    sets = weat.word_sets()
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


def _weat_test(loaded: LoadedModel, words: dict, mode: str, pooling: str, templates: list, names: dict) -> Recorded:
    return Recorded(weat.weat_test(loaded, *(words[k] for k in "XYAB"), mode, pooling, templates or None, dict(names)))


def _record_weat(loaded: LoadedModel, out: Recorded) -> None:
    """Record a WEAT/SEAT run of the page's word sets (once, after it was computed)."""
    res = out.value
    sets = {k: getattr(res, k) for k in "XYAB"}
    entry = {
        "file": res.names.get("X", "X") + " vs " + res.names.get("Y", "Y"),
        "n": [len(v) for v in sets.values()],
        "layers": res.records(),
    }
    digest = sha256_bytes(json.dumps(sets, sort_keys=True).encode())
    out.keep(
        run_record.record_seat_tests(
            loaded,
            [entry],
            [(res.X, res.Y, res.s_x[-1], res.s_y[-1])],
            digest,
            None,
            {"mode": res.mode, "pooling": res.pooling, "page": "bias"},
            kind="weat",
        )
    )


def section_weat(loaded: LoadedModel) -> None:
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
            weat.POOLINGS,
            horizontal=True,
            key="bias_weat_pool",
            index=weat.POOLINGS.index(pooling),
            help=t("bias.pooling_help"),
        )
    templates = sets["seat_templates"]
    if mode == "seat" and not presenter_mode():
        templates = _terms_lines(
            st.text_area(
                t("bias.seat_templates"), "\n".join(templates), key="bias_weat_tpl", help=sets["seat_citation"]
            )
        )
    templates = list(templates) if mode == "seat" else []
    with st.spinner(t("bias.running")):
        out = run_on_click(
            "bias_weat_run",
            t("bias.section_weat"),
            _weat_test,
            loaded,
            words,
            mode,
            pooling,
            templates,
            names,
            inputs=[loaded.spec, words, mode, pooling, templates, names],
            kind="weat",
            auto=True,  # embeddings of a few words: no button, it runs (in the queue) as soon as it is shown
            button=False,
            shared=True,
            hint="",
            on_result=lambda r: _record_weat(loaded, r),
        )
    if out is None:
        return
    if out.warning:
        show_notice(out.warning)
    res = out.value
    fig = bias_figures.weat_layers(res, labels=fig_labels())
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
    seat_files_block(loaded)


# ---------------------------------------------------------------- mitigation
def _mitigate(loaded: LoadedModel, pairs: list, words: dict, neutral: list, layer: int, pooling: str):
    return mitigation.mitigation_demo(loaded, pairs, *(words[k] for k in "XYAB"), neutral, layer, "weat", pooling)


def section_mitigation(loaded: LoadedModel) -> None:
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
    pairs = [[x.strip() for x in line.split(",")] for line in pairs_txt.splitlines() if "," in line]
    args = (pairs, words, _terms_lines(neutral), int(layer), "last" if loaded.facts.kind == CAUSAL_LM else "mean")
    with st.spinner(t("bias.running")):
        res = run_on_click(
            "bias_mit_run",
            t("bias.run_mit"),
            _mitigate,
            loaded,
            *args,
            inputs=[loaded.spec, *args],
            kind="weat",
            shared=True,
            hint="",
        )
    if res is None:
        _press("bias_mit_run", t("bias.mit_press"))
        return
    c1, c2, c3 = st.columns(3)
    c1.metric(
        t("bias.effect_before_after"),
        f"{res.effect_after:+.3f}",
        f"{res.effect_after - res.effect_before:+.3f}",
        delta_color="off",
    )
    c2.metric(t("bias.neighbours_changed"), f"{res.n_changed} / {len(res.neutral)}")
    c3.metric(t("bias.explained"), f"{100 * res.explained[0]:.0f} %")
    fig = bias_figures.mitigation_bars(res, labels=fig_labels())
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


# ---------------------------------------------------------------- StereoSet
def _stereoset_source() -> stereoset.StereoSetData | None:
    src = st.radio(
        t("benchmarks.ss_source"),
        ["illustrative", "upload"],
        horizontal=True,
        key="bias_ss_src",
        format_func=lambda s: t(f"benchmarks.ss_source_{s}"),
    )
    if src == "illustrative":
        st.caption(t("benchmarks.ss_illustrative_note"))
        return stereoset.illustrative_set()
    up = st.file_uploader(
        t("benchmarks.ss_upload"),
        type=["json"],
        key="bias_ss_upload",
        help=t("benchmarks.ss_upload_help", mb=stereoset.MAX_UPLOAD_BYTES // 10**6),
    )
    return stereoset.parse_stereoset(up.getvalue(), up.name) if up is not None else None


def _score_stereoset(
    loaded: LoadedModel, data: stereoset.StereoSetData, mode: str = EXACT, progress: Callable | None = None
) -> Recorded:
    """``progress(done, total, sentence scores so far)`` after each chunk: the results grow as they come."""
    return Recorded(stereoset.run_stereoset(loaded, data, partial=progress, precision=mode))


def section_stereoset(loaded: LoadedModel) -> None:
    st.markdown(t("benchmarks.ss_intro"))
    if loaded.facts.kind not in (MASKED_LM, CAUSAL_LM):
        st.info(t_text("benchmarks.ss_needs_lm", model=loaded.facts.model_id))
        return
    try:
        data = _stereoset_source()
    except LlmvizError as err:
        show_error(err)
        return
    if data is None:
        st.info(t("benchmarks.ss_need_data"))
        return
    _notices(data.notices)
    if max(len(data.intrasentence), len(data.intersentence)) > stereoset.MAX_EXAMPLES_UI:
        st.warning(t("benchmarks.ss_cut", n=stereoset.MAX_EXAMPLES_UI))
        data = data.head(stereoset.MAX_EXAMPLES_UI)
    st.caption(t("benchmarks.ss_loaded", intra=len(data.intrasentence), inter=len(data.intersentence)))
    st.caption(t("benchmarks.ss_method_causal") if loaded.facts.kind == CAUSAL_LM else t("benchmarks.ss_method_mlm"))
    mode = precision_view.choice("bias_ss_precision", "scores")
    out = run_on_click(
        "bias_ss_run",
        t("benchmarks.ss_run"),
        _score_stereoset,
        loaded,
        data,
        mode,
        inputs=[loaded.spec, data.sha256, len(data.intrasentence), len(data.intersentence), mode],
        kind="stereoset",
        estimate_s=live_view.stereoset_estimate(loaded, data, mode),
        progress="progress",
        progress_text=t("benchmarks.scoring"),
        live=live_view.stereoset_live(loaded, data),
        hint="",
        on_result=lambda r: r.keep(
            run_record.record_stereoset(
                loaded,
                r.value,
                {"source": data.source, "page": "bias", "precision": mode, "deviation": r.value.deviation},
            )
        ),
    )
    if out is None:
        _press("bias_ss_run", t("benchmarks.ss_press"))
        return
    run, rid = out.value, out.run_id
    if out.warning:
        show_notice(out.warning)
    if rid is not None:
        st.caption(t("benchmarks.recorded", id=rid))
    precision_view.ran("ss", run.precision, run.deviation, n=min(stereoset.FIRST_ITEMS, len(run.scores)))
    live_view.stereoset_metrics(run)
    rows = stereoset.result_rows(run.results, run.cis)
    metric = st.radio(
        t("benchmarks.metric"), list(stereoset.METRIC_KEYS), index=1, horizontal=True, key="bias_ss_metric"
    )
    fig = benchmark_figures.stereoset_bars(rows, metric, labels=fig_labels())
    name = export_name("stereoset", Path(run.data.source).stem, loaded.facts.model_id, metric)
    plot(fig, key="bias_ss_fig", export_name=name)
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key="bias_ss_table")
    examples = pd.DataFrame(stereoset.example_rows(run.data, run.scores))
    export_buttons(
        "bias_ss_exp",
        fig,
        table,
        name,
        {
            "model": loaded.spec,
            "data": run.data.source,
            "sha256": run.data.sha256,
            "method": run.method,
            "results": run.results,
            "ci95": run.cis,
            "run_id": rid,
        },
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        t("benchmarks.ss_export_examples"),
        lambda: frame_csv(examples),
        "stereoset_examples.csv",
        "text/csv",
        key="bias_ss_exp_ex",
    )
    c2.download_button(
        t("benchmarks.ss_export_predictions"),
        lambda: json.dumps(stereoset.predictions_doc(run.data, run.scores), indent=1),
        "stereoset_predictions.json",
        "application/json",
        key="bias_ss_exp_pred",
    )
    st.subheader(t("benchmarks.ss_drill"))
    exs = run.data.examples()
    i = st.selectbox(
        t("benchmarks.ss_pick"),
        range(len(exs)),
        key="bias_ss_pick",
        format_func=lambda k: f"{exs[k].split[:5]} · {exs[k].bias_type} · {exs[k].context[:70]}",
    )
    ex = exs[i]
    st.text(t("benchmarks.ss_context", target=ex.target, bias_type=ex.bias_type) + "\n" + ex.context)
    st.dataframe(
        pd.DataFrame(
            [{"gold_label": s.gold_label, "sentence": s.sentence, "score": run.scores[s.id]} for s in ex.sentences]
        ),
        hide_index=True,
        key="bias_ss_drill_table",
    )
    sc = {s.gold_label: run.scores[s.id] for s in ex.sentences}
    related = int(sc["stereotype"] > sc["unrelated"]) + int(sc["anti-stereotype"] > sc["unrelated"])
    pro = sc["stereotype"] > sc["anti-stereotype"]
    st.caption(
        t("benchmarks.ss_drill_outcome", pro=t("benchmarks.yes") if pro else t("benchmarks.no"), related=related)
    )


# ---------------------------------------------------------------- SEAT files (inside the WEAT section)
def _run_seat_files(
    loaded: LoadedModel, tests: list, pooling: str, layers: str, mode: str, tick: Callable[[int], None]
):
    tick(0)
    return Recorded(
        [seat_files.run_test_full(loaded, x, pooling, layers, progress=tick, precision=mode) for x in tests]
    )


def _record_seat_files(loaded: LoadedModel, tests: list, pooling: str, layers: str, mode: str, out: Recorded) -> None:
    digest = sha256_bytes(json.dumps([[x.name, x.sets] for x in tests], sort_keys=True).encode())
    out.keep(
        run_record.record_seat_tests(
            loaded,
            [f[0] for f in out.value],
            [f[1] for f in out.value],
            digest,
            ", ".join(x.name for x in tests),
            {
                "pooling": pooling,
                "layers": layers,
                "page": "bias",
                "precision": mode,
                "deviation": seat_files.suite_deviation([f[0] for f in out.value]),
            },
        )
    )


def seat_files_block(loaded: LoadedModel) -> None:
    with st.expander(t("benchmarks.seat_title"), expanded=bool(st.session_state.get("bias_seat_upload"))):
        st.markdown(t("benchmarks.seat_intro", n=seat_files.MAX_ITEMS_PER_SET))
        ups = st.file_uploader(
            t("benchmarks.seat_upload"), type=["jsonl", "json"], accept_multiple_files=True, key="bias_seat_upload"
        )
        c1, c2 = st.columns(2)
        pooling = c1.radio(
            t("benchmarks.seat_pooling"), list(seat_files.POOLINGS), horizontal=True, key="bias_seat_pool"
        )
        layers = c2.radio(
            t("benchmarks.seat_layers"), list(seat_files.LAYER_CHOICES), horizontal=True, key="bias_seat_layers"
        )
        if not ups:
            st.info(t("benchmarks.seat_need"))
            return
        try:
            tests = [seat_files.parse_seat(u.getvalue(), u.name) for u in ups[: seat_files.MAX_TESTS]]
        except LlmvizError as err:
            show_error(err)
            return
        total = sum(sum(x.sizes) for x in tests)
        st.caption(t("benchmarks.seat_loaded", k=len(tests), n=total))
        mode = precision_view.choice("bias_seat_precision", "seat")
        button, bar = st.container(), st.empty()
        with button:
            out = run_on_click(
                "bias_seat_run",
                t("benchmarks.seat_run"),
                _run_seat_files,
                loaded,
                tests,
                pooling,
                layers,
                mode,
                inputs=[loaded.spec, [(x.name, list(x.sizes)) for x in tests], pooling, layers, mode],
                kind="weat",
                estimate_s=live_view.seat_estimate(loaded, tests, mode),
                progress="tick",
                tick=_counting(bar, total, "benchmarks.embedding", "benchmarks.embedding_n"),
                hint="",
                on_result=lambda r: _record_seat_files(loaded, tests, pooling, layers, mode, r),
            )
        bar.empty()
        if out is None:
            _press("bias_seat_run", t("benchmarks.seat_press"))
            return
        entries, rid = [f[0] for f in out.value], out.run_id
        if out.warning:
            show_notice(out.warning)
        deviation = seat_files.suite_deviation(entries)
        precision_view.ran("seat", mode if deviation is not None else EXACT, deviation)
        report = {"model": loaded.facts.model_id, "pooling": pooling, "tests": entries, "run_id": rid}
        layers_all = sorted({x["layer"] for e in entries for x in e["layers"]})
        grid = pd.DataFrame(
            [
                {
                    "test": e["file"],
                    "n (X/Y/A/B)": "/".join(map(str, e["n"])),
                    **{
                        f"layer {x['layer']}": f"{x['effect_size']:+.2f}{seat_files.stars(x['p_value'])}"
                        for x in e["layers"]
                    },
                }
                for e in entries
            ],
            columns=["test", "n (X/Y/A/B)"] + [f"layer {x}" for x in layers_all],
        )
        st.dataframe(grid, hide_index=True, key="bias_seat_grid")
        st.caption(t("benchmarks.seat_stars"))
        flat = pd.DataFrame([{"test": e["file"], **x} for e in entries for x in e["layers"]])
        name = export_name("seat", loaded.facts.model_id, pooling, f"run-{rid}" if rid else "")
        export_buttons(
            "bias_seat_exp",
            None,
            flat,
            name,
            {
                "model": loaded.spec,
                "pooling": pooling,
                "layers": layers,
                "run_id": rid,
                "precision": mode,
                "deviation": deviation,
            },
        )
        st.download_button(
            t("benchmarks.seat_html"),
            lambda: seat_files.html_table(report),
            f"{name}_table.html",
            "text/html",
            key="bias_seat_html",
        )


# ---------------------------------------------------------------- Runs
def _run_label(r: dict) -> str:
    return f"#{r['id']} · {r['kind']} · {r['model'][-40:]} · {r['date'][:16]}"


def section_runs(loaded: LoadedModel) -> None:
    st.markdown(t("benchmarks.runs_intro"))
    try:
        runs = run_store.list_runs()
    except LlmvizError as err:
        show_error(err)
        return
    if not runs:
        st.info(t("benchmarks.runs_none"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r["id"],
                    "kind": r["kind"],
                    "model": r["model"],
                    "date": r["date"],
                    "data_sha256": (r["data_sha256"] or "")[:12],
                    "items": r["n_items"],
                }
                for r in runs
            ]
        ),
        hide_index=True,
        key="bias_runs_table",
    )
    if len(runs) < 2:
        st.info(t("benchmarks.runs_need_two"))
        return
    by_id = {r["id"]: r for r in runs}
    first = run_store.comparable_pair(runs)  # opens on the newest comparable pair, never on a run with no partner
    if first is not None and st.session_state.get("bias_runs_a") not in by_id:
        st.session_state["bias_runs_a"], st.session_state["bias_runs_b"] = first
    c1, c2 = st.columns(2)
    a = c1.selectbox(
        t("benchmarks.run_a"),
        list(by_id),
        key="bias_runs_a",
        format_func=lambda i: _run_label(by_id[i]),
    )
    same = [r["id"] for r in runs if r["kind"] == by_id[a]["kind"] and r["id"] != a]
    if not same:
        st.info(t_text("benchmarks.runs_no_partner", kind=by_id[a]["kind"]))
        return
    if st.session_state.get("bias_runs_b") not in same:
        st.session_state["bias_runs_b"] = same[0]
    b = c2.selectbox(t("benchmarks.run_b"), same, key="bias_runs_b", format_func=lambda i: _run_label(by_id[i]))
    try:
        cmp = run_store.compare_runs(a, b)
    except LlmvizError as err:
        show_error(err)
        return
    for code in cmp["note_codes"]:  # the library's English notes, in the reader's language
        show_notice(t(f"benchmarks.runs_note_{code}"))
    side = pd.DataFrame(
        [
            {
                "": t("benchmarks.run_a"),
                **{k: cmp["a"][k] for k in ("id", "model", "date")},
                "model_hash": (cmp["a"]["model_hash"] or "")[:12],
            },
            {
                "": t("benchmarks.run_b"),
                **{k: cmp["b"][k] for k in ("id", "model", "date")},
                "model_hash": (cmp["b"]["model_hash"] or "")[:12],
            },
        ]
    )
    st.dataframe(side, hide_index=True, key="bias_runs_side")
    o = cmp["overall"]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("benchmarks.mean_a"), f"{o['mean_a']:.3f}")
    c2.metric(t("benchmarks.mean_b"), f"{o['mean_b']:.3f}")
    c3.metric(t("benchmarks.diff"), f"{o['mean_diff']:+.3f}", help=t("benchmarks.diff_help"))
    st.caption(t("benchmarks.diff_ci", lo=f"{o['ci95'][0]:+.3f}", hi=f"{o['ci95'][1]:+.3f}", n=o["n"]))
    fig = benchmark_figures.paired_diff(cmp, labels=fig_labels())
    name = export_name(
        "runs", by_id[a]["kind"], f"run-{a}", cmp["a"]["model"], "vs", f"run-{b}", cmp["b"]["model"]
    )  # e.g. runs_stereoset_run-1_smollm2_vs_run-2_minilm
    plot(fig, key="bias_runs_fig", export_name=name)
    groups = pd.DataFrame(
        [
            {
                "group": g,
                **{k: v for k, v in blk.items() if k != "ci95"},
                "ci95_low": blk["ci95"][0],
                "ci95_high": blk["ci95"][1],
            }
            for g, blk in list(cmp["by_group"].items()) + [("overall", o)]
        ]
    )
    st.dataframe(groups, hide_index=True, key="bias_runs_groups")
    st.caption(t("benchmarks.runs_value_note"))
    items = pd.DataFrame(cmp["items"])
    with st.expander(t("benchmarks.runs_items")):
        st.dataframe(items, hide_index=True, key="bias_runs_items")
    export_buttons(
        "bias_runs_exp",
        fig,
        items,
        name,
        {"a": cmp["a"], "b": cmp["b"], "overall": o, "by_group": cmp["by_group"]},
    )


# ---------------------------------------------------------------- the page's sections
SECTIONS: dict[str, Callable[[LoadedModel], None]] = {
    "templates": section_templates,
    "pairs": section_pairs,
    "counterfactual": section_counterfactual,
    "weat": section_weat,
    "mitigation": section_mitigation,
    "stereoset": section_stereoset,
    "mechanism": lambda loaded: mechanism_view.section(loaded, _pair_source, _stereoset_source),
    "runs": section_runs,
}


def render(section: str, loaded: LoadedModel) -> None:
    """Draw ``section`` (one of ui.registry.BIAS_SECTIONS) for the loaded model."""
    SECTIONS[section](loaded)
