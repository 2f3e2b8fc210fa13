"""Home / Learn: what llmviz is, the guided tour, the concept cards of the course, and the facts
of the loaded model."""

import streamlit as st

from ui.common import current_model, t_text
from ui.home_views import architecture_details
from ui.i18n import t
from ui.learn import home_section, render_cards, render_tour
from ui.links import copy_link, presenter_mode

st.title(t("home.heading"))
st.markdown(t("home.tagline"))
if presenter_mode():
    st.caption(t("learn.presenter_tip"))

section = home_section()
if section == "tour":
    render_tour()  # carries its own link to this view (step by step)
else:
    render_cards(section)
    copy_link("home", {"section": section}, key="home")

st.divider()
loaded = current_model()
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
