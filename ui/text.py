"""The one text path of the app: how catalogue text, user text and model output reach the page.

- Catalogue text is markdown written by us: ``md(key, **fmt)`` fills its placeholders with values that
  are shown *literally* (user input, model output, module names, token strings): a value is escaped for
  the markdown around it — backslash-escaped in running text, put as it is inside a code span of the
  template (where a backslash would show), with no way to close the span early.
- User text and model output on their own: :func:`show_text` (``st.text``: never markdown or HTML).
- Messages that quote user input: :func:`show_error`, :func:`show_notice`, :func:`show_info`.
- Labels that Streamlit does not render as markdown (``st.metric`` values, data frames, option names)
  take plain strings: :func:`plain` (``t`` with its values unescaped).

``tests/ui/test_text_walk.py`` walks every page and section in both languages and fails on a visible
backslash-escape or a literal ``**``.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from ui.i18n import t

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=^&\"'])")
_FIELD = re.compile(r"\{(\w+)(?:[:!][^{}]*)?\}")


def md_escape(text: Any) -> str:
    """``text`` as literal markdown: every markdown/HTML/LaTeX/directive character backslash-escaped,
    so user input or model output inside a message is shown as typed, never as an image, link or tag."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def code_literal(text: Any) -> str:
    """``text`` for the inside of a single-backtick code span: shown as typed (a code span renders
    backslashes literally, so nothing is escaped); a backtick, which would end the span, becomes ``ˋ``
    and line breaks become spaces."""
    return str(text).replace("`", "ˋ").replace("\r", " ").replace("\n", " ")


def _code_fields(template: str) -> set[str]:
    """Names of the ``{placeholders}`` of ``template`` that stand inside a `code span`."""
    inside, names = False, set()
    for i, part in enumerate(template.split("`")):
        inside = i % 2 == 1
        if inside:
            names |= set(_FIELD.findall(part))
    return names


def _raw(key: str) -> str:
    """The catalogue template of ``key`` in the active language (placeholders unfilled)."""
    return t(key)


def md(key: str, **fmt) -> str:
    """``t(key, ...)`` as markdown with every string value shown literally (escaped for where it
    stands in the template: running text or a code span)."""
    code = _code_fields(_raw(key))
    filled = {}
    for name, value in fmt.items():
        if not isinstance(value, str):
            filled[name] = value
        elif name in code:
            filled[name] = code_literal(value)
        else:
            filled[name] = md_escape(value)
    return t(key, **filled)


# Older name of :func:`md`, kept for the pages that call it.
t_text = md


def plain(key: str, **fmt) -> str:
    """``t(key, ...)`` for places that show text as it is (st.metric, option labels, tables)."""
    return t(key, **fmt)


def show_text(text: Any, where=None) -> None:
    """User text or model output on its own: shown as plain text, never as markdown or HTML."""
    (where or st).text(str(text))


def show_error(err: Exception, where=None) -> None:
    """Show an LlmvizError as a user message (never a traceback); its text is escaped, so user input
    quoted in it is never rendered as markdown or HTML."""
    (where or st).error(md_escape(err), icon=":material/error:")


def show_notice(text: Any, where=None) -> None:
    """A warning whose text (which may quote user input) is shown literally."""
    (where or st).warning(md_escape(text))


def show_info(text: Any, where=None, **kwargs) -> None:
    """An info box whose text (which may quote user input) is shown literally."""
    (where or st).info(md_escape(text), **kwargs)


__all__ = ["md", "t_text", "plain", "md_escape", "code_literal", "show_text", "show_error", "show_notice", "show_info"]
