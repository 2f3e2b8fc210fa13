"""Intervene: change what a model computes and watch what happens — activation patching, direct logit
attribution and steering vectors. Router: URL state and the section picker; the views are ui.views.intervene."""

import streamlit as st

from llmviz.train.seq2seq_io import is_seq2seq
from ui.common import current_model
from ui.i18n import t
from ui.links import copy_link, qp
from ui.router import section_picker
from ui.views import intervene as view

st.title(t("intervene.title"))
st.caption(t("intervene.intro"))
loaded = current_model(seq2seq=True)
if is_seq2seq(loaded):  # the training lab's translator: patching a source word
    view.translator_view.render(section_picker("intervene", fields=view.translator_view.url_fields(qp)), loaded)
    st.stop()
section = section_picker("intervene", fields=view.url_fields(loaded, qp))
if section == "steering":
    view.steering_section(loaded)
else:
    pair = view.prompt_pair(loaded)
    if pair is not None:
        (view.patching_section if section == "patching" else view.dla_section)(loaded, pair)
copy_link("intervene", view.link_state(section), key="iv")
