"""Issue 24, item 1, in a real browser: a shared server shows no exception details and no "Ask Google /
Ask ChatGPT" buttons (Streamlit's client options, which AppTest cannot show), from the first page load
on, even to a browser on localhost (where Streamlit's "auto" would show the buttons); a failure inside
ui.guard.page_guard shows the catalogue's short message."""

from __future__ import annotations

import os

import pytest

from llmviz.i18n import catalogue
from tests.browser.conftest import ROOT, _free_port, serve, streamlit_args, wait_idle

APP = ROOT / "tests" / "fixtures" / "failing_app.py"


@pytest.fixture(scope="module")
def shared_app():
    port = _free_port()
    env = dict(os.environ, LLMVIZ_SHARED="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # localhost: Streamlit's default would show the help buttons here
    with serve(streamlit_args(APP, port), port, env, host="localhost") as url:
        yield url


def test_shared_server_shows_no_details_and_no_help_buttons(shared_app, page):
    page.goto(f"{shared_app}/")  # the server's first page load
    wait_idle(page, timeout=60_000)
    page.get_by_text("before the failure").wait_for(timeout=30_000)
    page.locator('[data-testid="stException"]').first.wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "secret" not in body and "ValueError" not in body and "failing.py" not in body, body
    assert "Google" not in body and "ChatGPT" not in body, body

    page.goto(f"{shared_app}/?guarded=1")
    wait_idle(page, timeout=60_000)
    short = catalogue("en", "app")["unexpected_error"]
    page.get_by_text(short).wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "secret" not in page.inner_text("body")
