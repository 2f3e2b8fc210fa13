"""Issue 12, finding 2 in a real browser: markdown images and HTML tags typed into every text box, or
passed in every deep-link parameter, are shown as text; a local HTTP listener counts the requests the
viewer's browser makes to it: 0."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import quote

import pytest

from tests.browser.conftest import _free_port, no_exception, open_app, wait_idle

# (url path, query) views whose text boxes are filled; the tiny causal LM makes every LM section run fast.
VIEWS = [
    ("", "section=tour"),
    ("playground", "preset=qa"),
    ("playground", "preset=fill_mask"),
    ("attention", ""),
    ("positional", "section=ablation"),
    ("bias", "section=templates"),
    ("bias", "section=pairs"),
    ("bias", "section=counterfactual"),
    ("bias", "section=weat"),
    ("explain", "section=attribution"),
    ("explain", "section=logit_lens"),
    ("training", "preset=memorization"),
]
PARAMS = ("text", "target", "text_b", "preset", "section", "view", "layer", "head", "step", "lang", "d_model")


@pytest.fixture(scope="module")
def probe():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port, hits
    server.shutdown()


def _payload(port: int) -> str:
    return f"![p](http://127.0.0.1:{port}/probe.png) <img src=http://127.0.0.1:{port}/x>"


def _fill_every_box(page, payload: str) -> int:
    n = 0
    boxes = page.locator('[data-testid="stTextInput"] input, [data-testid="stTextArea"] textarea')
    for i in range(boxes.count()):
        box = boxes.nth(i)
        if not box.is_visible() or not box.is_editable():
            continue
        box.fill(payload)
        box.press("Control+Enter" if box.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
        wait_idle(page, timeout=180_000)
        n += 1
        boxes = page.locator('[data-testid="stTextInput"] input, [data-testid="stTextArea"] textarea')
    return n


def test_typed_markup_fetches_nothing(page, app_url, probe, tiny_llama_dir):
    port, hits = probe
    payload = _payload(port)
    filled = 0
    for path, query in VIEWS:
        open_app(page, app_url, path, f"model={quote(str(tiny_llama_dir))}&{query}")
        filled += _fill_every_box(page, payload)
        no_exception(page)
    # the sidebar's folder box and its Load button
    open_app(page, app_url)
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option").filter(has_text="folder").first.click()
    wait_idle(page)
    filled += _fill_every_box(page, payload)
    page.locator('[data-testid="stSidebar"] button').filter(has_text="Load").first.click()
    wait_idle(page)
    page.wait_for_timeout(1000)
    assert filled >= 15, filled
    assert hits == [], hits


def test_deep_link_markup_fetches_nothing(page, app_url, probe, tiny_llama_dir):
    port, hits = probe
    payload = quote(_payload(port))
    open_app(page, app_url, "", f"model={payload}")
    no_exception(page)
    for path in ("", "playground", "attention", "positional", "bias", "explain", "training"):
        query = "&".join(f"{k}={payload}" for k in PARAMS)
        open_app(page, app_url, path, f"model={quote(str(tiny_llama_dir))}&{query}")
        no_exception(page)
    page.wait_for_timeout(1000)
    assert hits == [], hits
