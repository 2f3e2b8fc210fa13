"""Views of the Intervene page: activation patching, direct logit attribution, steering vectors.

Heavy runs start on a click through ``ui.jobs.run_on_click`` (queue, progress, Stop, the result kept for
this session and its inputs, drawn again on every rerun in the tab where it was asked for).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from llmviz.bias.pairs_data import starter_pairs
from llmviz.bias.templates import EXAMPLE_TARGETS, EXAMPLE_TEMPLATE
from llmviz.bias.weat import word_sets
from llmviz.errors import LlmvizError
from llmviz.estimate import estimate
from llmviz.explain.targets import KIND_FOR_MODEL, MASKED_TOKEN, NEXT_TOKEN, SIMILARITY
from llmviz.generation.generate import MAX_NEW_TOKENS_LIMIT, SamplingParams
from llmviz.interventions import dla, patching, steering
from llmviz.interventions.sites import HEAD, SITE_KINDS, Site
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel
from llmviz.precision import EXACT
from llmviz.report import export_name
from llmviz.viz import generate as gviz
from llmviz.viz import interventions as viz
from ui.common import (
    export_buttons,
    generation_deviation_caption,
    generation_precision_choice,
    plot,
    precision_choice,
)
from ui.i18n import fig_labels, t
from ui.jobs import kept_results, remember, remembered, run_on_click
from ui.links import presenter_mode
from ui.registry import PAGE_FILES
from ui.text import md_escape, show_error, show_text, t_text
from ui.views.intervene_parts import sweep as sweep_view
from ui.views.intervene_parts import translator as translator_view  # noqa: F401 (the router's translator views)

DEFAULT_PAIR = {
    NEXT_TOKEN: ("The Eiffel Tower is in the city of", "The Colosseum is in the city of"),
    MASKED_TOKEN: ("The capital of France is [MASK].", "The capital of Italy is [MASK]."),
    SIMILARITY: ("A man is playing a guitar on stage.", "A man is playing a football on stage."),
}
DEFAULT_TEXT_B = "Someone performs music for an audience."
DEFAULT_SET = "he_she"
STEER_TAB = "iv_steer_tab"  # the steering view's open tab, kept across reruns (a click in a tab stays there)


def url_fields(loaded: LoadedModel, qp) -> dict:
    """The widgets the page's URL sets (``ui.links.url_state``): the section, and the prompt pair, answer
    tokens and steering layer a copied link carries (``qp(name, default, ...)`` reads one parameter)."""
    kinds = KIND_FOR_MODEL[loaded.facts.kind]
    kind = qp("kind", kinds[0], choices=kinds)
    clean_d, corrupt_d = DEFAULT_PAIR[kind]
    fields = {
        "iv_kind": kind,
        f"iv_clean_{kind}": qp("text", clean_d),
        f"iv_corrupt_{kind}": qp("corrupt", corrupt_d),
        "iv_correct": qp("correct", ""),
        "iv_wrong": qp("wrong", ""),
    }
    if loaded.facts.n_layers:
        fields["iv_layer"] = min(max(qp("layer", loaded.facts.n_layers // 2, int), 0), loaded.facts.n_layers - 1)
    return fields


def link_state(section: str) -> dict:
    """What "Link to this view" carries: the section and the inputs typed on it."""
    state: dict = {"section": section}
    if section == "steering":
        state["layer"] = st.session_state.get("iv_layer")
        return state
    kind = st.session_state.get("iv_kind")
    if kind:
        state.update(
            kind=kind,
            text=st.session_state.get(f"iv_clean_{kind}"),
            corrupt=st.session_state.get(f"iv_corrupt_{kind}"),
            correct=st.session_state.get("iv_correct") or None,
            wrong=st.session_state.get("iv_wrong") or None,
        )
    return state


# ------------------------------------------------------------------ the prompt pair
def _replace(kind: str) -> None:
    try:
        st.session_state[f"iv_corrupt_{kind}"] = patching.replace_word(
            st.session_state.get(f"iv_clean_{kind}", ""),
            st.session_state.get("iv_word_x", ""),
            st.session_state.get("iv_word_y", ""),
        )
        st.session_state.pop("iv_replace_error", None)
    except LlmvizError as err:
        st.session_state["iv_replace_error"] = str(err)


def prompt_pair(loaded: LoadedModel) -> dict | None:
    """Widgets for the clean/corrupted pair, the answer tokens, and the tokenizations side by side
    (their first values come from the URL: :func:`url_fields`)."""
    kinds = KIND_FOR_MODEL[loaded.facts.kind]
    if st.session_state.get("iv_kind") not in kinds:
        st.session_state["iv_kind"] = kinds[0]
    kind = (
        kinds[0]
        if len(kinds) == 1
        else st.radio(
            t("intervene.target_kind"),
            kinds,
            key="iv_kind",
            horizontal=True,
            format_func=lambda k: t(f"intervene.kind_{k}"),
        )
    )
    st.caption(t(f"intervene.kind_help_{kind}"))
    clean_d, corrupt_d = DEFAULT_PAIR[kind]
    st.session_state.setdefault(f"iv_clean_{kind}", clean_d)
    st.session_state.setdefault(f"iv_corrupt_{kind}", corrupt_d)
    c1, c2 = st.columns(2)
    clean = c1.text_input(t("intervene.clean"), key=f"iv_clean_{kind}", help=t("intervene.clean_help"))
    corrupt = c2.text_input(t("intervene.corrupt"), key=f"iv_corrupt_{kind}", help=t("intervene.corrupt_help"))
    with st.expander(t("intervene.replace_heading"), expanded=False):
        r1, r2, r3 = st.columns([2, 2, 1])
        r1.text_input(t("intervene.replace_x"), key="iv_word_x")
        r2.text_input(t("intervene.replace_y"), key="iv_word_y")
        r3.button(t("intervene.replace_button"), key="iv_replace", on_click=_replace, args=(kind,))
        if st.session_state.get("iv_replace_error"):
            st.error(md_escape(st.session_state["iv_replace_error"]), icon=":material/error:")
    text_b = correct = wrong = None
    if kind == SIMILARITY:
        text_b = st.text_input(t("intervene.text_b"), value=DEFAULT_TEXT_B, key="iv_text_b")
    else:
        a1, a2 = st.columns(2)
        st.session_state.setdefault("iv_correct", "")
        st.session_state.setdefault("iv_wrong", "")
        correct = (
            a1.text_input(t("intervene.correct"), key="iv_correct", help=t("intervene.correct_help")).strip() or None
        )
        wrong = a2.text_input(t("intervene.wrong"), key="iv_wrong", help=t("intervene.wrong_help")).strip() or None
    try:
        tc, tx = patching.pair_tokens(loaded, clean, corrupt, kind)
    except LlmvizError as err:
        show_error(err)
        return None
    n = max(len(tc), len(tx))
    table = pd.DataFrame(
        {
            t("intervene.col_position"): list(range(n)),
            t("intervene.col_clean"): tc + [""] * (n - len(tc)),
            t("intervene.col_corrupt"): tx + [""] * (n - len(tx)),
            t("intervene.col_differs"): [i >= min(len(tc), len(tx)) or tc[i] != tx[i] for i in range(n)],
        }
    )
    with st.expander(t("intervene.tokens_heading", a=len(tc), b=len(tx)), expanded=len(tc) != len(tx)):
        st.dataframe(table, hide_index=True)
    if len(tc) != len(tx):
        st.warning(t("intervene.length_mismatch", a=len(tc), b=len(tx)))
        return None
    diff = [i for i in range(n) if tc[i] != tx[i]]
    st.caption(t_text("intervene.differs_at", positions=", ".join(f"{i} ({tc[i]} → {tx[i]})" for i in diff) or "—"))
    return {"clean": clean, "corrupt": corrupt, "kind": kind, "correct": correct, "wrong": wrong, "text_b": text_b}


def _setup(loaded: LoadedModel, pair: dict):
    """The clean and corrupted runs (two forward passes, light): kept for this session and the pair."""
    inputs = [loaded.spec, pair]
    setup = remembered("iv_setup", inputs)
    if setup is None:
        setup = patching.prepare(
            loaded, pair["clean"], pair["corrupt"], pair["kind"], pair["correct"], pair["wrong"], pair["text_b"]
        )
        remember("iv_setup", inputs, setup)
    return setup


def _metric_line(setup) -> None:
    st.markdown(
        t_text(
            "intervene.metric_line", metric=setup.label, clean=f"{setup.m_clean:.4f}", corrupt=f"{setup.m_corrupt:.4f}"
        )
    )


# ------------------------------------------------------------------ patching
def patching_section(loaded: LoadedModel, pair: dict) -> None:
    st.caption(t("intervene.patch_help"))
    try:
        setup = _setup(loaded, pair)
    except LlmvizError as err:
        show_error(err)
        return
    _metric_line(setup)
    kinds = list(SITE_KINDS)
    batch = patching.DEFAULT_BATCH
    mode = EXACT
    if not presenter_mode():
        c1, c2 = st.columns([3, 1])
        kinds = c1.multiselect(
            t("intervene.sites"),
            list(SITE_KINDS),
            default=list(SITE_KINDS),
            key="iv_sites",
            format_func=lambda k: t(f"intervene.site_{k}"),
        )
        batch = c2.slider(
            t("intervene.batch"), 1, 64, patching.DEFAULT_BATCH, key="iv_batch", help=t("intervene.batch_help")
        )
        mode = precision_choice("iv_precision", "intervene")
    L, T, H = loaded.facts.n_layers, setup.n_tokens, loaded.facts.n_heads
    n_sites = sum(L * (H if k == HEAD else T) for k in kinds)
    st.caption(t("intervene.patch_cost", sites=n_sites, passes=patching.n_passes(setup, kinds, batch)))
    # the sweep's work as its batches are formed (checks, null run, sites, fast mode's float32 batch)
    work = patching.sweep_work(setup, kinds, batch, mode)
    res = run_on_click(
        "iv_run_patch",
        t("intervene.run_patch"),
        patching.patching_sweep,
        setup,
        kinds=tuple(kinds),
        batch_size=batch,
        precision=mode,
        inputs=[loaded.spec, pair, kinds, batch, mode],
        kind="intervene",
        estimate_s=estimate(loaded, "patching", work) if kinds else None,
        progress="progress",
        progress_text=t("intervene.patching"),
        live=sweep_view.live(setup, kinds),
        disabled=not kinds,
        hint=t("intervene.patch_click"),
    )
    if res is None:
        return
    st.success(
        t(
            "intervene.patch_check",
            full=f"{np.max(np.abs(res.full_resid - 1)):.1e}",
            null=f"{abs(res.null):.1e}",
            s=f"{res.seconds:.1f}",
            sites=res.n_sites,
        )
    )
    if res.deviation is not None:
        st.info(t("intervene.fast_deviation", d=f"{res.deviation:.2g}", n=min(res.batch_size, res.n_sites)))
    tabs = st.tabs([t(f"intervene.site_{k}") for k in res.scores])
    figs = {}
    name = export_name("intervene", loaded.facts.model_id, "patching")
    for tab, kind in zip(tabs, res.scores):
        with tab:
            figs[kind] = sweep_view.patch_figure(res.scores[kind], kind, res.tokens_clean, res.tokens_corrupt)
            event = plot(
                figs[kind],
                key=f"iv_patch_fig_{kind}",
                on_select="rerun",
                selection_mode="points",
                export_name=f"{name}-{kind}",
            )
            _cell_predictions(setup, res, kind, event)
            export_buttons(f"iv_patch_exp_{kind}", fig=figs[kind], stem=f"{name}-{kind}")
    st.caption(t("intervene.patch_caveat"))
    fig = next(iter(figs.values()))
    export_buttons(
        "iv_patch_exp",
        fig=fig,
        data=pd.DataFrame(res.rows()),
        stem=name,
        meta={**res.params(), "model": loaded.facts.model_id},
    )


def _cell_predictions(setup, res, kind: str, event) -> None:
    """The patched run's top predictions for a clicked cell (or one chosen below)."""
    L, n = res.scores[kind].shape
    layer, index = int(np.nanargmax(res.scores[kind]) // n), int(np.nanargmax(res.scores[kind]) % n)
    points = (getattr(event, "selection", None) or {}).get("points", []) if event is not None else []
    if points:
        try:
            layer = int(str(points[0]["y"]).lstrip("L"))
            x = str(points[0]["x"])
            index = int(x.lstrip("h")) if kind == HEAD else int(x.split(" ", 1)[0])
        except (KeyError, ValueError, TypeError):
            pass
    c1, c2 = st.columns(2)
    layer = c1.number_input(t("intervene.axis_layer"), 0, L - 1, layer, key=f"iv_cell_layer_{kind}")
    index = c2.number_input(
        t("intervene.axis_head") if kind == HEAD else t("intervene.axis_position"),
        0,
        n - 1,
        index,
        key=f"iv_cell_index_{kind}",
    )
    site = Site(kind, int(layer), int(index))
    inputs = [id(setup), site.kind, site.layer, site.index]
    kept = remembered("iv_cell", inputs)
    if kept is None:  # one patched forward pass per newly chosen cell
        kept = patching.patched_predictions(setup, site, k=10)
        remember("iv_cell", inputs, kept, keep=16)
    value, preds = kept
    st.markdown(t_text("intervene.cell_value", site=site.label(), value=f"{value:.3f}"))
    if preds:
        st.dataframe(pd.DataFrame(preds, columns=[t("intervene.col_token"), t("intervene.col_prob")]), hide_index=True)


# ------------------------------------------------------------------ direct logit attribution
def dla_section(loaded: LoadedModel, pair: dict) -> None:
    st.caption(t("intervene.dla_help"))
    if loaded.facts.kind != CAUSAL_LM:
        st.info(t_text("intervene.dla_needs_causal", model=loaded.facts.model_id))
        return
    try:
        setup = _setup(loaded, pair)
    except LlmvizError as err:
        show_error(err)
        return
    _metric_line(setup)
    res = run_on_click(
        "iv_run_dla",
        t("intervene.run_dla"),
        dla.direct_logit_attribution,
        setup,
        inputs=[loaded.spec, pair],
        kind="intervene",
        hint=t("intervene.dla_click"),
    )
    if res is None:
        return
    c = st.columns(3)
    c[0].metric(t("intervene.dla_real"), f"{res.real:.4f}")
    c[1].metric(t("intervene.dla_frozen"), f"{res.frozen_logit_diff:.4f}")
    c[2].metric(t("intervene.dla_sum"), f"{res.frozen_total:.4f}")
    ok = res.sum_error < 1e-4 and res.frozen_error < 1e-3
    (st.success if ok else st.warning)(
        t("intervene.dla_check", sum=f"{res.sum_error:.1e}", frozen=f"{res.frozen_error:.1e}", norm=res.norm_kind)
    )
    fig = viz.dla_waterfall(
        res.names,
        res.terms,
        res.frozen_total,
        t("intervene.fig_waterfall", metric=res.label),
        t("intervene.total"),
        labels=fig_labels(),
    )
    name = export_name("intervene", loaded.facts.model_id, "dla")
    plot(fig, key="iv_dla_waterfall", export_name=f"{name}_by-component")
    plot(
        viz.head_heatmap(res.heads, t("intervene.fig_dla_heads"), labels=fig_labels()),
        key="iv_dla_heads",
        export_name=f"{name}_by-head",
    )
    patch = _latest_patch(loaded, pair)
    if patch is not None and HEAD in patch.scores:
        cmp = dla.compare_with_patching(res, patch)
        plot(
            viz.dla_vs_patching(
                res.heads,
                patch.scores[HEAD],
                t("intervene.fig_compare"),
                t("intervene.axis_dla"),
                t("intervene.axis_patch"),
                labels=fig_labels(),
            ),
            key="iv_dla_compare",
            export_name=f"{name}_vs-patching",
        )
        st.markdown(
            t(
                "intervene.compare_line",
                r=_fmt(cmp.get("heads_r")),
                attn=_fmt(cmp.get("attn_last_r")),
                mlp=_fmt(cmp.get("mlp_last_r")),
            )
        )
    else:
        st.info(t("intervene.compare_run_patch"))
    st.caption(t("intervene.dla_caveat"))
    export_buttons(
        "iv_dla_exp",
        fig=fig,
        data=pd.DataFrame(res.rows()),
        stem=f"{name}_by-component",
        meta={**res.params(), **setup.params(), "model": loaded.facts.model_id},
    )


def _latest_patch(loaded: LoadedModel, pair: dict):
    """The newest patching sweep of this session for the same model and prompt pair (any sites), if any."""
    return next(
        (r for inputs, r in reversed(kept_results("iv_run_patch")) if inputs[:2] == [loaded.spec, pair]),
        None,
    )


def _fmt(x) -> str:
    return "—" if x is None else f"{x:+.2f}"


# ------------------------------------------------------------------ steering
def _word_set_prompts(choice: str) -> tuple[list[str], list[str]]:
    test_id, pair = choice.rsplit(":", 1)
    test = word_sets()["tests"][test_id]
    return (list(test["X"]), list(test["Y"])) if pair == "XY" else (list(test["A"]), list(test["B"]))


def _set_prompts() -> None:
    choice = st.session_state.get("iv_set_choice") or DEFAULT_SET
    a, b = steering.DEFAULT_SETS[choice] if choice in steering.DEFAULT_SETS else _word_set_prompts(choice)
    st.session_state["iv_set_a"], st.session_state["iv_set_b"] = "\n".join(a), "\n".join(b)


def _parse_alphas(text: str) -> list[float]:
    try:
        vals = [float(x) for x in str(text).replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise LlmvizError(t("intervene.bad_alphas")) from None
    if not vals:
        raise LlmvizError(t("intervene.bad_alphas"))
    return vals


def steering_section(loaded: LoadedModel) -> None:
    st.caption(t("intervene.steer_help"))
    st.info(t("intervene.steer_caveat"))
    if loaded.facts.kind not in (CAUSAL_LM, MASKED_LM):
        st.info(t_text("intervene.steer_needs_lm", model=loaded.facts.model_id))
        return
    tests = word_sets()["tests"]
    options = list(steering.DEFAULT_SETS) + [f"{k}:{p}" for k in tests for p in ("XY", "AB")]

    def name(o):
        if o in steering.DEFAULT_SETS:
            return t(f"intervene.set_{o}")
        k, p = o.rsplit(":", 1)
        x, y = (tests[k]["X_name"], tests[k]["Y_name"]) if p == "XY" else (tests[k]["A_name"], tests[k]["B_name"])
        return t("intervene.set_words", x=x, y=y, test=tests[k]["title"])

    if "iv_set_a" not in st.session_state:
        _set_prompts()
    st.selectbox(
        t("intervene.set_choice"),
        options,
        index=options.index(DEFAULT_SET),
        key="iv_set_choice",
        format_func=name,
        on_change=_set_prompts,
        help=t("intervene.set_choice_help"),
    )
    c1, c2 = st.columns(2)
    text_a = c1.text_area(t("intervene.set_a"), key="iv_set_a", height=150, help=t("intervene.set_help"))
    text_b = c2.text_area(t("intervene.set_b"), key="iv_set_b", height=150, help=t("intervene.set_help"))
    n_layers = loaded.facts.n_layers
    c1, c2 = st.columns(2)
    layer = c1.slider(
        t("intervene.layer"), 0, n_layers - 1, n_layers // 2, key="iv_layer", help=t("intervene.layer_help")
    )
    from_pos = c2.number_input(t("intervene.from_pos"), 0, 512, 0, key="iv_from_pos", help=t("intervene.from_pos_help"))
    try:
        prompts_a, prompts_b = steering.parse_prompts(text_a, "prompts A"), steering.parse_prompts(text_b, "prompts B")
    except LlmvizError as err:
        show_error(err)
        return
    vec = run_on_click(
        "iv_run_vec",
        t("intervene.run_vec"),
        steering.steering_vector,
        loaded,
        prompts_a,
        prompts_b,
        layer,
        inputs=[loaded.spec, prompts_a, prompts_b, layer],
        kind="intervene",
        hint=t("intervene.vec_click", n=len(prompts_a) + len(prompts_b)),
    )
    if vec is None:
        return
    st.caption(t("intervene.vec_line", norm=f"{vec.norm:.2f}", resid=f"{vec.mean_norm:.2f}", layer=layer))
    default_alphas = (
        "-8, -4, 0, 4, 8"
        if vec.norm < 1e-9
        else ", ".join(
            f"{a:g}" for a in np.round(np.array([-2, -1, 0, 1, 2]) * vec.mean_norm / max(vec.norm, 1e-9) / 2, 1)
        )
    )
    alphas_text = st.text_input(
        t("intervene.alphas"),
        value=default_alphas,
        key="iv_alphas",
        help=t("intervene.alphas_help", n=steering.MAX_ALPHAS),
    )
    try:
        alphas = _parse_alphas(alphas_text)
    except LlmvizError as err:
        show_error(err)
        return
    # keyed: the open tab is kept across reruns, so a click inside a tab shows its result in that tab
    gen_tab, curve_tab, probe_tab = st.tabs(
        [t("intervene.tab_generate"), t("intervene.tab_curve"), t("intervene.tab_probe")],
        key=STEER_TAB,
        on_change="rerun",
    )
    with gen_tab:
        _generations(loaded, vec, alphas, int(from_pos))
    with curve_tab:
        _curve(loaded, vec, alphas, int(from_pos))
    with probe_tab:
        _probe(loaded, vec, alphas)


def _steer_name(loaded, vec) -> str:
    """Export-name stem of a steering run, e.g. ``intervene_smollm2_steering-layer-15``."""
    return export_name("intervene", loaded.facts.model_id, f"steering-layer-{vec.layer}")


def _generations(loaded, vec, alphas, from_pos) -> None:
    if loaded.facts.kind != CAUSAL_LM:
        st.info(t("intervene.gen_needs_causal"))
        return
    prompt = st.text_input(t("intervene.gen_prompt"), value="I think that the movie was", key="iv_gen_prompt")
    c = st.columns(3)
    max_new = c[0].slider(t("intervene.max_new"), 1, min(64, MAX_NEW_TOKENS_LIMIT), 16, key="iv_max_new")
    seed = c[1].number_input(t("intervene.seed"), 0, 10_000, 0, key="iv_seed")
    greedy = c[2].checkbox(t("intervene.greedy"), value=False, key="iv_greedy")
    precision = generation_precision_choice(loaded, "iv_gen_precision")
    res = run_on_click(
        "iv_run_gen",
        t("intervene.run_gen"),
        steering.generations_by_alpha,
        loaded,
        prompt,
        vec,
        alphas,
        SamplingParams(greedy=greedy, max_new_tokens=max_new, seed=int(seed)),
        from_pos=from_pos,
        precision=precision,
        inputs=[loaded.spec, vec.params(), alphas, from_pos, prompt, max_new, int(seed), greedy, precision],
        kind="intervene",
        progress="progress",
        progress_text=t("intervene.generating"),
        hint=t("intervene.gen_click"),
    )
    if res is None:
        return
    cols = st.columns(len(res.alphas))
    for col, a, g in zip(cols, res.alphas, res.generations):
        with col:
            st.markdown(f"**α = {a:g}**")
            show_text(g.text)
            st.html(gviz.tokens_html(g, labels=fig_labels()))
            if g.precision != EXACT:  # the fast mode, measured against float32 steered the same way
                st.caption(generation_deviation_caption(g))
    export_buttons(
        "iv_gen_exp",
        data=pd.DataFrame(res.rows()),
        stem=f"{_steer_name(loaded, vec)}_generations",
        meta={
            **vec.params(),
            "alphas": res.alphas,
            "prompt": prompt,
            "from_pos": from_pos,
            "seed": int(seed),
            "greedy": greedy,
            "model": loaded.facts.model_id,
            "precision": res.precision,
            "deviation": [
                None
                if g.deviation is None
                else {
                    "agree": g.deviation.agree,
                    "of": g.deviation.total,
                    "max_abs_dlogprob": g.deviation.max_abs_dlogprob,
                }
                for g in res.generations
            ],
        },
    )


def _curve(loaded, vec, alphas, from_pos) -> None:
    default = "The doctor said that" if loaded.facts.kind == CAUSAL_LM else "The doctor said that [MASK] was tired."
    text = st.text_input(t("intervene.curve_text"), value=default, key=f"iv_curve_text_{loaded.facts.kind}")
    toks = st.text_input(
        t("intervene.curve_tokens"), value="he, she", key="iv_curve_tokens", help=t("intervene.curve_tokens_help")
    )
    lo, hi = min(alphas + [0.0]), max(alphas + [0.0])
    grid = np.linspace(lo, hi, 21) if hi > lo else np.array([lo])
    try:
        curve = steering.logprob_curve(
            loaded, text, [x.strip() for x in toks.split(",") if x.strip()], vec, grid, from_pos
        )
    except LlmvizError as err:
        show_error(err)
        return
    fig = viz.alpha_curve(
        curve.alphas,
        curve.tokens,
        curve.logprobs,
        t("intervene.fig_curve", layer=vec.layer),
        "α",
        t("intervene.axis_logprob"),
        labels=fig_labels(),
    )
    name = f"{_steer_name(loaded, vec)}_log-prob-curve"
    plot(fig, key="iv_curve_fig", export_name=name)
    export_buttons(
        "iv_curve_exp",
        fig=fig,
        data=pd.DataFrame(curve.rows()),
        stem=name,
        meta={**vec.params(), "text": text, "from_pos": from_pos, "model": loaded.facts.model_id},
    )


def _probe(loaded, vec, alphas) -> None:
    st.caption(t("intervene.probe_help"))
    st.page_link(
        PAGE_FILES["bias"],
        label=t("intervene.to_mechanism"),
        icon=":material/balance:",
        query_params={"section": "mechanism"},
    )
    probe = st.radio(
        t("intervene.probe_kind"),
        ("templates", "pairs"),
        key="iv_probe_kind",
        horizontal=True,
        format_func=lambda p: t(f"intervene.probe_{p}"),
    )
    nonzero = [a for a in alphas if a != 0] or [0.0]
    alpha = st.select_slider(
        t("intervene.probe_alpha"), options=sorted(set(alphas)), value=nonzero[-1], key="iv_probe_alpha"
    )
    if probe == "templates":
        tpl = st.text_input(t("intervene.template"), value=EXAMPLE_TEMPLATE, key="iv_tpl")
        groups = st.text_input(t("intervene.groups"), value="man, woman", key="iv_groups")
        targets = st.text_input(t("intervene.targets"), value=", ".join(EXAMPLE_TARGETS[:8]), key="iv_targets")
        args = (
            tpl,
            [g.strip() for g in groups.split(",") if g.strip()],
            [x.strip() for x in targets.split(",") if x.strip()],
        )
    else:
        args = ()
    if probe == "templates":
        fn, call = steering.steered_template_probe, (loaded, *args, vec, float(alpha))
    else:
        fn, call = steering.steered_pairs_probe, (loaded, starter_pairs().frame, vec, float(alpha))
    res = run_on_click(
        "iv_run_probe",
        t("intervene.run_probe"),
        fn,
        *call,
        inputs=[loaded.spec, vec.params(), probe, float(alpha), args],
        kind="intervene",
        hint=t("intervene.probe_click"),
    )
    if res is None:
        return
    fig = viz.probe_before_after(
        res.before,
        res.after,
        (t("intervene.before"), t("intervene.after", alpha=f"{alpha:g}")),
        t("intervene.fig_probe"),
        res.what,
        labels=fig_labels(),
    )
    name = f"{_steer_name(loaded, vec)}_{export_name(f'probe-{probe}', f'alpha{alpha:g}')}"
    plot(fig, key="iv_probe_fig", export_name=name)
    st.markdown(
        t(
            "intervene.probe_line",
            before=f"{res.before['value']:.3f}",
            blo=f"{res.before['ci95'][0]:.3f}",
            bhi=f"{res.before['ci95'][1]:.3f}",
            after=f"{res.after['value']:.3f}",
            alo=f"{res.after['ci95'][0]:.3f}",
            ahi=f"{res.after['ci95'][1]:.3f}",
            n=res.before["n"],
        )
    )
    st.dataframe(pd.DataFrame(res.per_item), hide_index=True)
    st.caption(t("intervene.probe_caveat"))
    export_buttons(
        "iv_probe_exp",
        fig=fig,
        data=pd.DataFrame(res.per_item),
        stem=name,
        meta={
            **vec.params(),
            "probe": probe,
            "alpha": float(alpha),
            "before": res.before,
            "after": res.after,
            "model": loaded.facts.model_id,
        },
    )
