"""What a reader sees when a page fails, by serving mode (llmviz.serving decides it).

* ``localhost`` (one person, the default): Streamlit's own exception box, as configured (the developer's
  view; tests see the exception).
* ``shared`` (a class): no exception details and no "Ask Google / Ask ChatGPT" buttons (Streamlit's
  ``client.showErrorDetails = "none"``, ``client.showErrorLinks = false``), and :func:`page_guard` turns any
  exception of the page into a short catalogue message, the traceback going to the server's log only.

Streamlit's control flow (``st.stop``, ``st.rerun``, ``st.switch_page``: ``StopException`` /
``RerunException``, BaseExceptions) and a fragment's already-shown failure (``FragmentHandledException``)
always pass through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit import config as st_config
from streamlit.errors import FragmentHandledException

from llmviz import serving
from llmviz.errors import LlmvizError
from ui.i18n import t
from ui.text import show_error

log = logging.getLogger("llmviz.app")

# Streamlit options a shared server sets, and their values there
SHARED_OPTIONS: dict[str, Any] = {"client.showErrorDetails": "none", "client.showErrorLinks": False}
_saved: dict[str, Any] = {}  # the values before this process switched to shared mode (restored when it leaves)


def apply_error_display() -> bool:
    """Set Streamlit's error display for the serving mode; True when an option changed.

    ``showErrorDetails`` is read when an exception is shown, so it counts from this run on;
    ``showErrorLinks`` goes to the browser at the start of a script run, so app.py reruns once when it
    changed (the first run of a shared server)."""
    serving.set_server_address(st.get_option("server.address"))
    changed = False
    if serving.is_shared():
        for key, value in SHARED_OPTIONS.items():
            if st_config.get_option(key) != value:
                _saved.setdefault(key, st_config.get_option(key))
                st_config.set_option(key, value)  # showErrorLinks is not settable by st.set_option
                changed = True
    else:
        for key in list(_saved):
            st_config.set_option(key, _saved.pop(key))
            changed = True
    return changed


def _short_message(err: Exception, where: str) -> None:
    log.error("page %r failed", where, exc_info=err)
    if isinstance(err, LlmvizError):  # written for the reader: its own message
        show_error(err)
    else:
        st.error(t("app.unexpected_error"), icon=":material/error:")


@contextmanager
def page_guard(where: str = "") -> Iterator[None]:
    """Around the app's page: on a shared server an exception becomes a short message (logged in full on
    the server); on localhost it propagates to Streamlit unchanged."""
    try:
        yield
    except FragmentHandledException:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a page raises; BaseExceptions (st.stop, st.rerun) pass
        if not serving.is_shared():
            raise
        _short_message(err, where)


__all__ = ["apply_error_display", "page_guard", "SHARED_OPTIONS"]
