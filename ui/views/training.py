"""Views of the Training lab: a tiny transformer trained live (overfitting and its cures), transfer learning,
data bias -> model bias, memorized secrets.

The page's ``?preset=`` names a live preset (the live section opens on it, its values fill the controls) or
another section (:func:`linked_preset`, :func:`url_fields`, :func:`section_to_url`).
Every run goes through ``ui.jobs.run_on_click`` (the server queue, progress, the result kept for this session
and its settings, drawn again on every rerun). Each section keeps its own Stop button, shown whether a run is
going or not: a click reruns the page, which cancels the run at its next progress point. The live run draws
its curves while it trains (its ``on_eval`` callback) and keeps a copy of them at each evaluation, so a run
stopped half way keeps the curves it finished until the next Train.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable

import pandas as pd
import streamlit as st

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.report import export_name
from llmviz.train import experiments, loop, privacy, tiny
from llmviz.train.corpus import MAX_SENTENCES, cooccurrence, grammar_corpus
from llmviz.viz import train as train_figures
from ui.common import export_buttons, load_cached, plot, plot_config, session_models, session_owner, switch_model
from ui.i18n import fig_labels, t
from ui.jobs import check, run_on_click
from ui.links import copy_link, to_url
from ui.registry import TRAINING_SECTIONS
from ui.text import show_error, t_text
from ui.views.training_parts import translator as translator_view

LIVE = tuple(experiments.PRESETS)
CONTROLS = (
    "objective",
    "positional",
    "n_layers",
    "d_model",
    "n_heads",
    "d_ff",
    "dropout",
    "stories",
    "epochs",
    "lr",
    "weight_decay",
    "early_stopping",
    "patience",
    "seed",
    "max_seconds",
)
PARTIAL = "trn_live_partial"  # the running live run's curves, copied at each evaluation
STOPPED = "trn_live_stopped"  # the curves of a live run stopped half way (kept until the next Train)
STOPPED_NAME = "trn_live_name"  # export name of the run those curves belong to
RUNS = "trn_runs"  # final losses of this session's live runs, by preset (the generalization-gap bars)


# ---------------------------------------------------------------- URL state
def linked_preset(qp) -> str:
    """What the URL's ``?preset=`` names: a live preset or a section other than "live" ("overfit" else)."""
    linked = qp("preset", "overfit")
    return linked if linked in LIVE + TRAINING_SECTIONS[1:] else "overfit"


def section_of(linked: str) -> str:
    """The section a linked preset opens."""
    return "live" if linked in LIVE else linked


def url_fields(linked: str) -> dict:
    """The widgets the URL sets besides the section: the live preset and the controls it fills."""
    preset = linked if linked in LIVE else "overfit"
    values = experiments.PRESETS[preset]
    return {"trn_preset": preset, **{f"trn_{name}": getattr(values, name) for name in CONTROLS}}


def section_to_url() -> None:
    """``?preset=`` follows the section, or on the live section its preset."""
    s = st.session_state.get("trn_section") or "live"
    st.session_state["_trn_url_preset"] = s if s != "live" else st.session_state.get("trn_preset", "overfit")
    to_url("_trn_url_preset", "preset", "training")()


def apply_preset() -> None:
    """Copy the chosen preset's values into the control widgets (runs before the script)."""
    p = experiments.PRESETS[st.session_state["trn_preset"]]
    for name in CONTROLS:
        st.session_state[f"trn_{name}"] = getattr(p, name)


def _on_preset() -> None:
    apply_preset()
    section_to_url()


# ---------------------------------------------------------------- shared pieces
def _activate(model_id: str) -> None:
    switch_model(model_id, remember=False)  # the picker and ?model= follow


def model_share(kind: str, model, tokenizer, meta: dict) -> None:
    """Register a trained model for the other pages and offer it as a zip (safetensors + config + tokenizer)."""
    with st.container(border=True):
        st.markdown(t("training.share_header"))
        key = f"trn_share_{kind}"
        public = False
        if not serving.is_shared():  # a class server: a model stays with the student who trained it
            public = st.checkbox(t("training.share_public"), key=f"{key}_public", help=t("training.share_public_help"))
        if st.button(t("training.share_button"), key=key, help=t("training.share_help")):
            try:
                mid = tiny.register_trained(
                    model,
                    tokenizer,
                    f"lab-{kind}",
                    t(f"training.share_title_{kind}"),
                    meta=meta,
                    owner=None if public else session_owner(),
                )
            except (LlmvizError, OSError) as err:
                show_error(err)
            else:
                st.session_state[f"{key}_id"] = mid
        mid = st.session_state.get(f"{key}_id")
        if mid:
            folder = session_models()[mid].locate()
            st.success(t_text("training.shared", model=mid))  # the name only, never the server folder
            c = st.columns(2)
            c[0].button(t("training.activate"), key=f"{key}_act", on_click=_activate, args=(mid,))
            c[1].download_button(
                t("training.download"), tiny.zip_folder(folder), f"{mid}.zip", "application/zip", key=f"{key}_zip"
            )


def live_name(params: experiments.LiveParams) -> str:
    """Export-name stem of a live run from its settings, e.g. ``training_live_overfit_causal-lm_loss-curves``
    (``custom`` when the settings match no preset)."""
    preset = next((p for p, v in experiments.PRESETS.items() if v == params), "custom")
    return export_name("training", "live", preset, params.objective, "loss-curves")


def stop_row(key: str) -> bool:
    """A stop button. Clicking it while a run is going makes Streamlit rerun the page, which interrupts
    the run at its next progress update; the page then says so and keeps what was computed before."""
    stopped = st.button(t("training.stop"), key=f"{key}_stop", help=t("training.stop_help"))
    if stopped:
        st.warning(t("training.stopped_generic"))
    return stopped


def show_metrics(where, h: loop.History) -> None:
    with where.container():
        c = st.columns(5)
        c[0].metric(t("training.m_step"), f"{h.step[-1]} / {h.total_steps}")
        c[1].metric(t("training.m_train"), f"{h.train_loss[-1]:.3f}")
        c[2].metric(t("training.m_val"), f"{h.val_loss[-1]:.3f}")
        c[3].metric(t("training.m_gap"), f"{h.gap:+.3f}", help=t("training.m_gap_help"))
        c[4].metric(t("training.m_tps"), f"{h.tokens_per_s:,.0f}", help=t("training.m_tps_help"))


def progress_cb(bar) -> Callable[[float, str], bool]:
    """An experiment's progress callback drawing ``bar`` (run_on_click puts the job's check in front of it:
    Stop, a newer run of this session or the time budget end the run there)."""

    def cb(frac: float, msg: str) -> bool:
        bar.progress(min(max(frac, 0.0), 1.0), text=msg)
        return False

    return cb


# ---------------------------------------------------------------- live training
def _train_live(params: experiments.LiveParams, on_eval: Callable[[loop.History], bool]) -> experiments.LiveResult:
    """Run by run_on_click in a slot of the queue: a new run replaces a stopped run's curves."""
    st.session_state[PARTIAL] = None
    st.session_state[STOPPED] = None
    st.session_state[STOPPED_NAME] = live_name(params)
    res = experiments.run_live(params, on_eval, on_step=check)  # Stop and the job's budget: at every step
    st.session_state[PARTIAL] = None  # finished: nothing left to show as "stopped"
    return res


def _note_run(preset: str, params: experiments.LiveParams, res: experiments.LiveResult) -> None:
    """A finished live run joins the session's generalization-gap comparison (once, on_result)."""
    h = res.history
    label = t(f"training.preset_{preset}") + ("" if params == experiments.PRESETS[preset] else " *")  # * = changed
    st.session_state.setdefault(RUNS, {})[label] = {
        "preset": label,
        "train_loss": h.train_loss[-1],
        "val_loss": h.val_loss[-1],
        "best_val": min(h.val_loss),
    }


def _live_params() -> experiments.LiveParams | None:
    """The live run's settings from its controls (None after showing why they are invalid)."""
    c = st.columns([1, 1, 1, 1, 1.4])  # the last one holds a checkbox label and its help icon ("Early sto…" at 1280 px)
    stories = c[0].number_input(
        t("training.stories"), 4, experiments.MAX_STORIES, key="trn_stories", help=t("training.stories_help")
    )
    epochs = c[1].number_input(t("training.epochs"), 1, loop.MAX_EPOCHS, key="trn_epochs")
    dropout = c[2].slider(
        t("training.dropout"), 0.0, tiny.MAX_DROPOUT, step=0.05, key="trn_dropout", help=t("training.dropout_help")
    )
    wd = c[3].number_input(
        t("training.weight_decay"), 0.0, 10.0, step=0.5, key="trn_weight_decay", help=t("training.weight_decay_help")
    )
    early = c[4].checkbox(t("training.early_stopping"), key="trn_early_stopping", help=t("training.early_help"))
    with st.expander(t("training.advanced"), expanded=False):
        a = st.columns(4)
        objective = a[0].radio(
            t("training.objective"),
            list(tiny.OBJECTIVES),
            key="trn_objective",
            format_func=lambda o: t(f"training.obj_{o}"),
        )
        positional = a[0].radio(
            t("training.positional"),
            tiny.POSITIONALS,
            key="trn_positional",
            format_func=lambda x: t(f"app.pos_{x}"),
            help=t("training.positional_help"),
        )
        n_layers = a[1].number_input(t("training.n_layers"), *tiny.LIMITS["n_layers"], key="trn_n_layers")
        d_model = a[1].number_input(t("training.d_model"), *tiny.LIMITS["d_model"], step=16, key="trn_d_model")
        n_heads = a[2].number_input(t("training.n_heads"), *tiny.LIMITS["n_heads"], key="trn_n_heads")
        d_ff = a[2].number_input(t("training.d_ff"), *tiny.LIMITS["d_ff"], step=32, key="trn_d_ff")
        lr = a[3].number_input(t("training.lr"), 1e-5, 0.1, step=1e-3, format="%.4f", key="trn_lr")
        patience = a[3].number_input(t("training.patience"), 1, 50, key="trn_patience")
        seed = a[1].number_input(t("training.seed"), 0, 10_000, key="trn_seed")
        max_s = a[2].number_input(
            t("training.max_seconds"), 1.0, loop.MAX_SECONDS, key="trn_max_seconds", help=t("training.max_seconds_help")
        )
    try:
        params = experiments.LiveParams(
            objective,
            positional,
            int(n_layers),
            int(d_model),
            int(n_heads),
            int(d_ff),
            float(dropout),
            int(stories),
            100,
            8,
            int(epochs),
            16,
            float(lr),
            float(wd),
            bool(early),
            int(patience),
            float(max_s),
            int(seed),
        )
        params.tiny()  # validates (raises InputError with a message)
        params.settings()
    except LlmvizError as err:
        show_error(err)
        return None
    return params


def live_section() -> None:
    preset = st.selectbox(
        t("training.preset"),
        LIVE,
        key="trn_preset",
        on_change=_on_preset,
        format_func=lambda p: t(f"training.preset_{p}"),
        help=t("training.preset_help"),
    )
    st.caption(t(f"training.preset_{preset}_note"))
    copy_link("training", {"preset": preset}, key="trn")
    params = _live_params()
    if params is None:
        return
    button = st.container()
    stopped = stop_row("trn_live")
    bar, metrics, chart = st.progress(0.0), st.empty(), st.empty()
    halted_box = st.container()
    partial = st.session_state.get(PARTIAL)
    if stopped and partial is not None and partial.step:
        # Keep the stopped run's curves until the next Train, across any later rerun.
        st.session_state[STOPPED] = partial
        st.session_state[PARTIAL] = None

    def on_eval(h: loop.History) -> bool:
        # a copy: after Stop this run goes on appending to h while the new run draws what is kept
        st.session_state[PARTIAL] = h.snapshot()
        bar.progress(h.progress, text=t("training.progress", step=h.step[-1], total=h.total_steps))
        show_metrics(metrics, h)
        fig = train_figures.loss_curves(h, t("training.live_chart"), labels=fig_labels())
        chart.plotly_chart(fig, config=plot_config(live_name(params)))  # same slot, redrawn in place
        return False

    with button:
        res = run_on_click(
            "trn_run",
            t("training.train"),
            _train_live,
            params,
            inputs=asdict(params),
            kind="train",
            progress="on_eval",
            on_eval=on_eval,
            hint="",
            stop=False,  # the section's own Stop (trn_live_stop) stays after the run
            on_result=lambda r: _note_run(preset, params, r),
        )
    halted = st.session_state.get(STOPPED)  # a click on Train cleared it
    if halted is not None:
        with halted_box:
            st.warning(t("training.stopped", step=halted.step[-1], total=halted.total_steps))
            plot(
                train_figures.loss_curves(halted, t("training.live_chart"), labels=fig_labels()),
                key="trn_live_partial_fig",
                export_name=st.session_state.get(STOPPED_NAME) or live_name(params),  # the stopped run's settings
            )
    if res is None:
        if not st.session_state.get("trn_run"):  # right after a click the run failed or stopped and said so
            st.info(t("training.press_train"))
        return
    h = res.history
    bar.progress(h.progress, text=t(f"training.stop_{h.stop_reason}", step=h.step[-1], total=h.total_steps))
    show_metrics(metrics, h)
    with chart.container():
        fig = train_figures.loss_curves(h, t("training.live_chart"), labels=fig_labels())
        plot(fig, key="trn_live_final", export_name=live_name(res.params))
    best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
    if loop.is_overfitting(h):
        st.warning(
            t(
                "training.lesson_overfit",
                best_step=h.step[best],
                best=h.val_loss[best],
                last=h.val_loss[-1],
                train_best=h.train_loss[best],
                train_last=h.train_loss[-1],
            )
        )
    else:
        st.success(t("training.lesson_ok", gap=h.gap, best=h.val_loss[best], last=h.val_loss[-1]))
    st.caption(t("training.metric_note", params=res.n_params))
    runs = st.session_state.get(RUNS, {})
    if len(runs) > 1:
        gap = export_name("training", "live", f"{len(runs)}-runs", "generalization-gap")
        plot(train_figures.gap_bars(list(runs.values()), labels=fig_labels()), key="trn_gap_bars", export_name=gap)
    export_buttons("trn_live_export", fig, pd.DataFrame(res.table()), live_name(res.params), meta=res.params.__dict__)
    model_share("live", res.model, res.tokenizer, {"experiment": "live", **res.params.__dict__})


# ---------------------------------------------------------------- the three experiments
def _run_transfer(params: experiments.TransferParams, on_progress):
    minilm = load_cached("minilm") if params.use_minilm else None
    return experiments.run_transfer(params, minilm, on_progress)


def _run_bias(params: experiments.BiasParams, on_progress):
    return experiments.run_bias(params, on_progress)


def _run_memorization(params: experiments.MemoParams, on_progress):
    return experiments.run_memorization(params, on_progress)


def run_experiment(prefix: str, label: str, fn: Callable, params, disabled: bool = False) -> tuple | None:
    """The run button ``<prefix>_run``, the Stop button ``<prefix>_stop`` and a progress bar; runs
    ``fn(params, on_progress)`` through run_on_click on a click and returns its tuple ``(result, ...)``, kept
    for these settings (the bar marked done), or None after saying what to press."""
    button = st.container()
    stop_row(prefix)
    bar = st.progress(0.0)
    with button:
        kept = run_on_click(
            f"{prefix}_run",
            label,
            fn,
            params,
            inputs=asdict(params),
            kind="train",
            progress="on_progress",
            on_progress=progress_cb(bar),
            hint="",
            disabled=disabled,
            stop=False,  # the section's own Stop stays after the run
        )
    if kept is None:
        if not st.session_state.get(f"{prefix}_run"):  # right after a click the run failed or stopped and said so
            st.info(t("training.press_run"))
        return None
    bar.progress(1.0, text=t("training.done_in", s=kept[0].seconds))
    return kept


def transfer_section() -> None:
    st.markdown(t("training.transfer_intro"))
    copy_link("training", {"preset": "transfer"}, key="trn")
    d = experiments.TransferParams()
    c = st.columns(4)
    sizes = c[0].multiselect(
        t("training.sizes"), [8, 16, 32, 64, 128, 256, 512], default=list(d.sizes), key="trn_tr_sizes"
    )
    stories = c[1].number_input(
        t("training.pretrain_stories"),
        50,
        experiments.MAX_STORIES,
        d.pretrain_stories,
        step=100,
        key="trn_tr_stories",
        help=t("training.pretrain_help"),
    )
    epochs = c[2].number_input(t("training.pretrain_epochs"), 1, 50, d.pretrain_epochs, key="trn_tr_epochs")
    steps = c[3].number_input(t("training.ft_steps"), 5, 500, d.steps, key="trn_tr_steps")
    c = st.columns(4)
    use_minilm = c[0].checkbox(t("training.use_minilm"), True, key="trn_tr_minilm", help=t("training.minilm_help"))
    n_test = c[1].number_input(t("training.n_test"), 20, 2000, d.n_test, key="trn_tr_ntest")
    seed = c[2].number_input(t("training.seed"), 0, 10_000, 0, key="trn_tr_seed")
    params = experiments.TransferParams(
        tuple(sorted(sizes)),
        int(stories),
        int(epochs),
        steps=int(steps),
        n_test=int(n_test),
        use_minilm=use_minilm,
        seed=int(seed),
    )
    if not sizes:
        st.warning(t("training.need_sizes"))
    kept = run_experiment("trn_tr", t("training.run_transfer"), _run_transfer, params, disabled=not sizes)
    if kept is None:
        return
    res, mlm, tok = kept
    labels = {m: t(f"training.method_{m}") for m in res.accuracy}
    fig = train_figures.transfer_figure(res, labels, labels=fig_labels())
    name = export_name("training", "transfer", *res.accuracy, "by-labelled-examples")
    plot(fig, key="trn_tr_fig", export_name=name)
    ft, scratch = res.accuracy["finetune"], res.accuracy["scratch"]
    i = max(range(len(res.sizes)), key=lambda k: ft[k] - scratch[k])  # where pretraining helps most
    st.markdown(t("training.transfer_lesson", n=res.sizes[i], ft=ft[i], scratch=scratch[i], loss=res.pretrain_loss))
    st.caption(t("training.transfer_note"))
    df = pd.DataFrame(res.rows())
    st.dataframe(df.pivot(index="method", columns="labelled_examples", values="accuracy"))
    export_buttons("trn_tr_export", fig, df, name, meta=params.__dict__)
    model_share("pretrained", mlm, tok, {"experiment": "transfer", **params.__dict__})


def bias_section() -> None:
    st.markdown(t("training.bias_intro"))
    copy_link("training", {"preset": "bias"}, key="trn")
    d = experiments.BiasParams()
    c = st.columns(4)
    skew = c[0].slider(t("training.skew"), 0.0, 1.0, d.skew, 0.1, key="trn_b_skew", help=t("training.skew_help"))
    stories = c[1].number_input(
        t("training.stories"), 50, experiments.MAX_STORIES, d.stories, step=100, key="trn_b_stories"
    )
    epochs = c[2].number_input(t("training.epochs"), 1, 50, d.epochs, key="trn_b_epochs")
    cda = c[3].checkbox(t("training.cda"), d.cda, key="trn_b_cda", help=t("training.cda_help"))
    seed = c[3].number_input(t("training.seed"), 0, 10_000, 0, key="trn_b_seed")
    preview = grammar_corpus(min(int(stories), MAX_SENTENCES), d.words, float(skew), int(seed))
    with st.expander(t("training.corpus_preview"), expanded=False):
        st.code("\n".join(preview.texts[:8]), language=None)
        plot(
            train_figures.counts_figure(
                cooccurrence(preview.texts, preview.occupations), t("training.counts_title"), labels=fig_labels()
            ),
            key="trn_b_counts",
            export_name=export_name("training", "bias", f"skew{round(100 * float(skew))}pct", "corpus-counts"),
        )
    params = experiments.BiasParams(int(stories), int(epochs), float(skew), cda=bool(cda), seed=int(seed))
    kept = run_experiment("trn_b", t("training.run_bias"), _run_bias, params)
    if kept is None:
        return
    res, models = kept
    names = {k: t(f"training.model_{k}", skew=params.skew) for k in res.log_ratio}
    fig = train_figures.bias_figure(res, names, labels=fig_labels())
    skewed = f"skew{round(100 * params.skew)}pct"
    name = export_name("training", "bias", skewed, "cda" if params.cda else "", "he-vs-she")
    plot(fig, key="trn_b_fig", export_name=name)
    cols = st.columns(len(res.alignment))
    for col, (k, v) in zip(cols, res.alignment.items()):
        col.metric(t("training.alignment", model=names[k]), f"{v:+.2f}", help=t("training.alignment_help"))
    st.markdown(t("training.bias_lesson"))
    st.caption(t("training.bias_note", templates=" · ".join(experiments.BIAS_TEMPLATES)))
    export_buttons("trn_b_export", fig, pd.DataFrame(res.rows()), name, meta=params.__dict__)
    model_share("skewed", *models["skewed"], {"experiment": "bias", **params.__dict__})


def memorization_section() -> None:
    st.markdown(t("training.memo_intro"))
    copy_link("training", {"preset": "memorization"}, key="trn")
    d = experiments.MemoParams()
    c = st.columns(4)
    raw = c[0].text_input(
        t("training.repeats"),
        ", ".join(map(str, d.repeats)),
        key="trn_m_repeats",
        help=t("training.repeats_help", n=len(privacy.NAMES)),
    )
    stories = c[1].number_input(
        t("training.stories"), 50, experiments.MAX_STORIES, d.stories, step=100, key="trn_m_stories"
    )
    epochs = c[2].number_input(t("training.epochs"), 1, 50, d.epochs, key="trn_m_epochs")
    digits = c[3].number_input(t("training.digits"), 1, privacy.MAX_DIGITS, d.n_digits, key="trn_m_digits")
    try:
        repeats = tuple(int(x) for x in raw.replace(";", ",").split(",") if x.strip())
        canaries = privacy.make_canaries(list(repeats), 0, int(digits))
    except ValueError:
        st.error(t("training.bad_repeats"))
        return
    except LlmvizError as err:
        show_error(err)
        return
    st.caption(t("training.canaries", items=" · ".join(f"“{c.text}” × {c.repeats}" for c in canaries)))
    params = experiments.MemoParams(repeats, int(stories), int(epochs), n_digits=int(digits))
    kept = run_experiment("trn_m", t("training.run_memo"), _run_memorization, params)
    if kept is None:
        return
    res, model, tok = kept
    fig = train_figures.exposure_figure(res.rows, res.n_candidates, labels=fig_labels())
    name = export_name("training", "memorization", f"{len(res.rows)}-canaries", "exposure")
    plot(fig, key="trn_m_fig", export_name=name)
    df = pd.DataFrame(res.records())
    st.dataframe(df, hide_index=True)
    st.markdown(t("training.memo_lesson", n=res.n_candidates))
    prefix = st.text_input(
        t("training.try_prefix"),
        f"the pin of {res.rows[-1].name} is",
        key="trn_m_prefix",
        max_chars=200,
        help=t("training.try_prefix_help"),
    )
    if prefix.strip():
        unknown = [w for w in tok.tokenize(prefix) if w == tok.unk_token]
        if unknown:
            st.warning(t("training.unknown_words"))
        st.code(
            f"{prefix.strip()} → {privacy.complete(model, tok, prefix.strip(), int(params.n_digits))}", language=None
        )
    export_buttons("trn_m_export", fig, df, name, meta=params.__dict__)
    model_share("memorized", model, tok, {"experiment": "memorization", **params.__dict__})


# ---------------------------------------------------------------- the page's sections
SECTIONS: dict[str, Callable[[], None]] = {
    "live": live_section,
    "transfer": transfer_section,
    "bias": bias_section,
    "memorization": memorization_section,
    "translator": translator_view.section,
}


def render(section: str) -> None:
    """Draw ``section`` (one of ui.registry.TRAINING_SECTIONS)."""
    SECTIONS[section]()


def limits(presenter: bool) -> None:
    """What the lab's runs are bounded by (hidden in presenter mode)."""
    if presenter:
        return
    with st.expander(t("training.limits_header")):
        st.markdown(
            t(
                "training.limits",
                stories=experiments.MAX_STORIES,
                epochs=loop.MAX_EPOCHS,
                secs=loop.MAX_SECONDS,
                layers=tiny.LIMITS["n_layers"][1],
                d=tiny.LIMITS["d_model"][1],
            )
        )
