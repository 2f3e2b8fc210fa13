"""Training lab: train a tiny transformer live (overfitting and its cures), transfer learning,
data bias -> model bias, memorized secrets. Thin: widgets -> llmviz.train.experiments -> llmviz.viz.train."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.report import export_name
from llmviz.train import experiments as X
from llmviz.train import loop, privacy, tiny
from llmviz.train.corpus import MAX_SENTENCES, cooccurrence, grammar_corpus
from llmviz.viz import train as V
from ui.common import (
    export_buttons,
    load_cached,
    plot,
    plot_config,
    session_models,
    session_owner,
    show_error,
    switch_model,
    t_text,
)
from ui.i18n import fig_labels, t
from ui.jobs import check as check_job
from ui.jobs import heavy
from ui.links import copy_link, presenter_mode, qp, to_url, url_state

SECTIONS = ("live", "transfer", "bias", "memorization")
LIVE = tuple(X.PRESETS)
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

st.title(t("training.title"))
st.markdown(t("training.intro"))

linked = qp("preset", "overfit")
linked = linked if linked in LIVE + SECTIONS[1:] else "overfit"
# The URL is the page's state on every navigation (tour step, card, copied link): ui.links.url_state.
_fresh = url_state(
    "training",
    {"trn_section": "live" if linked in LIVE else linked, "trn_preset": linked if linked in LIVE else "overfit"},
)


def _section_to_url() -> None:
    s = st.session_state.get("trn_section") or "live"
    st.session_state["_trn_url_preset"] = s if s != "live" else st.session_state.get("trn_preset", "overfit")
    to_url("_trn_url_preset", "preset", "training")()


section = (
    st.segmented_control(
        t("training.section"),
        SECTIONS,
        key="trn_section",
        required=True,
        on_change=_section_to_url,
        format_func=lambda s: t(f"training.sec_{s}"),
    )
    or "live"
)


def apply_preset() -> None:
    """Copy the chosen preset's values into the control widgets (runs before the script)."""
    p = X.PRESETS[st.session_state["trn_preset"]]
    for name in CONTROLS:
        st.session_state[f"trn_{name}"] = getattr(p, name)


if _fresh:
    apply_preset()


def activate(model_id: str) -> None:
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
            c[0].button(t("training.activate"), key=f"{key}_act", on_click=activate, args=(mid,))
            c[1].download_button(
                t("training.download"), tiny.zip_folder(folder), f"{mid}.zip", "application/zip", key=f"{key}_zip"
            )


def live_name(params: X.LiveParams) -> str:
    """Export-name stem of a live run from its settings, e.g. ``training_live_overfit_causal-lm_loss-curves``
    (``custom`` when the settings match no preset)."""
    preset = next((p for p, v in X.PRESETS.items() if v == params), "custom")
    return export_name("training", "live", preset, params.objective, "loss-curves")


def stop_row(key: str) -> bool:
    """A stop button. Clicking it while a run is going makes Streamlit rerun the page, which interrupts
    the run at its next progress update; the page then says so and keeps what was computed before."""
    stopped = st.button(t("training.stop"), key=f"{key}_stop", help=t("training.stop_help"))
    if stopped:
        st.warning(t("training.stopped_generic"))
    return stopped


# ---------------------------------------------------------------- live training
def live_section() -> None:
    if "trn_preset" not in st.session_state:
        st.session_state["trn_preset"] = linked if linked in LIVE else "overfit"
        apply_preset()

    def _on_preset() -> None:
        apply_preset()
        _section_to_url()

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
    c = st.columns([1, 1, 1, 1, 1.4])  # the last one holds a checkbox label and its help icon ("Early sto…" at 1280 px)
    stories = c[0].number_input(
        t("training.stories"), 4, X.MAX_STORIES, key="trn_stories", help=t("training.stories_help")
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
        params = X.LiveParams(
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
        return
    run = st.button(t("training.train"), key="trn_run", type="primary")
    stopped = stop_row("trn_live")
    bar, metrics, chart = st.progress(0.0), st.empty(), st.empty()
    partial = st.session_state.get("trn_live_partial")
    if stopped and partial is not None and partial.step:
        # Keep the stopped run's curves until the next Train, across any later rerun.
        st.session_state["trn_live_stopped"] = partial
        st.session_state["trn_live_partial"] = None
    halted = st.session_state.get("trn_live_stopped")
    if halted is not None and not run:
        st.warning(t("training.stopped", step=halted.step[-1], total=halted.total_steps))
        with st.container():
            name = st.session_state.get("trn_live_name") or live_name(params)  # the stopped run's settings
            plot(
                V.loss_curves(halted, t("training.live_chart"), labels=fig_labels()),
                key="trn_live_partial_fig",
                export_name=name,
            )
    if run:
        st.session_state["trn_live_partial"] = None
        st.session_state["trn_live_stopped"] = None
        st.session_state["trn_live_name"] = live_name(params)

        def on_eval(h: loop.History) -> bool:
            # a copy: after Stop this run goes on appending to h while the new run draws what is kept
            st.session_state["trn_live_partial"] = h.snapshot()
            bar.progress(h.progress, text=t("training.progress", step=h.step[-1], total=h.total_steps))
            show_metrics(metrics, h)
            fig = V.loss_curves(h, t("training.live_chart"), labels=fig_labels())
            chart.plotly_chart(fig, config=plot_config(live_name(params)))  # same slot, redrawn in place
            return False

        try:
            with heavy("train") as job:  # the server-wide queue; Stop cancels at the next evaluation
                res = X.run_live(params, job.wrap(on_eval))
        except LlmvizError as err:
            show_error(err)
            return
        st.session_state["trn_live_result"] = res
        st.session_state["trn_live_partial"] = None  # finished: nothing left to show as "stopped"
        runs = st.session_state.setdefault("trn_runs", {})
        h = res.history
        label = t(f"training.preset_{preset}") + ("" if params == X.PRESETS[preset] else " *")  # * = changed
        runs[label] = {
            "preset": label,
            "train_loss": h.train_loss[-1],
            "val_loss": h.val_loss[-1],
            "best_val": min(h.val_loss),
        }
    res = st.session_state.get("trn_live_result")
    if res is None:
        st.info(t("training.press_train"))
        return
    h = res.history
    bar.progress(h.progress, text=t(f"training.stop_{h.stop_reason}", step=h.step[-1], total=h.total_steps))
    show_metrics(metrics, h)
    with chart.container():
        fig = V.loss_curves(h, t("training.live_chart"), labels=fig_labels())
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
    runs = st.session_state.get("trn_runs", {})
    if len(runs) > 1:
        gap = export_name("training", "live", f"{len(runs)}-runs", "generalization-gap")
        plot(V.gap_bars(list(runs.values()), labels=fig_labels()), key="trn_gap_bars", export_name=gap)
    export_buttons("trn_live_export", fig, pd.DataFrame(res.table()), live_name(res.params), meta=res.params.__dict__)
    model_share("live", res.model, res.tokenizer, {"experiment": "live", **res.params.__dict__})


def show_metrics(where, h: loop.History) -> None:
    with where.container():
        c = st.columns(5)
        c[0].metric(t("training.m_step"), f"{h.step[-1]} / {h.total_steps}")
        c[1].metric(t("training.m_train"), f"{h.train_loss[-1]:.3f}")
        c[2].metric(t("training.m_val"), f"{h.val_loss[-1]:.3f}")
        c[3].metric(t("training.m_gap"), f"{h.gap:+.3f}", help=t("training.m_gap_help"))
        c[4].metric(t("training.m_tps"), f"{h.tokens_per_s:,.0f}", help=t("training.m_tps_help"))


def progress_cb(bar):
    def cb(frac: float, msg: str) -> bool:
        check_job()  # Stop, a newer run of this session or the time budget ends the run here
        bar.progress(min(max(frac, 0.0), 1.0), text=msg)
        return False

    return cb


def run_or_recall(key: str, run: bool, bar, compute) -> tuple | None:
    """Run ``compute`` (returning ``(result, ...)``) when its button was pressed and keep the tuple in
    session state; return the kept tuple with the progress bar marked done, or None after showing why
    (the run failed, or nothing has been run yet)."""
    if run:
        try:
            with heavy("train"):
                st.session_state[key] = compute()
        except LlmvizError as err:
            show_error(err)
            return None
    if key not in st.session_state:
        st.info(t("training.press_run"))
        return None
    kept = st.session_state[key]
    bar.progress(1.0, text=t("training.done_in", s=kept[0].seconds))
    return kept


# ---------------------------------------------------------------- transfer
def transfer_section() -> None:
    st.markdown(t("training.transfer_intro"))
    copy_link("training", {"preset": "transfer"}, key="trn")
    d = X.TransferParams()
    c = st.columns(4)
    sizes = c[0].multiselect(
        t("training.sizes"), [8, 16, 32, 64, 128, 256, 512], default=list(d.sizes), key="trn_tr_sizes"
    )
    stories = c[1].number_input(
        t("training.pretrain_stories"),
        50,
        X.MAX_STORIES,
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
    run = st.button(t("training.run_transfer"), key="trn_tr_run", type="primary")
    stop_row("trn_tr")
    bar = st.progress(0.0)
    if run and not sizes:
        st.warning(t("training.need_sizes"))
        return

    def compute():
        params = X.TransferParams(
            tuple(sorted(sizes)),
            int(stories),
            int(epochs),
            steps=int(steps),
            n_test=int(n_test),
            use_minilm=use_minilm,
            seed=int(seed),
        )
        minilm = load_cached("minilm") if use_minilm else None
        return (*X.run_transfer(params, minilm, progress_cb(bar)), params)

    kept = run_or_recall("trn_tr_result", run, bar, compute)
    if kept is None:
        return
    res, mlm, tok, params = kept
    labels = {m: t(f"training.method_{m}") for m in res.accuracy}
    fig = V.transfer_figure(res, labels, labels=fig_labels())
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


# ---------------------------------------------------------------- bias
def bias_section() -> None:
    st.markdown(t("training.bias_intro"))
    copy_link("training", {"preset": "bias"}, key="trn")
    d = X.BiasParams()
    c = st.columns(4)
    skew = c[0].slider(t("training.skew"), 0.0, 1.0, d.skew, 0.1, key="trn_b_skew", help=t("training.skew_help"))
    stories = c[1].number_input(t("training.stories"), 50, X.MAX_STORIES, d.stories, step=100, key="trn_b_stories")
    epochs = c[2].number_input(t("training.epochs"), 1, 50, d.epochs, key="trn_b_epochs")
    cda = c[3].checkbox(t("training.cda"), d.cda, key="trn_b_cda", help=t("training.cda_help"))
    seed = c[3].number_input(t("training.seed"), 0, 10_000, 0, key="trn_b_seed")
    preview = grammar_corpus(min(int(stories), MAX_SENTENCES), d.words, float(skew), int(seed))
    with st.expander(t("training.corpus_preview"), expanded=False):
        st.code("\n".join(preview.texts[:8]), language=None)
        plot(
            V.counts_figure(
                cooccurrence(preview.texts, preview.occupations), t("training.counts_title"), labels=fig_labels()
            ),
            key="trn_b_counts",
            export_name=export_name("training", "bias", f"skew{round(100 * float(skew))}pct", "corpus-counts"),
        )
    run = st.button(t("training.run_bias"), key="trn_b_run", type="primary")
    stop_row("trn_b")
    bar = st.progress(0.0)

    def compute():
        params = X.BiasParams(int(stories), int(epochs), float(skew), cda=bool(cda), seed=int(seed))
        return (*X.run_bias(params, progress_cb(bar)), params)

    kept = run_or_recall("trn_b_result", run, bar, compute)
    if kept is None:
        return
    res, models, params = kept
    names = {k: t(f"training.model_{k}", skew=params.skew) for k in res.log_ratio}
    fig = V.bias_figure(res, names, labels=fig_labels())
    skewed = f"skew{round(100 * params.skew)}pct"
    name = export_name("training", "bias", skewed, "cda" if params.cda else "", "he-vs-she")
    plot(fig, key="trn_b_fig", export_name=name)
    cols = st.columns(len(res.alignment))
    for col, (k, v) in zip(cols, res.alignment.items()):
        col.metric(t("training.alignment", model=names[k]), f"{v:+.2f}", help=t("training.alignment_help"))
    st.markdown(t("training.bias_lesson"))
    st.caption(t("training.bias_note", templates=" · ".join(X.BIAS_TEMPLATES)))
    export_buttons("trn_b_export", fig, pd.DataFrame(res.rows()), name, meta=params.__dict__)
    model_share("skewed", *models["skewed"], {"experiment": "bias", **params.__dict__})


# ---------------------------------------------------------------- memorization
def memorization_section() -> None:
    st.markdown(t("training.memo_intro"))
    copy_link("training", {"preset": "memorization"}, key="trn")
    d = X.MemoParams()
    c = st.columns(4)
    raw = c[0].text_input(
        t("training.repeats"),
        ", ".join(map(str, d.repeats)),
        key="trn_m_repeats",
        help=t("training.repeats_help", n=len(privacy.NAMES)),
    )
    stories = c[1].number_input(t("training.stories"), 50, X.MAX_STORIES, d.stories, step=100, key="trn_m_stories")
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
    run = st.button(t("training.run_memo"), key="trn_m_run", type="primary")
    stop_row("trn_m")
    bar = st.progress(0.0)

    def compute():
        params = X.MemoParams(repeats, int(stories), int(epochs), n_digits=int(digits))
        return (*X.run_memorization(params, progress_cb(bar)), params)

    kept = run_or_recall("trn_m_result", run, bar, compute)
    if kept is None:
        return
    res, model, tok, params = kept
    fig = V.exposure_figure(res.rows, res.n_candidates, labels=fig_labels())
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


if section == "live":
    live_section()
elif section == "transfer":
    transfer_section()
elif section == "bias":
    bias_section()
else:
    memorization_section()
if not presenter_mode():
    with st.expander(t("training.limits_header")):
        st.markdown(
            t(
                "training.limits",
                stories=X.MAX_STORIES,
                epochs=loop.MAX_EPOCHS,
                secs=loop.MAX_SECONDS,
                layers=tiny.LIMITS["n_layers"][1],
                d=tiny.LIMITS["d_model"][1],
            )
        )
