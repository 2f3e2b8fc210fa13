"""Browser harness: `streamlit run app.py` on a free localhost port, driven by the system Chromium.

Every request the page makes is recorded; `assert_offline(page)` fails if any left localhost.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout_s: float) -> bool:
    """Poll Streamlit's health endpoint until it answers 200 (True) or ``timeout_s`` passes (False)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


@pytest.fixture(scope="session")
def app_url():
    """Start the app once per test session; yield its base URL."""
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = (
        open(ROOT / ".pytest_cache" / "streamlit-browser.log", "w")
        if (ROOT / ".pytest_cache").is_dir()
        else subprocess.DEVNULL
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, 90):
        proc.kill()
        pytest.fail("streamlit did not start within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_context(browser, **kwargs):
    """A browser context whose pages count their script runs (``wait_idle`` needs the counter: a
    context made with ``browser.new_context`` directly makes ``wait_idle`` fail loudly)."""
    context = browser.new_context(**kwargs)
    context.add_init_script(_RUN_COUNTER_JS)
    return context


@pytest.fixture
def page(browser):
    """A fresh page whose every request URL is recorded in ``page.requests_seen``."""
    context = new_context(browser, viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.runs_waited = 0
    pg.requests_seen = []
    pg.on("request", lambda req: pg.requests_seen.append(req.url))
    pg.console_errors = []
    pg.on("pageerror", lambda exc: pg.console_errors.append(str(exc)))
    yield pg
    context.close()


def external_requests(urls: list[str]) -> list[str]:
    out = []
    for u in urls:
        parsed = urlparse(u)
        if parsed.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
            continue
        if parsed.hostname not in LOCAL_HOSTS:
            out.append(u)
    return out


def assert_offline(page) -> None:
    ext = external_requests(page.requests_seen)
    assert not ext, f"requests left localhost: {ext[:10]}"


# Counts the script runs the page has seen: every time stApp's data-test-script-state becomes "running".
# It reads the mutation records (each one's old value), not only the state when the observer is called:
# a quick run (a button's rerun) can go running -> notRunning between two calls and would be missed.
_RUN_COUNTER_JS = """
(() => {
  window.__llmvizRuns = 0;
  let last = null;
  const see = (state) => {
    if (state === 'running' && last !== 'running') window.__llmvizRuns += 1;
    last = state;
  };
  new MutationObserver((records) => {
    for (const r of records) {  // the state before each change, in order
      if (r.type === 'attributes' && r.target.getAttribute('data-testid') === 'stApp') see(r.oldValue);
    }
    const app = document.querySelector('[data-testid="stApp"]');
    see(app ? app.getAttribute('data-test-script-state') : null);  // and the state now
  }).observe(document, {attributes: true, attributeOldValue: true, subtree: true, childList: true,
                        attributeFilter: ['data-test-script-state']});
})();
"""
IDLE_JS = '() => !!document.querySelector(\'[data-testid="stApp"][data-test-script-state="notRunning"]\')'


QUIET_MS = 400  # a page may rerun itself right after a run (query params, st.rerun); wait until it stays idle


def wait_idle(page, timeout: float = 120_000, start_timeout: float = 5_000) -> None:
    """Wait until a script run has started (since the last wait) and then finished.

    A run counts as finished when ``[data-testid="stApp"]`` has ``data-test-script-state="notRunning"``.
    If no new run starts within ``start_timeout`` ms (the action did not rerun the script), only the
    finished state is awaited. A run that the page starts by itself right after (query params,
    ``st.rerun``) is waited for too: the state must stay "notRunning" for ``QUIET_MS``."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    if page.evaluate("() => typeof window.__llmvizRuns") == "undefined":
        raise AssertionError("this page does not count its runs: make its context with conftest.new_context")
    seen = getattr(page, "runs_waited", 0)
    try:
        page.wait_for_function(f"() => (window.__llmvizRuns || 0) > {seen}", timeout=start_timeout)
    except Exception:  # noqa: BLE001 - playwright TimeoutError: no rerun happened
        pass
    deadline = time.time() + timeout / 1000
    while True:  # settled: not running, and no further run starts within a short quiet period
        page.wait_for_function(IDLE_JS, timeout=max(1_000, (deadline - time.time()) * 1000))
        runs = page.evaluate("() => window.__llmvizRuns || 0")
        page.wait_for_timeout(QUIET_MS)
        if page.evaluate("() => window.__llmvizRuns || 0") == runs and page.evaluate(IDLE_JS):
            break
        if time.time() > deadline:
            raise TimeoutError("the app kept rerunning")
    page.runs_waited = runs


def settle(page, timeout: float = 120_000) -> None:
    """Wait for the page to be idle when no new run is expected (e.g. after waiting for an element
    the run draws): like ``wait_idle`` but does not spend ``start_timeout`` waiting for a run to start."""
    wait_idle(page, timeout, start_timeout=300)


def open_app(page, app_url: str, path: str = "", query: str = "") -> None:
    page.runs_waited = 0  # a new document starts its run counter at 0
    page.goto(f"{app_url}/{path}{('?' + query) if query else ''}")
    wait_idle(page)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()
