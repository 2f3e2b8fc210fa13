"""Catalogues of reader-facing text, without streamlit: ``llmviz/catalogues/<lang>/<page>.json`` (``{"key": "text"}``).

The app's ``ui.i18n.t`` and the figure builders in :mod:`llmviz.viz` read them through here. A builder
takes a label function ``L = labels("zh")`` and writes every title, axis, legend, hover and annotation
as ``L("rope_angle_title")`` or ``L("layer_head", layer=3, head=1)``, so a figure is built in the
reader's language (never translated afterwards). In a notebook, ``set_language("zh")`` makes Chinese
the default of every builder called without ``labels=``.

A key missing from the language falls back to the English text; missing from English too, it shows
as ``⟦figures.key⟧`` so tests find it. Plotly placeholders in a text (``%{y}``, ``%{z:.3f}``) are
kept as they are; ``{name}`` fields are filled from the keyword arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LANGS = {"en": "English", "zh": "中文"}
DEFAULT_LANG = "en"
ROOT = Path(__file__).resolve().parent / "catalogues"
MISSING = "⟦{}⟧"
FIGURES = "figures"  # the catalogue of the figure builders

_PLOTLY = re.compile(r"%\{[^{}]*\}")  # a plotly placeholder, e.g. %{customdata[0]:.3f}
_default = {"lang": DEFAULT_LANG}


@lru_cache(maxsize=64)
def catalogue(lang: str, page: str) -> dict[str, str]:
    """The ``page`` catalogue of ``lang`` (empty when there is no such file)."""
    path = ROOT / lang / f"{page}.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def fill(text: str, **fmt) -> str:
    """``text`` with its ``{fields}`` filled from ``fmt``; plotly's ``%{...}`` placeholders stay as
    they are. Without ``fmt`` the text comes back as written (like ``ui.i18n.t``). Raises
    KeyError/IndexError/ValueError when a field is not given."""
    if not fmt:
        return text
    kept: list[str] = []

    def keep(m: re.Match) -> str:
        kept.append(m.group(0))
        return f"\x00{len(kept) - 1}\x00"

    out = _PLOTLY.sub(keep, text).format(**fmt)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], out)


def text(lang: str, page: str, key: str, **fmt) -> str:
    """The text of ``key`` in ``lang`` (else English, else the ``⟦page.key⟧`` marker), filled."""
    value = catalogue(lang, page).get(key)
    if value is None:
        value = catalogue(DEFAULT_LANG, page).get(key)
    if value is None:
        return MISSING.format(f"{page}.{key}")
    try:
        return fill(value, **fmt)
    except (KeyError, IndexError, ValueError):  # a placeholder the caller did not fill
        return MISSING.format(f"{page}.{key}")


def set_language(lang: str) -> None:
    """The language of builders called without ``labels=`` (a notebook's choice; the app always
    passes its reader's labels)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGS)}")
    _default["lang"] = lang


def get_language() -> str:
    return _default["lang"]


@dataclass(frozen=True)
class Labels:
    """``L(key, **fmt)``: the text of ``key`` in one language's catalogue (see :func:`text`)."""

    lang: str = DEFAULT_LANG
    page: str = FIGURES

    def __call__(self, key: str, **fmt) -> str:
        return text(self.lang, self.page, key, **fmt)

    def has(self, key: str) -> bool:
        """Whether ``key`` exists (in this language or English)."""
        return key in catalogue(self.lang, self.page) or key in catalogue(DEFAULT_LANG, self.page)

    def get(self, key: str, default: str, **fmt) -> str:
        """The text of ``key``, or ``default`` when no catalogue has it (registry names such as a
        method added without a catalogue entry)."""
        return self(key, **fmt) if self.has(key) else default


L = Labels  # the type builders annotate their ``labels`` argument with


def labels(lang: str | None = None, page: str = FIGURES) -> Labels:
    """The label function of ``lang`` (None: the default set by :func:`set_language`)."""
    lang = lang or get_language()
    return Labels(lang if lang in LANGS else DEFAULT_LANG, page)


def resolve(labels_: Labels | None) -> Labels:
    """A builder's ``labels`` argument: the one given, else the default language's."""
    return labels_ if labels_ is not None else labels()
