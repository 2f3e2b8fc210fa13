"""Explain: why did the model predict this? Attributions side by side, logit lens, head ablation.
Router: URL state and the section picker; the views are ui.views.explain."""

import streamlit as st

from llmviz.train.seq2seq_io import is_seq2seq
from ui.common import current_model
from ui.i18n import t
from ui.links import copy_link, qp
from ui.router import section_picker
from ui.views import explain as views

st.title(t("explain.title"))
st.caption(t("explain.intro"))
loaded = current_model(seq2seq=True)
if is_seq2seq(loaded):  # the training lab's translator: the logit lens on its decoder
    tr = views.translator_view
    tr.render(section_picker("explain", fields=tr.url_fields(qp), initial=tr.initial_section(st.query_params)), loaded)
    st.stop()
section = section_picker("explain", fields=views.url_fields(loaded, qp))
question = views.question(loaded)
copy_link("explain", views.link_state(question, section), key="ex")
views.render(section, loaded, question)
