"""The Explain page for the training lab's translator (an encoder-decoder, llmviz.train.seq2seq): the logit lens
on its decoder (llmviz.train.translator_probes.decoder_logit_lens) as the page's logit-lens section. The other
sections (attributions, head ablation, information flow) are built for Hugging Face models and say so."""

from __future__ import annotations

import streamlit as st

from llmviz.models.loading import LoadedModel
from llmviz.report import export_name
from llmviz.train import translator_probes as probes
from llmviz.train.translator import PROBE
from llmviz.viz import translator as figures
from ui.common import plot
from ui.i18n import fig_labels, t
from ui.translator import not_applicable, sentence

SECTIONS = ("logit_lens",)  # the Explain page's sections a translator has
PREFIX = "ex_x"


def url_fields(qp) -> dict:
    """The widgets a link sets: the source sentence (``?text=``) and target (``?target=``)."""
    return {f"{PREFIX}_src": qp("text", PROBE), f"{PREFIX}_tgt": qp("target", "")}


def initial_section(query_params) -> str | None:
    """The logit lens when the URL names no section (the page's first one needs a Hugging Face model)."""
    return None if "section" in query_params else "logit_lens"


def render(section: str, loaded: LoadedModel) -> None:
    """``section`` of the page for the translator ``loaded`` (kind seq2seq)."""
    if section not in SECTIONS:
        not_applicable(t(f"explain.section_{section}"))
        return
    st.markdown(t("training.tr_lens_intro"))
    pair = sentence(loaded, PREFIX)
    if pair is None:
        return
    lens = probes.pair_lens(loaded.model, loaded.tokenizer, pair)
    plot(
        figures.decoder_lens_figure(lens, labels=fig_labels()),
        key=f"{PREFIX}_lens",
        export_name=export_name("explain", loaded.facts.model_id, "decoder-logit-lens"),
    )
    st.caption(t("translator.lens_note"))
