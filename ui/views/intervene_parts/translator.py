"""The Intervene page for the training lab's translator (an encoder-decoder, llmviz.train.seq2seq): patching a
source word (llmviz.train.translator_probes.patch_source) as the page's patching section: one source word
replaced, then the clean encoder state at each (layer, position) copied back. Direct logit attribution and
steering vectors are built for Hugging Face models and say so."""

from __future__ import annotations

import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.models.loading import LoadedModel
from llmviz.report import export_name
from llmviz.train import translate as grammar
from llmviz.train import translator_probes as probes
from llmviz.train.translator import PROBE
from llmviz.viz import translator as figures
from ui.common import plot
from ui.i18n import fig_labels, t
from ui.text import show_error, show_text
from ui.translator import not_applicable, sentence

SECTIONS = ("patching",)  # the Intervene page's sections a translator has
PREFIX = "iv_x"


def url_fields(qp) -> dict:
    """The widget a link sets: the source sentence (``?text=``)."""
    return {f"{PREFIX}_src": qp("text", PROBE)}


def render(section: str, loaded: LoadedModel) -> None:
    """``section`` of the page for the translator ``loaded`` (kind seq2seq)."""
    if section not in SECTIONS:
        not_applicable(t(f"intervene.section_{section}"))
        return
    st.markdown(t("training.tr_patch_intro"))
    pair = sentence(loaded, PREFIX, with_target=False)
    if pair is None:
        return
    words = pair.words
    c = st.columns(2)
    pos = c[0].selectbox(
        t("training.tr_patch_pos"), range(len(words)), key=f"{PREFIX}_pos", format_func=lambda i: f"{i}: {words[i]}"
    )
    pos = min(int(pos), len(words) - 1)  # the sentence may have become shorter
    choices = grammar.same_kind(words[pos]) or [w for w in grammar.source_vocabulary() if w != words[pos]]
    word = c[1].selectbox(t("training.tr_patch_word"), choices, key=f"{PREFIX}_word_{words[pos]}")
    tok = loaded.tokenizer
    try:
        patch = probes.patch_source(loaded.model, tok.src, tok.tgt, words, pos, word)
    except LlmvizError as err:
        show_error(err)
        return
    show_text(f"{' '.join(patch.clean)} → {' '.join(patch.target)}")
    show_text(f"{' '.join(patch.corrupt)} → {' '.join(patch.corrupt_output)}")
    plot(
        figures.source_patch_figure(patch, labels=fig_labels()),
        key=f"{PREFIX}_patch",
        export_name=export_name("intervene", loaded.facts.model_id, f"patch-source-{pos}"),
    )
    st.caption(t("training.tr_patch_note", clean=patch.lp_clean, corrupt=patch.lp_corrupt))
