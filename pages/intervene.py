"""Intervene: change what a model computes and watch what happens — activation patching, direct logit
attribution and steering vectors."""

from __future__ import annotations

import streamlit as st

from ui import intervene_views as V
from ui.common import current_model
from ui.i18n import t
from ui.links import copy_link, qp, to_url, url_state

SECTIONS = ("patching", "dla", "steering")

st.title(t("intervene.title"))
st.caption(t("intervene.intro"))
loaded = current_model()
# The URL is the page's state on every navigation (tour step, card, copied link): ui.links.url_state.
url_state("intervene", {"iv_section": qp("section", "patching", choices=SECTIONS)})
section = (
    st.segmented_control(
        t("intervene.section"),
        SECTIONS,
        key="iv_section",
        required=True,
        on_change=to_url("iv_section", "section", "intervene"),
        format_func=lambda s: t(f"intervene.section_{s}"),
    )
    or "patching"
)
copy_link("intervene", {"section": section}, key="iv")
if section == "steering":
    V.steering_section(loaded)
else:
    pair = V.prompt_pair(loaded, qp("text", None))
    if pair is None:
        st.stop()
    (V.patching_section if section == "patching" else V.dla_section)(loaded, pair)
