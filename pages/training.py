"""Training lab: train a tiny transformer live (overfitting and its cures), transfer learning, data bias ->
model bias, memorized secrets. Router: URL state and the section picker (``?preset=`` names a live preset or
a section); the views are ui.views.training."""

import streamlit as st

from ui.i18n import t
from ui.links import presenter_mode, qp
from ui.router import section_picker
from ui.views import training as view

st.title(t("training.title"))
st.markdown(t("training.intro"))
linked = view.linked_preset(qp)
section = section_picker(
    "training", fields=view.url_fields(linked), initial=view.section_of(linked), on_change=view.section_to_url
)
view.render(section)
view.limits(presenter_mode())
