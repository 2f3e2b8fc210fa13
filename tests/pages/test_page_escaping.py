"""Issue 12, finding 2: user text and model output are shown as text, never as markdown/HTML.

Every element body that Streamlit renders as markdown (markdown, caption, error/info/warning/success,
status and expander labels, widget help) must not carry an image or HTML tag from user input."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.apptest_util import open_page

IMG = "![p](http://127.0.0.1:9/probe.png)"
TAG = "<img src=http://127.0.0.1:9/x>"
PAYLOAD = f"{IMG} {TAG}"
MARKDOWN_TYPES = {
    "markdown",
    "caption",
    "error",
    "info",
    "warning",
    "success",
    "title",
    "header",
    "subheader",
    "toast",
    "latex",
    "alert",
    "expandable",
    "tab",
}
LIVE = re.compile(r"(?<!\\)!\[[^\]]*(?<!\\)\]\(|(?<!\\)<img", re.I)  # an unescaped markdown image or a raw <img


def _bodies(at) -> list[str]:
    """Every string a markdown-rendering element shows (values, labels, help, bodies)."""
    out = []

    def walk(node):
        # a widget's value is the user's own text in an input box (shown literally); labels and help are markdown
        attrs = ("value", "label", "body", "help") if getattr(node, "type", "") in MARKDOWN_TYPES else ("label", "help")
        for attr in attrs:
            v = getattr(node, attr, None)
            if isinstance(v, str):
                out.append(v)
        proto = getattr(node, "proto", None)
        if proto is not None:
            for attr in ("body", "label", "help"):
                v = getattr(proto, attr, None)
                if isinstance(v, str):
                    out.append(v)
            expandable = getattr(proto, "expandable", None)
            if expandable is not None and getattr(expandable, "label", None):
                out.append(expandable.label)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def assert_no_live_markup(at) -> None:
    live = [b for b in _bodies(at) if LIVE.search(b)]
    assert not live, live[:5]


def test_md_escape_is_literal():
    from ui.common import md_escape

    s = md_escape(PAYLOAD + " *bold* `code` $x$ :red[r] # h")
    assert not LIVE.search(s)
    assert re.sub(r"\\(.)", r"\1", s) == PAYLOAD + " *bold* `code` $x$ :red[r] # h"  # unescaping gives it back


def test_model_deep_link_payload_shown_as_text():
    at = open_page("pages/home.py", "minilm", query={"model": PAYLOAD})
    assert not at.exception
    assert_no_live_markup(at)
    assert any("probe" in b for b in _bodies(at))  # the text is still shown (escaped)


def test_sidebar_folder_box_payload_shown_as_text():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../fixtures/picker_app.py", default_timeout=60)
    at.run()
    at.sidebar.selectbox(key="picker_choice").set_value("Local folder or GGUF file…").run()
    at.sidebar.text_input(key="picker_text_True").set_value(PAYLOAD).run()
    at.sidebar.button(key="picker_load").click().run()
    assert not at.exception
    assert_no_live_markup(at)


def test_bias_file_path_payload_shown_as_text(tiny_llama_dir):
    at = open_page("pages/bias.py", str(tiny_llama_dir), query={"section": "pairs"})
    at.radio(key="bias_pairs_src").set_value("path").run()
    at.text_input(key="bias_pairs_path").set_value(PAYLOAD).run()
    assert not at.exception and at.error
    assert_no_live_markup(at)


def test_fill_mask_payload_shown_as_text(tiny_llama_dir):
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "fill_mask"})
    at.text_area(key="pg_fill_text").set_value(f"The [MASK] went home. {PAYLOAD}").run()
    at.text_input(key="pg_fill_cands").set_value(f"dog, {IMG}").run()
    assert not at.exception
    assert_no_live_markup(at)


@pytest.mark.parametrize(
    "page",
    [
        "pages/attention.py",
        "pages/explain.py",
        "pages/positional.py",
        "pages/bias.py",
        "pages/training.py",
        "pages/playground.py",
        "pages/intervene.py",
    ],
)
def test_deep_link_parameters_shown_as_text(page, tiny_llama_dir):
    query = {
        k: PAYLOAD
        for k in (
            "text",
            "target",
            "text_b",
            "preset",
            "section",
            "view",
            "layer",
            "head",
            "step",
            "d_model",
            "max_len",
            "base",
        )
    }
    at = open_page(page, str(tiny_llama_dir), query=query)
    assert not at.exception, [e.value for e in at.exception]
    assert_no_live_markup(at)
