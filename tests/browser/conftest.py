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
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from google.protobuf.message import DecodeError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

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


@contextmanager
def serve(args: list[str], port: int, env: dict, stdout=subprocess.DEVNULL, host: str = "127.0.0.1"):
    """Run ``python <args>`` (a Streamlit server on ``port``) from the checkout; yield its base URL once it
    answers its health check (the test fails after 90 s), and stop it afterwards."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT)
    try:
        if not wait_healthy(f"http://127.0.0.1:{port}", 90):
            pytest.fail("streamlit did not start within 90 s")
        yield f"http://{host}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def streamlit_args(app: Path, port: int) -> list[str]:
    return ["-m", "streamlit", "run", str(app), "--server.port", str(port)] + [
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]


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
    with serve(streamlit_args(ROOT / "app.py", port), port, env, stdout=log) as url:
        yield url


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
    context.on("page", count_runs)
    return context


@pytest.fixture
def page(browser):
    """A fresh page whose every request URL is recorded in ``page.requests_seen``."""
    context = new_context(browser, viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
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


def run_message(payload: bytes | str) -> str | None:
    """What a websocket frame from the server says of script runs: "start" (``new_session``, sent as
    each run, a fragment's included, begins), "end" (``script_finished``, whatever its status), or None."""
    if not isinstance(payload, (bytes, bytearray)):
        return None
    try:
        kind = ForwardMsg.FromString(bytes(payload)).WhichOneof("type")
    except DecodeError:
        return None
    return {"new_session": "start", "script_finished": "end"}.get(kind)


def count_runs(page) -> None:
    """Count the script runs that end on this page (``page.runs_seen``), from the server's messages;
    ``page.run_open`` is True between a run's start and its end, ``page.run_messages`` counts both.

    The DOM's ``data-test-script-state`` missed quick runs: a Next click (a fragment run) drew no
    "running" on a loaded machine, so no attribute ever changed (two CI failures of
    test_wait_idle_sees_each_run_start_and_finish, the second with a counter that read every mutation
    record). The server sends ``new_session`` and ``script_finished`` for every run. The counts go on
    over navigations (each new document opens a new websocket)."""
    page.runs_seen = 0
    page.runs_waited = 0
    page.run_open = False
    page.run_messages = 0

    def on_frame(payload) -> None:
        said = run_message(payload)
        if said is None:
            return
        page.run_messages += 1
        page.run_open = said == "start"
        if said == "end":
            page.runs_seen += 1

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))


IDLE_JS = '() => !!document.querySelector(\'[data-testid="stApp"][data-test-script-state="notRunning"]\')'


QUIET_MS = 400  # a page may rerun itself right after a run (query params, st.rerun); wait until it stays idle


def _until(page, ready, timeout_ms: float, step_ms: int = 25) -> bool:
    """Poll ``ready()`` (it reads counts that Playwright updates while a call waits) until it is true
    (True) or ``timeout_ms`` passes (False)."""
    deadline = time.time() + timeout_ms / 1000
    while not ready():
        if time.time() > deadline:
            return False
        page.wait_for_timeout(step_ms)
    return True


def wait_idle(page, timeout: float = 120_000, start_timeout: float = 5_000) -> None:
    """Wait until a script run has ended since the last wait, and the app has settled.

    Runs are counted from the server's messages (``count_runs``). If no run ends within
    ``start_timeout`` ms (the action did not rerun the script), only settling is awaited. Settled: no
    run open, ``[data-testid="stApp"]`` drawn as ``data-test-script-state="notRunning"``, and no run
    starts or ends for ``QUIET_MS`` (a page may rerun itself right after: query params, ``st.rerun``)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    if not hasattr(page, "runs_seen"):
        raise AssertionError("this page does not count its runs: make its context with conftest.new_context")
    seen = page.runs_waited
    _until(page, lambda: page.runs_seen > seen, start_timeout)
    deadline = time.time() + timeout / 1000

    def idle() -> bool:
        return not page.run_open and page.evaluate(IDLE_JS)

    while True:
        if not _until(page, idle, max(1_000, (deadline - time.time()) * 1000), step_ms=50):
            raise TimeoutError(f"the app did not finish its run within {timeout / 1000:.0f} s")
        said = page.run_messages
        page.wait_for_timeout(QUIET_MS)
        if page.run_messages == said and idle():
            break
        if time.time() > deadline:
            raise TimeoutError("the app kept rerunning")
    page.runs_waited = page.runs_seen


def settle(page, timeout: float = 120_000) -> None:
    """Wait for the page to be idle when no new run is expected (e.g. after waiting for an element
    the run draws): like ``wait_idle`` but does not spend ``start_timeout`` waiting for a run to start."""
    wait_idle(page, timeout, start_timeout=300)


def open_app(page, app_url: str, path: str = "", query: str = "") -> None:
    page.goto(f"{app_url}/{path}{('?' + query) if query else ''}")
    wait_idle(page)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()
