"""UI strings in English and Chinese.

Catalogues are JSON files, one per page and language: ``i18n/<lang>/<page>.json``
(``{"key": "text"}``). ``t("attention.title")`` looks up key ``title`` in the
``attention`` catalogue of the active language (``st.session_state["lang"]``).
A missing key shows ``⟦page.key⟧`` so tests can find it; tests/test_i18n.py checks that
every key exists in every language.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import streamlit as st

LANGS = {"en": "English", "zh": "中文"}
ROOT = Path(__file__).resolve().parents[1] / "i18n"
MISSING = "⟦{}⟧"
LANG_KEY = "lang"


@lru_cache(maxsize=64)
def catalogue(lang: str, page: str) -> dict[str, str]:
    path = ROOT / lang / f"{page}.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def lang() -> str:
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
    return text.format(**fmt) if fmt else text
