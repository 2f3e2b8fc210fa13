"""The Attention page for the training lab's translator (an encoder-decoder, llmviz.train.seq2seq): for a typed
source sentence and its target (typed, or the model's greedy translation), the encoder's self-attention, the
decoder's causal self-attention and the cross-attention (queries from the decoder, keys and values from the
encoder) per layer and head, all heads at once, and the bertviz-style encoder-decoder view. The views built for
Hugging Face models (statistics, rollout, formula, neuron view) say that they need one."""

from __future__ import annotations

import streamlit as st

from llmviz.models.loading import LoadedModel
from llmviz.report import export_name
from llmviz.train import translator_probes as probes
from llmviz.train.translator import PROBE
from llmviz.viz import attention as viz
from llmviz.viz import bertviz_offline as bertviz
from llmviz.viz import translator as figures
from ui.common import plot
from ui.i18n import fig_labels, t
from ui.translator import not_applicable, sentence

VIEWS = ("head", "layer", "bertviz")  # the Attention page's views a translator has
PREFIX = "att_x"


def url_fields(qp) -> dict:
    """The widgets a link sets: the source sentence (``?text=``) and target (``?target=``)."""
    return {f"{PREFIX}_src": qp("text", PROBE), f"{PREFIX}_tgt": qp("target", "")}


def initial_view(query_params) -> str | None:
    """The head view when the URL names no view (the page's first view, statistics, needs a Hugging Face model)."""
    return None if "view" in query_params else "head"


def _head_pick(n_layers: int, n_heads: int) -> tuple[int, int]:
    for key, hi in ((f"{PREFIX}_layer", n_layers - 1), (f"{PREFIX}_head", n_heads - 1)):
        st.session_state[key] = min(max(int(st.session_state.get(key, 0)), 0), hi)
    c = st.columns([1, 1, 3])
    layer = c[0].number_input(t("attention.layer"), 0, n_layers - 1, key=f"{PREFIX}_layer")
    head = c[1].number_input(t("attention.head"), 0, n_heads - 1, key=f"{PREFIX}_head")
    return int(layer), int(head)


def render(view: str, loaded: LoadedModel) -> None:
    """``view`` of the page for the translator ``loaded`` (kind seq2seq)."""
    st.markdown(t("translator.att_intro"))
    pair = sentence(loaded, PREFIX)
    if pair is None:
        return
    if view not in VIEWS:
        not_applicable(t(f"attention.view_{view}"))
        return
    att = probes.pair_attention(loaded.model, loaded.tokenizer, pair)
    src, tgt = pair.source_tokens, pair.target_tokens
    stem = export_name("attention", loaded.facts.model_id)
    L = fig_labels()
    if view == "bertviz":
        _bertviz(src, tgt, att, stem)
        return
    n_layers, n_heads = att["cross"].shape[:2]
    layer, head = _head_pick(n_layers, n_heads)
    if view == "head":
        st.markdown(t("translator.att_cross_note"))
        title = t("translator.att_cross_title", layer=layer, head=head)
        fig = viz.matrix_heatmap(att["cross"][layer, head], title, tgt, src, signed=False, labels=L)
        plot(fig, key=f"{PREFIX}_cross", export_name=f"{stem}_cross_layer{layer}-head{head}")
        c = st.columns(2)
        for col, name in zip(c, ("enc_self", "dec_self")):
            tokens = src if name == "enc_self" else tgt
            title = t(f"translator.att_{name}_title", layer=layer, head=head)
            with col:
                plot(
                    viz.attention_heatmap(tokens, att[name][layer, head], title, zmax=1.0, labels=L),
                    key=f"{PREFIX}_{name}",
                    export_name=f"{stem}_{name}_layer{layer}-head{head}",
                )
        return
    st.markdown(t("translator.att_grid_note"))
    plot(
        figures.cross_attention_grid(src, tgt, att["cross"], labels=L),
        key=f"{PREFIX}_grid",
        export_name=f"{stem}_cross_all-heads",
    )
    for name in ("enc_self", "dec_self"):
        tokens = src if name == "enc_self" else tgt
        st.markdown(t(f"translator.att_{name}_layer", layer=layer))
        plot(
            viz.layer_small_multiples(tokens, att[name][layer], layer, labels=L),
            key=f"{PREFIX}_{name}_layer",
            export_name=f"{stem}_{name}_layer{layer}",
        )


def _bertviz(src: list[str], tgt: list[str], att: dict, stem: str) -> None:
    frag = bertviz.encdec_fragment(
        src,
        tgt,
        att["enc_self"],
        att["dec_self"],
        att["cross"],
        [t("training.tr_bv_encoder"), t("training.tr_bv_decoder"), t("training.tr_bv_cross")],
        t("training.tr_bv_layer"),
        t("training.tr_bv_attention"),
    )
    doc = bertviz.standalone_html(frag, title="llmviz translator", note=" ".join(src))
    st.iframe(doc, height="content")
    st.caption(t("training.tr_bv_caption"))
    st.download_button(
        t("attention.bertviz_download"), doc, f"{stem}_bertviz-encoder-decoder.html", "text/html", key=f"{PREFIX}_bv"
    )
