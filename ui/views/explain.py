"""Views of the Explain page: the prediction to explain, attributions side by side, the logit lens and head
ablation. pages/explain.py is the router; every function here takes what it draws as arguments.

Heavy runs go through ``ui.jobs.run_on_click`` (queue, progress, Stop, the result kept for this session and
its inputs, and server-wide for the next student asking the same): attributions and head ablation start on a
click (with the estimate), the logit lens (one forward pass) runs as soon as it is shown. The top predictions
(one forward pass) are cached by Streamlit."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.estimate import attribution_work, estimate, forward_work
from llmviz.explain.ablation import ablation_problem, ablation_work, head_ablation, head_units, top_heads
from llmviz.explain.attribution import (
    IG_GAP_WARN,
    IG_RULES,
    MAX_IG_STEPS,
    MAX_OCCLUSION_WINDOW,
    METHODS,
    attribute_all,
    disagreement_notes,
    spearman_matrix,
    to_rows,
)
from llmviz.explain.ig_defaults import IGSettings, gap_advice, ig_defaults
from llmviz.explain.logit_lens import logit_lens
from llmviz.explain.targets import (
    KIND_FOR_MODEL,
    MASKED_TOKEN,
    NEXT_TOKEN,
    SIMILARITY,
    Target,
    available_baselines,
    build_problem,
    target_label,
    token_limit,
    top_predictions,
)
from llmviz.models.loading import CAUSAL_LM, ENCODER, LoadedModel
from llmviz.precision import BF16, EXACT
from llmviz.report import export_name
from llmviz.viz import explain as viz
from ui.common import export_buttons, plot
from ui.i18n import fig_labels, t
from ui.jobs import run_on_click
from ui.links import presenter_mode
from ui.text import md_escape, show_error, t_text
from ui.views.explain_parts import flow as flow_view
from ui.views.explain_parts import live as live_view
from ui.views.explain_parts import precision as precision_view
from ui.views.explain_parts import translator as translator_view  # noqa: F401 (the router's translator views)

DEFAULT_TEXT = {
    NEXT_TOKEN: "The doctor told the nurse that",
    MASKED_TOKEN: "The capital of France is [MASK].",
    SIMILARITY: "A man is playing a guitar on stage.",
}
DEFAULT_TEXT_B = "Someone performs music for an audience."


@dataclass(frozen=True)
class Question:
    """The prediction to explain: the text and its target."""

    text: str
    target: Target

    @property
    def target_json(self) -> str:
        return json.dumps(self.target.as_dict(), sort_keys=True)


def url_fields(loaded: LoadedModel, qp) -> dict:
    """The widgets the page's URL sets (``ui.links.url_state``) besides the section: the text and the target."""
    kinds = KIND_FOR_MODEL[loaded.facts.kind]
    return {"ex_target": qp("target", ""), **{f"ex_text_{k}": qp("text", DEFAULT_TEXT[k]) for k in kinds}}


def link_state(q: Question, section: str) -> dict:
    """What "Link to this view" carries: the text, the section and the target token."""
    return {"text": q.text, "section": section, "target": q.target.token}


def question(loaded: LoadedModel) -> Question:
    """Widgets for the kind of prediction, the text and the target (their first values come from the URL)."""
    kinds = KIND_FOR_MODEL[loaded.facts.kind]
    kind = (
        kinds[0]
        if len(kinds) == 1
        else st.radio(
            t("explain.target_kind"),
            kinds,
            key="ex_kind",
            horizontal=True,
            format_func=lambda k: t(f"explain.kind_{k}"),
        )
    )
    st.caption(t(f"explain.kind_help_{kind}"))
    text = st.text_area(
        t("explain.text"), key=f"ex_text_{kind}", help=t("explain.text_help", n=token_limit(loaded)), height=80
    )
    text_b = token = contrast = None
    score = "logit"
    if kind == SIMILARITY:
        text_b = st.text_input(
            t("explain.text_b"), value=DEFAULT_TEXT_B, key="ex_text_b", help=t("explain.text_b_help")
        )
    else:
        c1, c2 = st.columns(2)
        token = c1.text_input(t("explain.target"), key="ex_target", help=t("explain.target_help")).strip() or None
        contrast = (
            c2.text_input(t("explain.contrast"), value="", key="ex_contrast", help=t("explain.contrast_help")).strip()
            or None
        )
        if not presenter_mode():
            score = st.radio(
                t("explain.score"),
                ("logit", "log_prob"),
                key="ex_score",
                horizontal=True,
                format_func=lambda s: t(f"explain.score_{s}"),
                help=t("explain.score_help"),
            )
    return Question(text, Target(kind=kind, token=token, contrast=contrast, text_b=text_b, score=score))


@st.cache_data(show_spinner=False, max_entries=32)
def _predictions(_loaded, spec: str, text: str, target_json: str):
    problem = build_problem(_loaded, text, Target(**json.loads(target_json)))
    return (
        problem.label_parts,
        problem.tokens,
        problem.truncated,
        problem.n_tokens_original,
        top_predictions(problem, 10),
    )


def _attributions(loaded, text: str, target: Target, methods: tuple, params: dict, progress=None):
    """``progress(done, total, results so far)`` after each method: the page shows them one by one."""
    problem = build_problem(loaded, text, target)
    finished: list = []

    def tell(done: int, total: int, _name: str) -> None:
        progress(done, total, list(finished))

    tell_fn = tell if progress else None
    return problem.params(), attribute_all(problem, list(methods), params, progress=tell_fn, each=finished.append)


def _ablation(loaded, text: str, target: Target, whole: bool, batch: int, precision: str = EXACT, progress=None):
    problem = ablation_problem(loaded, text, target)
    return head_ablation(problem, whole_layers=whole, batch_size=batch, progress=progress, precision=precision)


def prediction(loaded: LoadedModel, q: Question) -> list | None:
    """What is explained and the model's top predictions; returns the tokens (None: an error, shown)."""
    try:
        parts, tokens, truncated, n_original, preds = _predictions(loaded, loaded.spec, q.text, q.target_json)
    except LlmvizError as err:
        show_error(err)
        return None
    if truncated:
        st.warning(t("explain.truncated", n=n_original, max=token_limit(loaded)))
    st.markdown(f"**{t('explain.explaining')}:** {md_escape(target_label(parts, fig_labels()))}")
    if preds:
        with st.expander(t("explain.top_predictions"), expanded=False):
            st.dataframe(pd.DataFrame(preds, columns=["token", "probability"]), hide_index=True)
    return tokens


# ------------------------------------------------------------------ attribution
def _settings_text(s: IGSettings) -> str:
    parts = [t(f"explain.baseline_{s.baseline}"), t("explain.n_steps", n=s.steps), t(f"explain.rule_{s.rule}")]
    return ", ".join(parts + ([t("explain.first_held")] if s.keep_first else []))


def _advice_text(a) -> str:
    if a.what == "steps":
        return t("explain.advice_steps", n=a.value)
    if a.what == "rule":
        return t("explain.advice_rule", rule=t(f"explain.rule_{a.value}"))
    if a.what == "keep_first":
        return t("explain.advice_keep_first")
    return t("explain.advice_baseline", baseline=t(f"explain.baseline_{a.value}"))


def _completeness(res, chosen_ig: IGSettings, baselines: list, ig: IGSettings) -> None:
    """Integrated gradients' completeness check, with advice when the gap is large."""
    c = st.columns(4)
    c[0].metric(t("explain.gap"), f"{res.completeness_gap:.2%}", help=t("explain.gap_help"))
    c[1].metric("f(x)", f"{res.f_x:.4f}")
    c[2].metric("f(baseline)", f"{res.f_baseline:.4f}")
    c[3].metric("Σ attributions", f"{res.scores.sum():.4f}")
    if res.completeness_gap > IG_GAP_WARN:
        # Advice names only what to change, never what is already chosen (llmviz.explain.ig_defaults).
        first_special = bool(res.special_mask[0]) if len(res.special_mask) else True
        advice = [
            _advice_text(a)
            for a in gap_advice(res.completeness_gap, chosen_ig, baselines, ig, first_is_special=first_special)
        ]
        st.warning(
            t(
                "explain.gap_high_lead",
                gap=f"{res.completeness_gap:.1%}",
                steps=chosen_ig.steps,
                rule=t(f"explain.rule_{chosen_ig.rule}"),
                baseline=t(f"explain.baseline_{chosen_ig.baseline}"),
            )
            + "\n"
            + "\n".join(f"- {a}" for a in advice)
            + "\n\n"
            + t("explain.gap_high_tail")
        )
    else:
        st.success(t("explain.gap_ok", gap=f"{res.completeness_gap:.2%}"))


def attribution_section(loaded: LoadedModel, q: Question, tokens: list) -> None:
    facts = loaded.facts
    names = list(METHODS)
    chosen = st.multiselect(
        t("explain.methods"),
        names,
        default=names,
        key="ex_methods",
        format_func=lambda m: t(f"explain.method_{m}"),
        help=t("explain.methods_help"),
    )
    # IG starts from the settings measured for this model (llmviz.explain.ig_defaults); the keys carry the
    # model so that each model opens with its own defaults.
    ig = ig_defaults(facts)
    baselines = available_baselines(loaded.tokenizer)
    mk = loaded.spec
    c1, c2, c3 = st.columns(3)
    steps = c1.slider(
        t("explain.ig_steps"),
        4,
        MAX_IG_STEPS,
        ig.steps,
        step=4,
        key=f"ex_steps_{mk}",
        help=t("explain.ig_steps_help", max=MAX_IG_STEPS),
    )
    baseline = c2.selectbox(
        t("explain.baseline"),
        baselines,
        index=baselines.index(ig.baseline) if ig.baseline in baselines else 0,
        key=f"ex_baseline_{mk}",
        help=t("explain.baseline_help"),
        format_func=lambda b: t(f"explain.baseline_{b}"),
    )
    window = c3.slider(t("explain.window"), 1, MAX_OCCLUSION_WINDOW, 1, key="ex_window", help=t("explain.window_help"))
    rule, keep_first = ig.rule, ig.keep_first
    if not presenter_mode():
        with st.expander(t("explain.advanced")):
            rule = st.radio(
                t("explain.rule"),
                IG_RULES,
                index=IG_RULES.index(ig.rule),
                key=f"ex_rule_{mk}",
                format_func=lambda r: t(f"explain.rule_{r}"),
                help=t("explain.rule_help"),
            )
            keep_first = st.checkbox(
                t("explain.keep_first"),
                value=ig.keep_first,
                key=f"ex_keep_first_{mk}",
                help=t("explain.keep_first_help"),
            )
    # exact or fast arithmetic for integrated gradients (part of the run's inputs: a change reruns)
    mode = precision_view.choice("ex_precision_ig", "ig") if "integrated_gradients" in chosen else EXACT
    st.caption(t("explain.ig_defaults", model=facts.model_id, settings=_settings_text(ig)))
    if not chosen:
        st.info(t("explain.pick_method"))
        return
    params = {
        "integrated_gradients": {
            "steps": steps,
            "baseline": baseline,
            "rule": rule,
            "keep_first": keep_first,
            "precision": mode,
        },
        "occlusion": {"window": window, "baseline": baseline},
    }
    n_tok = len(tokens)
    est = estimate(loaded, "attribution", attribution_work(chosen, n_tok, params))
    out = run_on_click(
        "ex_attr_start",
        t("explain.run_attr"),
        _attributions,
        loaded,
        q.text,
        q.target,
        tuple(chosen),
        params,
        inputs=[loaded.spec, q.text, q.target.as_dict(), chosen, params],
        kind="explain",
        estimate_s=est,
        progress="progress",
        progress_text=t("explain.computing"),
        live=live_view.attributions(facts.model_id),
        shared=True,
    )
    if out is None:
        return
    problem_params, results = out
    for res in results:
        if res.completeness_gap is not None:
            _completeness(res, IGSettings(baseline, steps, rule, keep_first), baselines, ig)
            precision_view.ig_ran(res.params)
            if res.note:
                st.caption(md_escape(res.note))
    colours = viz.token_html(results, labels=fig_labels())
    st.iframe(colours, height=60 + 48 * len(results))
    name = export_name("explain", facts.model_id, *(r.method for r in results))  # e.g. explain_smollm2_occlusion
    st.download_button(
        t("explain.download_colours"), colours, f"{name}_token-colours.html", "text/html", key="ex_colours_html"
    )
    fig = viz.method_heatmap(results, labels=fig_labels())
    plot(fig, key="ex_heatmap", export_name=name)
    if len(results) > 1:
        rho = spearman_matrix(results)
        agree = export_name("explain", facts.model_id, "method-agreement")
        plot(viz.spearman_figure(results, rho, labels=fig_labels()), key="ex_spearman", export_name=agree)
        notes = disagreement_notes(results, rho)
        if notes:
            st.info("\n".join(f"- {md_escape(n)}" for n in notes))
    st.caption(t("explain.disagree_note"))
    with st.expander(t("explain.method_notes")):
        for m in chosen:
            st.markdown(f"**{t(f'explain.method_{m}')}** — {t(f'explain.method_{m}_desc')}")
    export_buttons(
        "ex_attr",
        fig=fig,
        data=pd.DataFrame(to_rows(results)),
        stem=name,
        meta={**problem_params, "methods": {r.method: r.params for r in results}, "model": facts.model_id},
    )


# ------------------------------------------------------------------ logit lens
def logit_lens_section(loaded: LoadedModel, q: Question, tokens: list) -> None:
    facts = loaded.facts
    if facts.kind != CAUSAL_LM:
        st.info(t_text("explain.lens_needs_causal", model=facts.model_id))
        return
    token = q.target.token
    with st.spinner(t("explain.computing")):
        lens = run_on_click(
            "ex_lens_run",
            t("explain.section_logit_lens"),
            logit_lens,
            loaded,
            q.text,
            token,
            inputs=[loaded.spec, q.text, token],
            kind="explain",
            auto=True,  # one forward pass: no button, it runs (in the queue) as soon as it is shown
            button=False,
            shared=True,
        )
    if lens is None:
        return
    st.caption(t("explain.lens_help"))
    st.success(t("explain.lens_check", diff=f"{lens.output_max_diff:.1e}"))
    if lens.note:
        st.caption(md_escape(lens.note))
    fig = viz.logit_lens_heatmap(lens, labels=fig_labels())
    name = export_name("explain", facts.model_id, "logit-lens", f"target-{lens.target_token}")
    plot(fig, key="ex_lens", export_name=name)
    fig2 = viz.target_across_layers(lens, labels=fig_labels())
    plot(fig2, key="ex_lens_target", export_name=f"{name}_by-layer")
    first = next((n for n, r in zip(lens.layer_names, lens.target_ranks) if r == 1), None)
    st.markdown(t_text("explain.lens_first_top", token=lens.target_token, layer=first or "—"))
    export_buttons(
        "ex_lens_exp",
        fig=fig,
        data=pd.DataFrame(lens.rows()),
        stem=name,
        meta={**lens.params(), "model": facts.model_id},
    )


# ------------------------------------------------------------------ ablation
def ablation_section(loaded: LoadedModel, q: Question, tokens: list) -> None:
    facts = loaded.facts
    n_runs = facts.n_layers * facts.n_heads
    whole = st.checkbox(t("explain.whole_layer"), value=True, key="ex_whole", help=t("explain.whole_layer_help"))
    batch = 32
    if not presenter_mode():
        with st.expander(t("explain.advanced")):
            batch = st.slider(t("explain.batch"), 1, 64, 32, key="ex_batch", help=t("explain.batch_help"))
    mode = precision_view.choice("ex_precision_abl", "ablation")
    st.caption(t("explain.ablation_help", runs=n_runs + (facts.n_layers if whole else 0)))
    units = head_units(facts.n_layers, facts.n_heads, whole)  # as head_ablation batches them
    shared = facts.kind != ENCODER  # the similarity score runs every row through every layer
    work = ablation_work(units, facts.n_layers, len(tokens), batch, shared) + forward_work(len(tokens))
    if mode == BF16:  # its first batch again in float32
        work += ablation_work(units[:batch], facts.n_layers, len(tokens), batch, shared)
    est = estimate(loaded, "ablation", work)
    abl = run_on_click(
        "ex_abl_start",
        t("explain.run_ablation"),
        _ablation,
        loaded,
        q.text,
        q.target,
        whole,
        batch,
        mode,
        # the batch size changes the speed, not the result; the arithmetic changes the result
        inputs=[loaded.spec, q.text, q.target.as_dict(), whole, mode],
        kind="explain",
        estimate_s=est,
        progress="progress",
        progress_text=t("explain.ablating"),
        live=live_view.ablation(facts.model_id),
        shared=True,
    )
    if abl is None:
        return
    st.success(
        t("explain.ablation_check", base=f"{abl.base_score:.4f}", diff=f"{abl.null_delta:.1e}", s=f"{abl.seconds:.1f}")
    )
    precision_view.ablation_ran(abl)
    fig = viz.ablation_heatmap(abl, labels=fig_labels())
    name = export_name("explain", facts.model_id, "head-ablation")
    plot(fig, key="ex_abl", export_name=name)
    st.markdown(
        t("explain.top_heads")
        + " "
        + ", ".join(f"L{layer}·h{head} (Δ {d:+.3f})" for layer, head, d in top_heads(abl, 5))
    )
    if abl.layer_delta is not None:
        plot(
            viz.layer_ablation_bar(abl, labels=fig_labels()),
            key="ex_abl_layers",
            export_name=export_name("explain", facts.model_id, "layer-ablation"),
        )
    st.caption(t("explain.ablation_caveat"))
    export_buttons(
        "ex_abl_exp",
        fig=fig,
        data=pd.DataFrame(abl.rows()),
        stem=name,
        meta={**abl.params(), "model": facts.model_id},
    )


def flow_section(loaded: LoadedModel, q: Question, tokens: list) -> None:
    """Information flow (graph, top heads) and QK attribution: ui.views.explain_parts.flow."""
    flow_view.render(loaded, q.text)


SECTIONS = {
    "attribution": attribution_section,
    "logit_lens": logit_lens_section,
    "ablation": ablation_section,
    "flow": flow_section,
}


def render(section: str, loaded: LoadedModel, q: Question) -> None:
    """The prediction explained, then ``section``."""
    tokens = prediction(loaded, q)
    if tokens is not None:
        SECTIONS[section](loaded, q, tokens)
