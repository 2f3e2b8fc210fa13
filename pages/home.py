"""Home / Learn: what llmviz is, the guided tour, the concept cards of the course, and the facts
of the loaded model. Router: the section picker is ui.learn.home_section; views are ui.learn and ui.views.home."""

import streamlit as st

from ui.common import current_model
from ui.i18n import t
from ui.learn import home_section, render_cards, render_tour
from ui.links import copy_link, presenter_mode
from ui.views import home as view

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
view.model_facts(current_model(seq2seq=True))
