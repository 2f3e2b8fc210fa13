"""Issue 24, item 1: a shared server shows no exception details and no "Ask Google / Ask ChatGPT" buttons;
any exception of a page shows a short catalogue message and goes to the server's log. Streamlit's control
flow (st.stop, st.rerun) passes through; on localhost an exception still reaches Streamlit (and the tests)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from llmviz.i18n import catalogue
from tests.fixtures.apptest_util import open_page, texts
from ui.guard import SHARED_OPTIONS
from ui.text import md_escape

APP = Path(__file__).resolve().parents[2] / "app.py"
SHORT = catalogue("en", "app")["unexpected_error"]


@pytest.fixture
def options():
    """Streamlit's options as they were before the test (they are process-wide)."""
    before = {k: st_config.get_option(k) for k in SHARED_OPTIONS}
    yield before
    for k, v in before.items():
        st_config.set_option(k, v)
    import ui.guard

    ui.guard._saved.clear()


@pytest.fixture
def shared(monkeypatch, options):
    monkeypatch.setenv("LLMVIZ_SHARED", "1")
    return options


def test_the_app_on_a_shared_server_turns_error_details_and_help_links_off(monkeypatch, options):
    assert options["client.showErrorDetails"] != "none"  # Streamlit's default shows everything
    monkeypatch.setenv("LLMVIZ_SHARED", "1")
    open_page("pages/home.py", "minilm")
    assert st_config.get_option("client.showErrorDetails") == "none"
    assert st_config.get_option("client.showErrorLinks") is False
    monkeypatch.delenv("LLMVIZ_SHARED")  # the same process back on localhost: Streamlit's values again
    open_page("pages/home.py", "minilm")
    assert {k: st_config.get_option(k) for k in SHARED_OPTIONS} == options


def _raise_after_apply():
    from ui.guard import apply_error_display

    apply_error_display()
    raise ValueError("secret detail at /srv/llmviz/app.py")


@pytest.mark.app_exception
def test_an_uncaught_exception_on_a_shared_server_shows_no_details(shared):
    at = AppTest.from_function(_raise_after_apply).run()
    assert len(at.exception) == 1
    exc = at.exception[0]
    assert "secret" not in exc.message and not exc.stack_trace, (exc.message, exc.stack_trace)


@pytest.fixture(params=["picker", "page"])
def failing(request, monkeypatch):
    """The sidebar's model picker (app.py imports it on every run) or the Home page's view raises."""
    import ui.common
    import ui.views.home

    def boom(*_args):
        raise RuntimeError("secret detail at /srv/llmviz/ui/common.py")

    if request.param == "picker":
        monkeypatch.setattr(ui.common, "model_picker", boom)
    else:
        monkeypatch.setattr(ui.views.home, "model_facts", boom)
    return request.param


@pytest.mark.app_exception  # the localhost half
def test_a_failing_page_shows_a_short_message_on_a_shared_server_and_the_exception_on_localhost(
    monkeypatch, shared, failing, caplog
):
    with caplog.at_level(logging.ERROR, logger="llmviz.app"):
        at = open_page("pages/home.py", "minilm")
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [SHORT]
    assert "secret" not in texts(at)
    assert at.title  # the page still runs when only the sidebar failed; what ran before a failure stays
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)  # the server's log
    monkeypatch.delenv("LLMVIZ_SHARED")
    at = open_page("pages/home.py", "minilm")  # one person on localhost: Streamlit's box, as before
    assert at.exception and "secret detail" in at.exception[0].message


def _guarded():
    import streamlit as st

    from llmviz.errors import InputError
    from ui.guard import page_guard

    what = st.session_state.get("what", "stop")
    with page_guard("test"):
        st.markdown("before")
        if what == "stop":
            st.stop()
        if what == "rerun" and not st.session_state.get("rerun_done"):
            st.session_state["rerun_done"] = True
            st.rerun()
        if what == "input":
            raise InputError("Your file is not <b>valid</b> JSON.")
    st.markdown(f"after {st.session_state.get('rerun_done')}")


def test_control_flow_passes_and_user_errors_keep_their_message(shared):
    at = AppTest.from_function(_guarded)
    at.session_state["what"] = "stop"
    at.run()
    assert not at.exception and not at.error and [m.value for m in at.markdown] == ["before"]  # st.stop stopped
    at.session_state["what"] = "rerun"
    at.run()
    assert not at.exception and not at.error and [m.value for m in at.markdown] == ["before", "after True"]
    at.session_state["what"] = "input"
    at.run()
    assert not at.exception and [e.value for e in at.error] == [md_escape("Your file is not <b>valid</b> JSON.")]
