"""Bias probes: template fills, minimal pairs with CIs, counterfactual generations, WEAT/SEAT, projection
debiasing, StereoSet, the run store, caveats. Router: URL state and the section picker; the views are
ui.views.bias."""

import streamlit as st

from ui.common import current_model
from ui.i18n import t
from ui.links import copy_link, presenter_mode
from ui.router import section_picker
from ui.views import bias as view

st.title(t("bias.title"))
st.markdown(t("bias.intro"))
loaded = current_model()
view.model_caption(loaded)
section = section_picker("bias")
copy_link("bias", {"section": section}, key="bias")
view.render(section, loaded)
view.caveats(presenter_mode())
