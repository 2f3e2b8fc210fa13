"""The Training lab's translator section: a tiny encoder-decoder trained live on the toy language pair
(llmviz.train.translator), its cross-attention turning into a word alignment, and a box to translate
what the reader types. The run goes through ``ui.jobs.run_on_click`` (queue, Stop, the result kept for
the session and its settings); its ``on_eval`` redraws the curves while it trains."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.report import export_name
from llmviz.train import seq2seq
from llmviz.train import translate as grammar
from llmviz.train import translator as TR
from llmviz.train import translator_probes as probes
from llmviz.viz import bertviz_offline as bertviz
from llmviz.viz import train as train_figures
from llmviz.viz import translator as figures
from ui.common import export_buttons, plot, plot_config, session_models, session_owner, switch_model
from ui.i18n import fig_labels, t
from ui.jobs import check, run_on_click
from ui.links import copy_link, presenter_mode
from ui.registry import PAGE_FILES
from ui.text import md, show_error, show_text

PRESETS = tuple(TR.PRESETS)
OPENED = "trn_x_opened"  # (id of the trained model, its registry id) once registered for this session
OPEN_ERROR = "trn_x_open_error"


def _params(preset: str) -> TR.TranslatorParams | None:
    """The run's settings: the preset's values, changed by the advanced controls (keyed per preset, so
    choosing a preset fills them with its values)."""
    p = TR.PRESETS[preset]
    if presenter_mode():
        return p
    with st.expander(t("training.advanced"), expanded=False):
        c = st.columns(4)
        positional = c[0].radio(
            t("training.positional"),
            seq2seq.POSITIONALS,
            index=seq2seq.POSITIONALS.index(p.positional),
            key=f"trn_x_pos_{preset}",
            format_func=lambda x: t(f"training.tr_pos_{x}"),
        )
        n_train = c[1].number_input(
            t("training.tr_n_train"), 8, TR.MAX_TRAIN, p.n_train, step=100, key=f"trn_x_ntrain_{preset}"
        )
        steps = c[1].number_input(
            t("training.tr_steps"), 1, TR.MAX_STEPS, p.steps, step=50, key=f"trn_x_steps_{preset}"
        )
        d_model = c[2].number_input(t("training.d_model"), 16, 256, p.d_model, step=16, key=f"trn_x_d_{preset}")
        n_heads = c[2].number_input(t("training.n_heads"), 1, 8, p.n_heads, key=f"trn_x_heads_{preset}")
        n_layers = c[3].number_input(t("training.n_layers"), 1, 4, p.n_layers, key=f"trn_x_layers_{preset}")
        seed = c[3].number_input(t("training.seed"), 0, 10_000, p.seed, key=f"trn_x_seed_{preset}")
    try:
        return replace(
            p,
            positional=positional,
            n_train=int(n_train),
            steps=int(steps),
            d_model=int(d_model),
            d_ff=4 * int(d_model),
            n_heads=int(n_heads),
            n_layers=int(n_layers),
            seed=int(seed),
        ).validate()
    except LlmvizError as err:
        show_error(err)
        return None


def _train(params: TR.TranslatorParams, on_eval) -> TR.TranslatorResult:
    """Run by run_on_click in a slot of the queue (Stop and the job's budget: checked at every step)."""
    return TR.run_translator(params, on_eval, on_step=check)


def _stem(params: TR.TranslatorParams, what: str) -> str:
    preset = next((k for k, v in TR.PRESETS.items() if v == replace(params, pair="lingo")), "custom")
    return export_name("training", "translator", params.pair, preset, params.positional, what)


def section() -> None:
    st.markdown(t("training.tr_intro"))
    preset = st.selectbox(
        t("training.tr_preset"), PRESETS, key="trn_x_preset", format_func=lambda p: t(f"training.tr_preset_{p}")
    )
    st.caption(t(f"training.tr_preset_{preset}_note"))
    pair = st.radio(
        t("training.tr_pair"),
        list(TR.PAIRS),
        horizontal=True,
        key="trn_x_pair",
        format_func=lambda p: t(f"training.tr_pair_{p}"),
    )
    if pair != "lingo":
        st.caption(t(f"training.tr_pair_{pair}_note"))
    copy_link("training", {"preset": "translator"}, key="trn_x")
    params = _params(preset)
    if params is None:
        return
    params = replace(params, pair=pair)
    bar, metrics, charts = st.progress(0.0), st.empty(), st.empty()

    def on_eval(h: TR.TranslatorHistory) -> bool:
        bar.progress(h.progress, text=t("training.progress", step=h.step[-1], total=h.total_steps))
        with metrics.container():
            _metrics(h)
        with charts.container():
            c = st.columns(2)
            fig = train_figures.loss_curves(h, t("training.tr_loss_chart"), labels=fig_labels())
            c[0].plotly_chart(fig, config=plot_config(_stem(params, "loss-curves")))
            c[1].plotly_chart(figures.quality_curves(h, labels=fig_labels()), config=plot_config())
        return False

    res = run_on_click(
        "trn_x_run",
        t("training.tr_train"),
        _train,
        params,
        inputs=asdict(params),
        kind="train",
        progress="on_eval",
        on_eval=on_eval,
        hint="",
    )
    if res is None:
        if not st.session_state.get("trn_x_run"):
            st.info(t("training.press_train"))
        return
    h = res.history
    bar.progress(1.0, text=t(f"training.tr_stop_{h.stop_reason}", step=h.step[-1], s=res.seconds))
    with metrics.container():
        _metrics(h)
    with charts.container():
        c = st.columns(2)
        with c[0]:
            plot(
                train_figures.loss_curves(h, t("training.tr_loss_chart"), labels=fig_labels()),
                key="trn_x_loss",
                export_name=_stem(params, "loss-curves"),
            )
        with c[1]:
            plot(
                figures.quality_curves(h, labels=fig_labels()),
                key="trn_x_quality",
                export_name=_stem(params, "quality"),
            )
    _lesson(res)
    _alignment(res)
    _translate_box(res)
    export_buttons(
        "trn_x_export",
        figures.alignment_by_head(h, _chance(res), labels=fig_labels()),
        pd.DataFrame(res.rows()),
        _stem(params, "alignment-by-head"),
        meta=asdict(params),
    )
    _open_elsewhere(res)
    st.caption(t("training.tr_other_pages", params=res.n_params))


def _metrics(h: TR.TranslatorHistory) -> None:
    c = st.columns(5)
    c[0].metric(t("training.m_step"), f"{h.step[-1]} / {h.total_steps}")
    c[1].metric(t("training.m_train"), f"{h.train_loss[-1]:.3f}")
    c[2].metric(t("training.m_val"), f"{h.val_loss[-1]:.3f}")
    c[3].metric(t("training.tr_m_em"), f"{h.exact_match[-1]:.0%}", help=t("training.tr_m_em_help"))
    c[4].metric(t("training.tr_m_bleu"), f"{h.bleu[-1]:.1f}", help=t("training.tr_m_bleu_help"))


def _chance(res: TR.TranslatorResult) -> float:
    """Alignment accuracy of attention that picks a source position (words and EOS) at random."""
    return float(np.mean([len(a) / (len(p.src) + 1) for p in res.test for a in p.alignment]))


def _lesson(res: TR.TranslatorResult) -> None:
    h = res.history
    layer, head, acc = res.best_head()
    order = res.exact_match_by_order()
    fmt = dict(em=h.exact_match[-1], reordered=order["reordered"], layer=layer, head=head, acc=acc)
    if res.params.positional == "none":
        st.warning(md("training.tr_lesson_no_positions", **fmt))
    elif h.val_loss[-1] > 5 * max(h.train_loss[-1], 1e-3) and h.exact_match[-1] < 0.9:
        st.warning(md("training.tr_lesson_overfit", train=h.train_loss[-1], val=h.val_loss[-1], **fmt))
    else:
        st.success(md("training.tr_lesson_ok", **fmt))
    if h.reached_s is not None:
        st.caption(t("training.tr_reached", s=h.reached_s, target=res.params.target_em))


def _alignment(res: TR.TranslatorResult) -> None:
    h = res.history
    st.subheader(t("training.tr_align_header"))
    st.markdown(t("training.tr_align_intro"))
    plot(
        figures.alignment_by_head(h, _chance(res), labels=fig_labels()),
        key="trn_x_heads",
        export_name=_stem(res.params, "alignment-by-head"),
    )
    layer, head, _acc = res.best_head()
    n_layers, n_heads = h.align_acc[-1].shape
    options = [(li, hi) for li in range(n_layers) for hi in range(n_heads)]
    pick = st.selectbox(
        t("training.tr_head_pick"),
        options,
        index=options.index((layer, head)),
        key="trn_x_head",
        format_func=lambda o: t("training.tr_head_option", layer=o[0], head=o[1], acc=h.align_acc[-1][o]),
    )
    probe = res.probe
    src, tgt = list(probe.src) + ["<eos>"], list(probe.tgt) + ["<eos>"]
    fig = figures.cross_attention_animation(
        src,
        tgt,
        [c[pick] for c in h.cross],
        h.step,
        probe.alignment,
        t("training.tr_anim_title", layer=pick[0], head=pick[1]),
        labels=fig_labels(),
    )
    plot(fig, key="trn_x_anim", export_name=_stem(res.params, f"cross-attention-L{pick[0]}H{pick[1]}"))
    st.markdown(t("training.tr_anim_lesson" + ("" if res.params.pair == "lingo" else f"_{res.params.pair}")))


def _translate_box(res: TR.TranslatorResult) -> None:
    st.subheader(t("training.tr_try_header"))
    c = st.columns([4, 1])
    text = c[0].text_input(
        t("training.tr_try"), TR.PROBE, key="trn_x_text", max_chars=200, help=t("training.tr_try_help")
    )
    width = c[1].number_input(t("training.tr_beam"), 1, 8, 4, key="trn_x_beam", help=t("training.tr_beam_help"))
    try:
        out = res.translate(text, int(width))
    except LlmvizError as err:
        show_error(err)
        return
    st.markdown(t("training.tr_greedy"))
    st.code(" ".join(out.greedy) or "∅", language=None)
    if out.reference is None:
        st.info(t("training.tr_outside_grammar"))
    elif list(out.reference.tgt) == out.greedy:
        st.success(t("training.tr_correct"))
    else:
        st.warning(t("training.tr_wrong"))
        show_text(t("training.tr_reference_is", ref=out.reference.target))
    beams = pd.DataFrame(
        [{t("training.tr_col_translation"): " ".join(w), t("training.tr_col_logp"): s} for w, s in out.beams]
    )
    st.dataframe(beams, hide_index=True)
    src, tgt = out.source_tokens, out.target_tokens
    align = out.reference.alignment if out.reference is not None and list(out.reference.tgt) == out.greedy else None
    acc = res.history.align_acc[-1]
    plot(
        figures.cross_attention_grid(src, tgt, out.attention["cross"], align, acc, labels=fig_labels()),
        key="trn_x_grid",
        export_name=_stem(res.params, "cross-attention-all-heads"),
    )
    st.caption(t("training.tr_grid_note"))
    _inside(res, out)
    with st.expander(t("training.tr_bertviz"), expanded=False):
        frag = bertviz.encdec_fragment(
            src,
            tgt,
            out.attention["enc_self"],
            out.attention["dec_self"],
            out.attention["cross"],
            [t("training.tr_bv_encoder"), t("training.tr_bv_decoder"), t("training.tr_bv_cross")],
            t("training.tr_bv_layer"),
            t("training.tr_bv_attention"),
        )
        doc = bertviz.standalone_html(frag, title="llmviz translator", note=" ".join(out.words))
        st.iframe(doc, height="content")
        st.caption(t("training.tr_bv_caption"))
        st.download_button(
            t("attention.bertviz_download"),
            doc,
            f"{_stem(res.params, 'bertviz-encoder-decoder')}.html",
            "text/html",
            key="trn_x_bv_download",
        )


def _inside(res: TR.TranslatorResult, out: TR.Translation) -> None:
    """The decoder's logit lens and patching a source word (what the Explain and Intervene pages do for a
    one-stack model, here for the encoder-decoder)."""
    with st.expander(t("training.tr_lens_header"), expanded=False):
        st.markdown(t("training.tr_lens_intro"))
        lens = probes.decoder_logit_lens(
            res.model, res.src_vocab.encode(out.words), res.tgt_vocab.encode(out.greedy), res.tgt_vocab
        )
        plot(
            figures.decoder_lens_figure(lens, labels=fig_labels()),
            key="trn_x_lens",
            export_name=_stem(res.params, "decoder-logit-lens"),
        )
    with st.expander(t("training.tr_patch_header"), expanded=False):
        st.markdown(t("training.tr_patch_intro"))
        c = st.columns(2)
        pos = c[0].selectbox(
            t("training.tr_patch_pos"),
            range(len(out.words)),
            key="trn_x_patch_pos",
            format_func=lambda i: f"{i}: {out.words[i]}",
        )
        pos = min(int(pos), len(out.words) - 1)  # the sentence may have become shorter
        choices = grammar.same_kind(out.words[pos]) or [w for w in grammar.source_vocabulary() if w != out.words[pos]]
        word = c[1].selectbox(t("training.tr_patch_word"), choices, key=f"trn_x_patch_word_{out.words[pos]}")
        try:
            patch = probes.patch_source(res.model, res.src_vocab, res.tgt_vocab, out.words, pos, word)
        except LlmvizError as err:
            show_error(err)
            return
        show_text(f"{' '.join(patch.clean)} → {' '.join(patch.target)}")
        show_text(f"{' '.join(patch.corrupt)} → {' '.join(patch.corrupt_output)}")
        plot(
            figures.source_patch_figure(patch, labels=fig_labels()),
            key="trn_x_patch",
            export_name=_stem(res.params, f"patch-source-{pos}"),
        )
        st.caption(t("training.tr_patch_note", clean=patch.lp_clean, corrupt=patch.lp_corrupt))


def _register(res: TR.TranslatorResult) -> None:
    """Button callback (runs before the page, so the sidebar picker already shows the translator): save the
    translator for this session and make it the session's model."""
    try:
        mid = res.register(t("translator.model_title"), owner=session_owner())
    except (LlmvizError, OSError) as err:
        st.session_state[OPEN_ERROR] = err
        return
    st.session_state.pop(OPEN_ERROR, None)
    st.session_state[OPENED] = (id(res.model), mid)
    switch_model(mid, remember=True)


def _open_elsewhere(res: TR.TranslatorResult) -> None:
    """Open the trained translator on the Attention, Explain and Intervene pages (as the session's model)."""
    st.button(
        t("translator.open_button"),
        key="trn_x_open",
        icon=":material/open_in_new:",
        help=t("translator.open_help"),
        on_click=_register,
        args=(res,),
    )
    if OPEN_ERROR in st.session_state:
        show_error(st.session_state.pop(OPEN_ERROR))
    model, mid = st.session_state.get(OPENED, (None, None))
    if model != id(res.model) or mid not in session_models():
        return
    st.markdown(md("translator.opened", model=mid))
    text = st.session_state.get("trn_x_text") or TR.PROBE
    c = st.columns(3)
    for col, page, state in (
        (c[0], "attention", {"view": "head"}),
        (c[1], "explain", {"section": "logit_lens"}),
        (c[2], "intervene", {"section": "patching"}),
    ):
        col.page_link(
            PAGE_FILES[page],
            label=t(f"translator.open_{page}"),
            icon=":material/open_in_new:",
            query_params={"model": mid, "text": text, **state},
        )
