"""What every page router does: read the page's state from the URL and draw its section picker.

``section = section_picker("bias")`` applies the URL (``ui.links.url_state``: on a navigation the
URL's values replace what the widgets held), draws the picker named in ``ui.registry`` and keeps the
choice in the URL. ``fields``: more widgets the URL sets (widget key -> value read with ``qp``)."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from ui.i18n import t
from ui.links import qp, to_url, url_state
from ui.registry import PAGE


def picked_from_url(page: str) -> str:
    """The part of ``page`` the URL names (its picker's first option when absent or unknown)."""
    picker = PAGE[page].picker
    return qp(picker.param, picker.first, choices=picker.options)


def section_picker(
    page: str,
    fields: dict[str, Any] | None = None,
    initial: str | None = None,
    on_change: Callable[[], None] | None = None,
    **kwargs,
) -> str:
    """Apply the URL state of ``page`` and draw its section picker; returns the chosen section.
    ``initial``: the section when the URL names none that is valid (default: from ``?<param>=``)."""
    picker = PAGE[page].picker
    url_state(page, {picker.key: initial or picked_from_url(page), **(fields or {})})
    chosen = st.segmented_control(
        t(picker.label),
        picker.options,
        key=picker.key,
        required=True,
        format_func=lambda o: t(picker.option.format(o=o)),
        on_change=on_change or to_url(picker.key, picker.param, page),
        **kwargs,
    )
    return chosen or picker.first
