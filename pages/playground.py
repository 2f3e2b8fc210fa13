"""Playground: the five applications with streamed generation and per-token probabilities, branching, and
fill-mask. Router: URL state and the preset picker; the views are ui.views.playground."""

import streamlit as st

from llmviz.generation.presets import FILL_MASK
from ui.common import current_model
from ui.i18n import t
from ui.links import qp
from ui.router import section_picker
from ui.views import playground as views

st.title(t("playground.title"))
st.markdown(t("playground.intro"))
loaded = current_model()
mode = section_picker("playground", fields=views.url_fields(qp))
views.honesty_note(loaded)
linked = views.linked_text(qp, mode)
if mode == FILL_MASK:
    views.fill_mask_section(loaded, linked)
else:
    views.generation_section(loaded, mode, linked)
