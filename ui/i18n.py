"""UI strings in English and Chinese.

Catalogues are JSON files, one per page and language: ``llmviz/catalogues/<lang>/<page>.json``
(``{"key": "text"}``), read through the streamlit-free :mod:`llmviz.i18n`. ``t("attention.title")``
looks up key ``title`` in the ``attention`` catalogue of the active language (``st.session_state["lang"]``).
A missing key shows ``⟦page.key⟧`` so tests can find it; tests/ui/test_i18n.py checks that
every key exists in every language.
"""

from __future__ import annotations

import streamlit as st

from llmviz.i18n import LANGS, MISSING, ROOT, Labels, catalogue, labels  # noqa: F401 - re-exported

LANG_KEY = "lang"  # session_state key and URL parameter of the active language
LANG_SWITCH = "lang_switch"  # widget key of the sidebar switch


def _ensure_app_navigation() -> None:
    """Make a deep link opened first run through app.py.

    Streamlit decides at server start that an app with a ``pages/`` folder uses the old
    folder navigation until some session has run ``st.navigation``; until then a link such as
    ``/attention?view=head`` runs the page file alone — no sidebar, no language, no presenter
    mode, no model picker. Every page asks for its title through ``t()`` first, so here we
    switch to app.py's navigation and rerun once (app.py then runs and opens the same page).
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    # AppTest resets the flag before every run; a rerun there would swallow button clicks.
    if (
        PagesManager.uses_pages_directory
        and get_script_run_ctx() is not None
        and not config.get_option("global.appTest")
    ):
        PagesManager.uses_pages_directory = False
        st.rerun()


def lang() -> str:
    """Active language: the session's choice, else ``?lang=``, else English."""
    _ensure_app_navigation()
    value = st.session_state.get(LANG_KEY) or st.query_params.get("lang") or "en"
    return value if value in LANGS else "en"


def t(key: str, **fmt) -> str:
    """Translate ``page.key`` into the active language; ``fmt`` fills ``{placeholders}``."""
    page, _, name = key.partition(".")
    text = catalogue(lang(), page).get(name)
    if text is None:
        text = catalogue("en", page).get(name)
    if text is None:
        return MISSING.format(key)
    if not fmt:
        return text
    try:
        return text.format(**fmt)
    except (KeyError, IndexError, ValueError):  # a catalogue placeholder the caller did not fill
        return MISSING.format(key)


def fig_labels() -> Labels:
    """The label function of the figure builders (llmviz.viz) in the active language: pass it as
    ``labels=`` so a figure is built in the reader's language."""
    return labels(lang())


def set_lang() -> None:
    """Callback of the language switch: remember the choice for the session (a plain key, so it
    survives pages that do not draw the switch) and mirror it in ``?lang=`` (absent for English)."""
    value = st.session_state.get(LANG_SWITCH) or "en"
    st.session_state[LANG_KEY] = value
    if value != "en":
        st.query_params[LANG_KEY] = value
    elif LANG_KEY in st.query_params:
        del st.query_params[LANG_KEY]
