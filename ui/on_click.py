"""Heavy work starts on a click (issue 13): a primary button with the estimate ("about N s on this
machine"); the request is remembered per page section, so switching sections and coming back shows
the result again (the computation itself is cached) without a new click."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from ui.i18n import t


def _fmt(seconds: float) -> str:
    if seconds < 10:
        return f"{max(seconds, 1):.0f}"
    return f"{round(seconds, -1):.0f}"


def start_on_click(key: str, request: Any, label: str, seconds: float | None = None) -> bool:
    """True when the work for ``request`` (any JSON-able description of the inputs) was asked for:
    now by the button, or earlier in this session with the same inputs."""
    sig = json.dumps(request, sort_keys=True, default=str)
    text = label if seconds is None else f"{label} ({t('app.estimate', s=_fmt(seconds))})"
    if st.button(text, key=f"{key}_start", type="primary", icon=":material/play_arrow:"):
        st.session_state[f"{key}_asked"] = sig
    if st.session_state.get(f"{key}_asked") == sig:
        return True
    st.caption(t("app.press_to_start"))
    return False
