"""Issue 12, finding 7: the server opens no connection that leaves the machine, over start-up and a
walk of every page, started as `make run` starts it (no --server.address flag: the config decides).
HF_HUB_OFFLINE is NOT set here, so a hub lookup would show."""

from __future__ import annotations

import os
import time

import pytest

from tests.browser.conftest import ROOT, _free_port, serve, wait_idle

PAGES = ["", "playground", "attention", "positional", "bias", "explain", "training"]


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory):
    log = tmp_path_factory.mktemp("guard") / "connects.log"
    log.write_text("")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(LLMVIZ_CONNECT_LOG=str(log), TOKENIZERS_PARALLELISM="false")
    args = [str(ROOT / "tests" / "browser" / "guarded_streamlit.py"), "run", str(ROOT / "app.py"), "--server.port"]
    with serve(args + [str(port)], port, env) as url:
        time.sleep(3)  # the start-up banner (where Streamlit looks up an external IP) is printed after health is up
        yield url, log


def test_no_outbound_connections_over_startup_and_every_page(guarded_app, page):
    url, log = guarded_app
    for p in PAGES:
        page.goto(f"{url}/{p}")
        wait_idle(page, timeout=240_000)
        assert page.locator('[data-testid="stException"]').count() == 0, p
    # a mistyped folder name in the sidebar's folder box must not reach the hub (no DNS)
    page.goto(f"{url}/")
    wait_idle(page)
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option").filter(has_text="folder").first.click()
    wait_idle(page)
    box = page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input').first
    box.fill("models/my-bertt")
    box.press("Enter")
    wait_idle(page)
    page.locator('[data-testid="stSidebar"] button').filter(has_text="Load").first.click()
    wait_idle(page)
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    assert not lines, "\n".join(lines[:10])
