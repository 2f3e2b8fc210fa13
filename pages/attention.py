"""Attention explorer: head statistics, heatmaps, rollout, offline bertviz, the formula step by step, the neuron
view, exports. Router: URL state and the view picker; the views are ui.views.attention."""

import streamlit as st

from llmviz.train.seq2seq_io import is_seq2seq
from ui.common import current_model, require_probe
from ui.i18n import t
from ui.links import copy_link, qp
from ui.router import section_picker
from ui.views import attention as views

st.title(t("attention.title"))
st.markdown(t("attention.intro"))
loaded = current_model(seq2seq=True)
if is_seq2seq(loaded):  # the training lab's translator: its encoder, decoder and cross-attention
    tr = views.translator_view
    tr.render(section_picker("attention", fields=tr.url_fields(qp), initial=tr.initial_view(st.query_params)), loaded)
    st.stop()
require_probe(loaded, "attention", t("attention.title"))
top = st.container()  # the text above the view picker, drawn after the URL state is applied
view = section_picker("attention", fields=views.url_fields(qp))
with top:
    given = views.inputs(loaded)
if given is None:
    st.stop()
text, text_b, hide, result, shown = given
layer, head = views.head_picker(loaded, result, qp)
state = views.AttentionView(loaded, text, text_b, hide, result, shown, layer, head)
views.render(view, state)
copy_link("attention", views.link_state(state, view), key="att")
