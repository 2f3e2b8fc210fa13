"""Views of the Playground page: the five applications with streamed generation and per-token
probabilities, branching, and fill-mask. pages/playground.py is the router; every function here takes what it
draws as arguments.

Every generation (Generate, Continue, forcing another token) goes through ``ui.jobs.run_on_click``: the
queue, Stop, the time budget and the result kept for this session and its inputs. The function it runs
(:func:`_stream`) draws the text token by token while it grows; the finished output becomes a branch of the
session's outputs (``on_result``), and a run stopped half way (Stop, a widget change, the time budget) is kept
as a stopped branch on the next run. A run in the fast mode (int8 weights) is measured against float32 in the
same job (``llmviz.generation.deviation``) and the agreement is shown beside it. Fill-mask runs as soon as it is
shown, through the same queue."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.estimate import Estimate, estimate, generation_work
from llmviz.generation import fill_mask as FM
from llmviz.generation.deviation import with_deviation
from llmviz.generation.generate import (
    MAX_NEW_TOKENS_LIMIT,
    MAX_PROMPT_WORDS,
    MAX_SENTENCES,
    Generation,
    GenerationStream,
    SamplingParams,
    branch,
    build_prompt,
    continue_generation,
)
from llmviz.generation.presets import DEFAULT_MODE, FILL_MASK, MODES, PRESETS, fill_example, presets_for
from llmviz.generation.transcript import fill_mask_csv, fill_mask_json, transcript_csv, transcript_json
from llmviz.limits import MAX_SYSTEM_PROMPT_WORDS
from llmviz.models.loading import CAUSAL_LM, ENCODER, LoadedModel
from llmviz.precision import EXACT
from llmviz.report import export_name
from llmviz.viz import generate as viz
from ui.common import (
    export_buttons,
    generation_deviation_caption,
    generation_precision_choice,
    offer_switch,
    plot,
)
from ui.i18n import fig_labels, lang, t
from ui.jobs import run_on_click
from ui.links import copy_link, presenter_mode, view_state
from ui.registry import PAGE_FILES
from ui.text import md_escape, show_notice, t_text

BRANCHES, STREAM, STEP, BRANCH, PENDING = "pg_branches", "pg_stream", "pg_step", "pg_branch", "pg_pending"
STREAM_AT = "pg_stream_at"  # the branch a running continuation extends (absent: a new branch)
SECONDARY = {"type": "secondary", "icon": None}  # Continue and Force look as they did next to Generate


def url_fields(qp) -> dict:
    """The text boxes the page's URL sets (``ui.links.url_state``) besides the preset picker."""
    initial = qp("preset", DEFAULT_MODE, choices=MODES)
    linked = qp("text", None)
    if initial == FILL_MASK:
        return {"pg_fill_text": linked or FM.CLASSIC_EXAMPLE}
    return {f"pg_user_{initial}": linked or PRESETS[initial].user, f"pg_system_{initial}": PRESETS[initial].system}


def linked_text(qp, mode: str) -> str | None:
    """The text a link gives for ``mode`` (only when the link names that preset)."""
    return qp("text", None) if qp("preset", DEFAULT_MODE) == mode else None


def honesty_note(loaded: LoadedModel) -> None:
    if loaded.spec == "smollm2":  # the note is about SmolLM2-135M only
        st.info(t("playground.honesty"), icon=":material/info:")


# ------------------------------------------------------------------ runs and branches
def _store(gen: Generation, at: int | None = None) -> None:
    """Keep a finished or interrupted output as a new branch (or, for a continuation, in place of branch
    ``at``, which it extends) and select it: the one side effect of a generation."""
    branches = st.session_state.setdefault(BRANCHES, [])
    if at is not None and 0 <= at < len(branches):
        branches[at] = gen
    else:
        branches.append(gen)
        at = len(branches) - 1
    st.session_state[PENDING] = at
    st.session_state.pop(STREAM, None)
    st.session_state.pop(STREAM_AT, None)


def _finish_interrupted() -> bool:
    """A stream left by a run that stopped half way (Stop, another widget changed, the time budget) is kept
    as a stopped branch; True when there was one."""
    stream = st.session_state.get(STREAM)
    if stream is None:
        return False
    _store(stream.result(), st.session_state.get(STREAM_AT))
    return True


def _tick(*_) -> None:
    """The progress callback of a stream: run_on_click puts the job's check in front of it (Stop, a newer run
    of the session and the time budget stop the stream at its next token)."""


def _stream(
    make: Callable[[], GenerationStream], box, at: int | None = None, fresh: bool = False, tick=_tick
) -> Generation:
    """Run by run_on_click in a slot of the queue: build the stream and draw it into ``box`` token by token.
    The stream stays in session state while it runs, so a run stopped half way keeps its text.
    ``at``: the branch a continuation extends; ``fresh``: a new generation replaces every branch."""
    stream = make()
    if fresh:
        st.session_state[BRANCHES] = []
    st.session_state[STREAM] = stream
    if at is not None:
        st.session_state[STREAM_AT] = at
    bar = box.progress(0.0, text=t("playground.streaming", i=0, n=stream.max_steps))
    out = box.empty()
    for rec in stream:
        tick(rec.index + 1, stream.max_steps)
        out.text(rec.text)
        bar.progress(
            (rec.index + 1) / stream.max_steps, text=t("playground.streaming", i=rec.index + 1, n=stream.max_steps)
        )
    gen = stream.result()
    if gen.precision != EXACT:  # the fast mode's deviation from float32, measured in the same job

        def measuring(done: int, total: int) -> None:
            tick(done, total)  # Stop stops here too: the run is kept, unmeasured
            bar.progress(done / total, text=t("playground.measuring_presets", i=done, n=total))

        bar.progress(1.0, text=t("playground.measuring"))
        gen = with_deviation(stream.loaded, gen, progress=measuring)
    bar.empty()
    out.empty()  # the finished output is drawn below, token by token with probabilities
    return gen


def _forced(gen: Generation) -> None:
    _store(gen)
    st.rerun()  # the outputs above the Force button are drawn again with the new branch


def _selected(branches: list) -> int:
    """Index of the branch shown in detail (the newest unless the user picked another)."""
    i = st.session_state.get(PENDING, st.session_state.get(BRANCH, len(branches) - 1))
    return min(max(int(i or 0), 0), len(branches) - 1)


def _on_chart_select() -> None:
    event = st.session_state.get("pg_chart")
    points = getattr(getattr(event, "selection", None), "points", None) or (
        (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
    )
    if points and "x" in points[0]:
        st.session_state[STEP] = int(points[0]["x"])


def _sampling_controls(mode: str, d: SamplingParams) -> SamplingParams:
    """Widgets for the decoding settings, starting from the preset's ``d`` (its stop strings are kept)."""
    with st.expander(t("playground.sampling"), expanded=not presenter_mode()):
        c = st.columns(4)
        greedy = c[0].toggle(
            t("playground.greedy"), value=d.greedy, key=f"pg_greedy_{mode}", help=t("playground.greedy_help")
        )
        temperature = c[1].slider(
            t("playground.temperature"),
            0.1,
            2.0,
            float(d.temperature),
            0.05,
            key=f"pg_temp_{mode}",
            disabled=greedy,
            help=t("playground.temperature_help"),
        )
        top_k = c[2].number_input(
            t("playground.top_k"),
            0,
            1000,
            int(d.top_k),
            key=f"pg_topk_{mode}",
            disabled=greedy,
            help=t("playground.top_k_help"),
        )
        top_p = c[3].slider(
            t("playground.top_p"),
            0.05,
            1.0,
            float(d.top_p),
            0.05,
            key=f"pg_topp_{mode}",
            disabled=greedy,
            help=t("playground.top_p_help"),
        )
        c = st.columns(4)
        rep = c[0].slider(
            t("playground.rep_penalty"),
            1.0,
            2.0,
            float(d.repetition_penalty),
            0.05,
            key=f"pg_rep_{mode}",
            help=t("playground.rep_penalty_help"),
        )
        max_new = c[1].slider(
            t("playground.max_new"),
            1,
            MAX_NEW_TOKENS_LIMIT,
            int(d.max_new_tokens),
            key=f"pg_max_{mode}",
            help=t("playground.max_new_help", n=MAX_NEW_TOKENS_LIMIT),
        )
        seed = c[2].number_input(
            t("playground.seed"), 0, 2**31 - 1, int(d.seed), key=f"pg_seed_{mode}", help=t("playground.seed_help")
        )
        n_alt = c[3].slider(t("playground.n_alt"), 2, 10, 5, key="pg_nalt")
        cs = st.columns(2)
        sentence = cs[0].number_input(
            t("playground.sentence_end_after"),
            0,
            MAX_NEW_TOKENS_LIMIT,
            int(d.sentence_end_after),
            key=f"pg_sentence_{mode}",
            help=t("playground.sentence_end_after_help"),
        )
        sentences = cs[1].number_input(
            t("playground.sentences"),
            1,
            MAX_SENTENCES,
            int(d.sentences),
            key=f"pg_sentences_{mode}",
            help=t("playground.sentences_help"),
            disabled=not sentence,
        )
        if d.stop_strings:
            st.caption(t_text("playground.stop_strings", s=", ".join(repr(x) for x in d.stop_strings)))
    return SamplingParams(
        greedy=greedy,
        temperature=temperature,
        top_k=int(top_k),
        top_p=top_p,
        repetition_penalty=rep,
        max_new_tokens=int(max_new),
        seed=int(seed),
        n_alternatives=int(n_alt),
        sentence_end_after=int(sentence),
        stop_strings=d.stop_strings,
        sentences=int(sentences),
    )


def _estimate(loaded: LoadedModel, prompt_tokens: int, new_tokens: int, precision: str) -> Estimate:
    """Seconds a generation takes here; the fast mode learns its own ratio to the calibration."""
    kind = "generate" if precision == EXACT else "generate_fast"
    return estimate(loaded, kind, generation_work(prompt_tokens, new_tokens))


def _branch_title(i: int, gen) -> str:
    if gen.forced_from is None:
        return f"{t('playground.branch_label', i=i + 1)} ({t('playground.branch_original')})"
    forced = gen.steps[gen.forced_from].token
    return f"{t('playground.branch_label', i=i + 1)} ({t_text('playground.branch_forced', step=gen.forced_from, token=repr(forced))})"


def _show_results(loaded: LoadedModel, mode: str) -> None:
    branches = st.session_state.get(BRANCHES) or []
    if not branches:
        return
    if PENDING in st.session_state:
        st.session_state[BRANCH] = st.session_state.pop(PENDING)
        st.session_state[STEP] = 0
    st.subheader(t("playground.branches") if len(branches) > 1 else t("playground.output"))
    with st.expander(t("playground.rendered")):
        st.code(branches[0].prompt.text, language=None)
    for i, gen in enumerate(branches):
        if len(branches) > 1:
            st.markdown(f"**{_branch_title(i, gen)}**")
        st.html(viz.tokens_html(gen, labels=fig_labels()))
        st.caption(
            t(f"playground.stop_reason_{gen.stop_reason}")
            + " "
            + t(
                "playground.speed",
                n=len(gen.steps),
                s=gen.elapsed_s,
                tps=len(gen.steps) / gen.elapsed_s if gen.elapsed_s else 0.0,
                ttft=gen.ttft_s or 0.0,
            )
        )
        if gen.precision != EXACT:
            st.caption(generation_deviation_caption(gen))
        for notice in gen.notices:
            show_notice(notice)
    idx = (
        st.radio(
            t("playground.branch_pick"),
            range(len(branches)),
            key=BRANCH,
            horizontal=True,
            format_func=lambda i: _branch_title(i, branches[i]),
        )
        if len(branches) > 1
        else 0
    )
    gen = branches[min(int(idx or 0), len(branches) - 1)]
    if not gen.steps:
        return
    if st.session_state.get(STEP, 0) >= len(gen.steps):
        st.session_state[STEP] = 0
    step_i = st.session_state.get(STEP, 0)
    fig = viz.probability_chart(gen, selected=step_i, labels=fig_labels())
    shown = export_name(
        "playground", loaded.facts.model_id, mode, f"branch-{int(idx or 0) + 1}" if len(branches) > 1 else ""
    )
    plot(
        fig,
        key="pg_chart",
        on_select=_on_chart_select,
        selection_mode="points",
        export_name=f"{shown}_probabilities",
    )
    st.caption(t("playground.chart_help"))
    step_i = st.select_slider(
        t("playground.step"),
        options=list(range(len(gen.steps))),
        key=STEP,
        format_func=lambda i: f"{i}: {gen.steps[i].token!r}",
    )
    rec = gen.steps[step_i]
    c = st.columns([3, 2])
    with c[0]:
        plot(
            viz.alternatives_chart(rec, labels=fig_labels()),
            key="pg_alt_chart",
            export_name=f"{shown}_step-{step_i}-alternatives",
        )
    box = st.container()  # below the alternatives: the forced branch as it streams, Stop, messages
    with c[1]:
        st.markdown(f"**{t('playground.alternatives', i=step_i)}**")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("playground.alt_table_token"): repr(a.token),
                        "model p": round(a.model_prob, 4),
                        "sampled-from p": round(a.prob, 4),
                        "chosen": a.token_id == rec.token_id,
                    }
                    for a in rec.alternatives
                ]
            ),
            hide_index=True,
        )
        others = [a for a in rec.alternatives if a.token_id != rec.token_id]
        if others:
            alt = st.selectbox(
                t("playground.force_pick"),
                others,
                key="pg_force_pick",
                format_func=lambda a: f"{a.token!r} (p={a.model_prob:.3f})",
            )
            run_on_click(
                "pg_force",
                t("playground.force"),
                _stream,
                lambda: branch(loaded, gen, step_i, alt.token_id),
                box,
                tick=_tick,
                inputs=[loaded.spec, gen.token_ids, step_i, alt.token_id, gen.precision],
                kind="generate",
                progress="tick",
                hint="",
                button_args={**SECONDARY, "help": t("playground.force_help")},
                where=box,
                on_result=_forced,
            )
    if _finish_interrupted():  # the forced branch stopped half way (time budget): keep it and show it above
        st.rerun()
    st.markdown(f"**{t('playground.export')}**")
    transcript = export_name("playground", loaded.facts.model_id, mode, "transcript")
    c = st.columns(2)
    c[0].download_button(
        t("playground.dl_transcript_json"),
        transcript_json(branches, loaded.facts),
        f"{transcript}.json",
        "application/json",
        key="pg_dl_json",
    )
    c[1].download_button(
        t("playground.dl_transcript_csv"),
        transcript_csv(branches, loaded.facts),
        f"{transcript}.csv",
        "text/csv",
        key="pg_dl_csv",
    )
    export_buttons("pg_fig", fig=fig, stem=f"{shown}_probabilities")
    _open_elsewhere(gen)


def _open_elsewhere(gen) -> None:
    """Links carrying the prompt plus the generated continuation to the Attention page and to information flow,
    so students see what the model attended to while it wrote."""
    full = gen.prompt.text + gen.text
    st.caption(t("playground.open_help"))
    c = st.columns(2)
    for col, page, state, key in (
        (c[0], "attention", {"view": "head", "text": full}, "playground.open_attention"),
        (c[1], "explain", {"section": "flow", "text": full}, "playground.open_flow"),
    ):
        params = {k: str(v) for k, v in view_state(state).items() if v is not None}
        col.page_link(PAGE_FILES[page], label=t(key), icon=":material/open_in_new:", query_params=params)


def generation_section(loaded: LoadedModel, mode: str, linked: str | None) -> None:
    if not loaded.facts.supports("generate"):
        st.info(t("playground.need_causal", kind=t(f"home.kind_a_{loaded.facts.kind}")))
        offer_switch("generate")
        return
    chat = bool(loaded.facts.has_chat_template)
    style = "" if chat else f"_completion_{lang()}"  # a base model gets completion presets in the UI language
    preset = presets_for(chat, lang())[mode]
    # chat presets are one English set (llmviz.generation.presets); their notes are read in the reader's language
    st.caption(t(f"playground.note_{mode}") if chat else preset.note)
    system = ""
    if chat:
        system = st.text_area(
            t("playground.system"),
            value=preset.system,
            key=f"pg_system_{mode}",
            height=68,
            help=t("playground.system_help", n=MAX_SYSTEM_PROMPT_WORDS),
        )
    else:
        st.info(t("playground.base_model", model=loaded.facts.model_id), icon=":material/notes:")
    user = st.text_area(
        t("playground.user"),
        value=linked or preset.user,
        key=f"pg_user_{mode}{style}",
        height=100 if chat else 140,
        help=t("playground.user_help", n=MAX_PROMPT_WORDS),
    )
    st.caption(t("playground.chat_on") if chat else t("playground.chat_off_as_is"))
    params = _sampling_controls(mode, preset.params)
    precision = generation_precision_choice(loaded, "pg_precision")
    try:
        prompt_tokens = len(build_prompt(loaded, user, system).ids)
    except LlmvizError:  # an empty prompt: Generate says so when pressed
        prompt_tokens = 0
    copy_link("playground", {"preset": mode, "text": user}, key="pg")
    owner = (loaded.spec, mode)  # outputs belong to one model and one preset
    if st.session_state.get("pg_owner") != owner:
        st.session_state[BRANCHES] = []
        st.session_state.pop(STREAM, None)
        st.session_state["pg_owner"] = owner
    _finish_interrupted()  # the previous run was interrupted (Stop, or another widget changed)
    # one row whose buttons take the width of their labels (fixed columns cut them in presenter mode: "清…")
    row = st.container(horizontal=True)
    c = (row, row, row)
    box = st.container()  # below the buttons: queue notice, the text as it streams, Stop, messages
    with c[0]:
        run_on_click(
            "pg_generate",
            t("playground.generate"),
            _stream,
            lambda: GenerationStream(loaded, build_prompt(loaded, user, system), params.checked(), precision=precision),
            box,
            fresh=True,
            tick=_tick,
            inputs=[loaded.spec, mode, system, user, params.as_dict(), precision],
            kind="generate",
            estimate_s=_estimate(loaded, prompt_tokens, params.max_new_tokens, precision),
            progress="tick",
            hint="",
            where=box,
            on_result=_store,
        )
    more_help = t("playground.continue_help", n=params.max_new_tokens)
    branches = st.session_state.get(BRANCHES) or []
    with c[1]:
        if not branches:
            if st.button(t("playground.continue"), key="pg_continue", help=more_help, **SECONDARY):
                box.info(t("playground.continue_nothing"))
        else:
            # Continue: the selected output grows by up to "max new tokens", with its own settings and seed,
            # through the same work queue as Generate.
            at = _selected(branches)
            parent = branches[at]
            run_on_click(
                "pg_continue",
                t("playground.continue"),
                _stream,
                lambda: continue_generation(loaded, branches[at], params.max_new_tokens),
                box,
                at=at,
                tick=_tick,
                inputs=[loaded.spec, mode, branches[at].token_ids, params.max_new_tokens, parent.precision],
                kind="generate",
                estimate_s=_estimate(
                    loaded, len(parent.prompt.ids) + len(parent.steps), params.max_new_tokens, parent.precision
                ),
                progress="tick",
                hint="",
                button_args={**SECONDARY, "help": more_help},
                where=box,
                on_result=lambda gen: _store(gen, at),
            )
    if c[2].button(t("playground.clear"), key="pg_clear"):
        st.session_state[BRANCHES] = []
    _finish_interrupted()  # a run that failed half way (time budget): its text so far is kept
    _show_results(loaded, mode)


def fill_mask_section(loaded: LoadedModel, linked: str | None) -> None:
    facts = loaded.facts
    st.markdown(t("playground.fill_intro"))
    if facts.kind == ENCODER:
        st.info(t_text("playground.fill_encoder", model=facts.model_id))
        offer_switch("fill_mask_scoring")
        return
    causal = facts.kind == CAUSAL_LM
    st.info(t("playground.fill_causal_note") if causal else t("playground.fill_mlm_note"))
    example, example_cands = fill_example(causal, lang())
    suffix = f"_{lang()}" if causal and lang() != "en" else ""  # the Chinese example has its own boxes
    text = st.text_area(
        t("playground.fill_text"),
        value=linked or example,
        key=f"pg_fill_text{suffix}",
        height=80,
        help=t("playground.fill_text_help", n=FM.MAX_FILL_WORDS, m=FM.MAX_MASKS),
    )
    c = st.columns([1, 3])
    top_k = c[0].slider(t("playground.fill_k"), 1, FM.MAX_TOP_K, 10, key="pg_fill_k")
    candidates = ""
    if causal:
        candidates = c[1].text_input(
            t("playground.fill_candidates"),
            value=example_cands,
            key=f"pg_fill_cands{suffix}",
            placeholder="good, simple, short, test",
            help=t("playground.fill_candidates_help", n=FM.MAX_CANDIDATES, chars=FM.MAX_CANDIDATE_CHARS),
        )
    copy_link("playground", {"preset": FILL_MASK, "text": text}, key="pg_fill")
    with st.spinner("…"):
        result = run_on_click(
            "pg_fill_run",
            t("playground.mode_fill_mask"),
            FM.fill_mask,
            loaded,
            text,
            int(top_k),
            candidates or None,
            inputs=[loaded.spec, text, int(top_k), candidates],
            kind="fill_mask",
            auto=True,  # light: no button, it runs (in the queue) as soon as the text changes
            button=False,
            shared=True,
        )
    if result is None:
        return
    for notice in result.notices:
        show_notice(notice)
    if causal:
        st.caption(t(f"playground.fill_source_{result.candidate_source}"))
    best = md_escape(result.text)  # user text and model output shown literally; only the filled word is bold
    for slot in result.slots:
        best = best.replace(md_escape(result.mask_token), f"**{md_escape(slot.candidates[0])}**", 1)
    st.markdown(f"{t('playground.fill_best')}: {best}")
    cols = st.columns(min(len(result.slots), 3))
    name = export_name("playground", facts.model_id, "fill-mask")
    for i, slot in enumerate(result.slots):
        with cols[i % len(cols)]:
            chart = viz.fill_mask_chart(slot, result.method, labels=fig_labels())
            plot(chart, key=f"pg_fill_chart_{i}", export_name=f"{name}_mask-{slot.mask_number}")
    df = pd.DataFrame(result.rows())
    st.dataframe(df, hide_index=True)
    st.markdown(f"**{t('playground.fill_export')}**")
    c = st.columns(3)
    c[0].download_button(
        t("playground.dl_predictions_json"),
        fill_mask_json(result, facts),
        f"{name}_predictions.json",
        "application/json",
        key="pg_fill_json",
    )
    c[1].download_button(
        t("playground.dl_predictions_csv"),
        fill_mask_csv(result, facts),
        f"{name}_predictions.csv",
        "text/csv",
        key="pg_fill_csv",
    )
