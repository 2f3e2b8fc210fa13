"""Positional-encoding lab: sinusoidal waves, learned positions, RoPE and the with/without-positions experiment.
Thin: widgets -> llmviz.positional.encodings* -> llmviz.viz.positional figures. Sections live in ui/positional_views.py."""

from __future__ import annotations

import streamlit as st

from llmviz.positional.encodings import DEFAULT_BASE, MAX_BASE, MAX_D_MODEL, MAX_LEN
from ui import positional_views as views
from ui.common import current_model, t_text
from ui.i18n import t
from ui.links import copy_link, qp, to_url, url_state

SECTIONS = ("sinusoidal", "learned", "rope", "ablation")
DEFAULTS = {"d_model": 128, "max_len": 100, "base": DEFAULT_BASE}
LIMITS = {"d_model": (1, MAX_D_MODEL), "max_len": (1, MAX_LEN), "base": (1.0, MAX_BASE)}


def _linked_param(name: str, cast) -> float:
    """Initial value from ``?name=`` clamped to the accepted range, with a notice when it was out of range."""
    lo, hi = LIMITS[name]
    raw = qp(name, DEFAULTS[name], cast)
    value = min(max(raw, lo), hi)
    if value != raw:
        st.warning(t_text("positional.clamped", name=name, raw=raw, value=value, lo=lo, hi=hi))
    return value


st.title(t("positional.title"))
st.markdown(t("positional.intro"))
loaded = current_model()
facts = loaded.facts
st.caption(
    t_text(
        "positional.model_scheme",
        model=facts.model_id,
        scheme=t(f"app.pos_{facts.positional}"),
        theta=f" (θ = {facts.rope_theta:g})" if facts.rope_theta else "",
        max_pos=facts.max_positions,
    )
)

# The URL is the page's state on every navigation (tour step, card, copied link): ui.links.url_state.
url_state(
    "positional",
    {
        "pos_section": qp("section", "sinusoidal", choices=SECTIONS),
        "pos_d_model": int(_linked_param("d_model", int)),
        "pos_max_len": int(_linked_param("max_len", int)),
        "pos_base": float(_linked_param("base", float)),
    },
)
section = (
    st.segmented_control(
        t("positional.section"),
        SECTIONS,
        format_func=lambda s: t(f"positional.sec_{s}"),
        key="pos_section",
        required=True,
        on_change=to_url("pos_section", "section", "positional"),
    )
    or "sinusoidal"
)

state: dict = {"section": section}
if section == "sinusoidal":
    c = st.columns(3)
    d_model = c[0].slider(
        t("positional.d_model"),
        *LIMITS["d_model"],
        key="pos_d_model",
        help=t("positional.d_model_help"),
        on_change=to_url("pos_d_model", "d_model", "positional"),
    )
    max_len = c[1].slider(
        t("positional.max_len"),
        *LIMITS["max_len"],
        key="pos_max_len",
        help=t("positional.max_len_help", n=MAX_LEN),
        on_change=to_url("pos_max_len", "max_len", "positional"),
    )
    base = c[2].number_input(
        t("positional.base"),
        *LIMITS["base"],
        step=1000.0,
        format="%g",
        key="pos_base",
        help=t("positional.base_help"),
        on_change=to_url("pos_base", "base", "positional"),
    )
    state.update(d_model=int(d_model), max_len=int(max_len), base=float(base))
    copy_link("positional", state, key="pos")
    views.sinusoidal_section(int(d_model), int(max_len), float(base))
else:
    copy_link("positional", state, key="pos")
    if section == "learned":
        views.learned_section(loaded)
    elif section == "rope":
        views.rope_section(loaded)
    else:
        views.ablation_section(loaded)
