"""Deep links and presenter mode.

Pages read their initial state from URL query parameters with ``qp(name, default, cast)``
and offer ``copy_link(state)`` so a teacher can prepare a link to exactly this view.
"""
from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import urlencode

import streamlit as st

PRESENTER_KEY = "presenter"


def qp(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    """Initial value for a widget from ``?name=...``; falls back to ``default`` on bad values."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        return default


def link_for(page_path: str, state: dict[str, Any]) -> str:
    """Relative link (``/attention?text=...``) that reopens a view in the given state."""
    clean = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in state.items() if v is not None}
    return f"/{page_path}?{urlencode(clean)}" if clean else f"/{page_path}"


def copy_link(page_path: str, state: dict[str, Any], key: str) -> str:
    """Show the link to this view in a copyable code box; returns the link."""
    from ui.common import MODEL_KEY

    state = {"model": st.session_state.get(MODEL_KEY), **state}
    link = link_for(page_path, state)
    with st.popover(":material/link: Link to this view", key=f"{key}_link"):
        st.caption("Copy this link (append it to the app's address) to reopen this view with the same settings.")
        st.code(link, language=None)
    return link


def presenter_mode() -> bool:
    """True when the teacher turned on presenter mode: pages hide advanced controls."""
    return bool(st.session_state.get(PRESENTER_KEY, False))
