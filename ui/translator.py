"""The training lab's translator opened on another page (Attention, Explain, Intervene): the pieces those pages'
translator views share — the sentence inputs and the "does not apply" message. The views themselves live in
ui/views/<page>_parts/translator.py; the computation in llmviz.train.translator_probes."""

from __future__ import annotations

import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.models.loading import LoadedModel
from llmviz.train import translate as grammar
from llmviz.train import translator_probes as probes
from ui.common import offer_switch
from ui.i18n import t
from ui.text import md, show_error, show_text


def sentence(loaded: LoadedModel, prefix: str, with_target: bool = True) -> probes.SentencePair | None:
    """The source sentence (key ``<prefix>_src``) and, with ``with_target``, an optional target (``<prefix>_tgt``;
    empty: the model's greedy translation), checked against the translator's vocabularies. None (with the
    message shown) when a word is unknown."""
    c = st.columns([3, 2] if with_target else [1])
    text = c[0].text_input(t("translator.source"), key=f"{prefix}_src", max_chars=200, help=t("translator.source_help"))
    target = ""
    if with_target:
        target = c[1].text_input(
            t("translator.target"), key=f"{prefix}_tgt", max_chars=300, help=t("translator.target_help")
        )
    try:
        pair = probes.sentence_pair(loaded.model, loaded.tokenizer, text, target)
    except LlmvizError as err:
        show_error(err)
        return None
    st.markdown(t("translator.typed_target" if pair.typed_target else "translator.greedy_target"))
    show_text(f"{' '.join(pair.words)} → {' '.join(pair.target) or '∅'}")
    if grammar.parse(pair.words) is None:
        st.caption(t("translator.outside_grammar"))
    return pair


def not_applicable(what: str) -> None:
    """Say, in the page, that ``what`` (a view or section name) needs a Hugging Face model, and offer one."""
    st.info(md("translator.not_applicable", what=what))
    offer_switch("attention")
