"""Views of the Home / Learn page: the facts of the loaded model, the architecture details some models add to
the common facts (Gemma 3), and the licence. The tour and the cards are ui.learn."""

from __future__ import annotations

import streamlit as st

from llmviz.models.loading import ModelFacts
from ui.i18n import t
from ui.links import presenter_mode
from ui.text import t_text


def _pattern(f: ModelFacts) -> str:
    """'5 local : 1 global' from the per-layer types."""
    n_local = sum(lt == "sliding_attention" for lt in f.layer_types)
    return f"{n_local} : {len(f.layer_types) - n_local}"


def architecture_details(f: ModelFacts) -> None:
    """Sliding-window layers, both RoPE bases, query_pre_attn_scalar, QK-norm, embedding scale; then the licence."""
    if f.layer_types or f.qk_norm or f.embed_scale or f.query_pre_attn_scalar:
        c = st.columns(4)
        if f.layer_types:
            c[0].metric(t("home.local_global"), _pattern(f), help=t("home.local_global_help", w=f.sliding_window))
            c[1].metric(t("home.window"), f.sliding_window)
        if f.rope_theta_local:
            c[2].metric(
                t("home.rope_bases"), f"{f.rope_theta_local:g} / {f.rope_theta:g}", help=t("home.rope_bases_help")
            )
        if f.query_pre_attn_scalar:
            c[3].metric(
                t("home.qpas"),
                f"{f.query_pre_attn_scalar:g}",
                help=t("home.qpas_help", s=f.query_pre_attn_scalar**-0.5, d=f.head_dim),
            )
        c = st.columns(4)
        c[0].metric(t("home.qk_norm"), t("home.yes") if f.qk_norm else t("home.no"), help=t("home.qk_norm_help"))
        if f.embed_scale:
            c[1].metric(
                t("home.embed_scale"), f"√{f.hidden_size} = {f.embed_scale:.2f}", help=t("home.embed_scale_help")
            )
        c[2].metric(
            t("home.chat_template"),
            t("home.yes") if f.has_chat_template else t("home.no"),
            help=t("home.chat_template_help"),
        )
        if f.layer_types:
            kinds = ["L" if lt == "sliding_attention" else "G" for lt in f.layer_types]
            st.caption(t("home.layer_map", map=" ".join(kinds)))
    if f.license:
        st.caption(t("home.license", text=f.license))


def model_facts(loaded) -> None:
    """The facts every loaded model exposes (kind, layers × heads, KV heads, positions, ...), then its
    architecture details, the probes it supports and, outside presenter mode, all facts as JSON."""
    f = loaded.facts
    st.subheader(t_text("home.model_heading", model=f.model_id))
    st.markdown(
        t(
            "home.model_summary",
            kind=t(f"home.kind_a_{f.kind}"),
            layers=f.n_layers,
            heads=f.n_heads,
            params=f"{f.n_params / 1e6:.1f}",
        )
    )
    c = st.columns(4)
    c[0].metric(t("home.kind"), t(f"home.kind_{f.kind}"))
    c[1].metric(t("home.layers_heads"), f"{f.n_layers} × {f.n_heads}")
    c[2].metric(t("home.kv_heads"), f.n_kv_heads, help=t("home.kv_heads_help"))
    c[3].metric(t("home.params"), f"{f.n_params / 1e6:.1f} M")
    c = st.columns(4)
    c[0].metric(t("home.positions"), t(f"app.pos_{f.positional}") + (f" (θ={f.rope_theta:g})" if f.rope_theta else ""))
    c[1].metric(t("home.max_positions"), f.max_positions)
    c[2].metric(t("home.hidden_head_dim"), f"{f.hidden_size} / {f.head_dim}")
    c[3].metric(t("home.vocab"), f"{f.vocab_size:,}")
    architecture_details(f)
    st.info(t(f"home.probes_{f.kind}"))
    if not presenter_mode():
        with st.expander(t("home.all_facts")):
            st.json(f.as_dict())
