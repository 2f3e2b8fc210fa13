"""Explain page in Chromium: token colours render, hostile text stays inert, nothing leaves localhost."""

from urllib.parse import quote

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle

XSS = "</script><script>alert(1)</script> <img src=x onerror=alert(2)> a guitar"


def _token_frame(page):
    for frame in page.frames:
        try:
            if frame.locator("span.tok").count() > 0:
                return frame
        except Exception:  # noqa: BLE001 - frames can detach while the app reruns
            continue
    return None


def test_explain_token_colours_and_xss_inert(page, app_url):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, app_url, "explain", f"text={quote(XSS)}&section=attribution")
    page.locator(".st-key-ex_attr_start button").first.click()  # heavy work starts on a click
    page.get_by_text("Completeness holds").first.wait_for(timeout=120_000)
    wait_idle(page)
    frame = None
    for _ in range(40):
        frame = _token_frame(page)
        if frame is not None:
            break
        page.wait_for_timeout(500)
    assert frame is not None, "no coloured token view rendered"
    spans = frame.locator("span.tok")
    n = spans.count()
    assert n >= 5 * 10  # five methods × (at least) ten tokens
    colours = {spans.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(n)}
    assert any(c.startswith("rgba(214, 39, 40") for c in colours), colours  # red: raises the target
    text = frame.locator("body").inner_text()
    assert "<" in text and "script" in text  # the markup is shown as text
    assert frame.locator("img").count() == 0 and frame.locator("script").count() == 0
    assert page.locator("img[src='x']").count() == 0
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the method × token heatmap
    assert not dialogs, dialogs
    no_exception(page)
    assert_offline(page)
