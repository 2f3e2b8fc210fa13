"""The positional-encoding page in Chromium with both bundled models: figures drawn, offline, safe text."""

from __future__ import annotations

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle

HOSTILE = "</script><img src=x onerror=alert(1)> dog chased **cat**"


def _plots(page) -> int:
    return page.locator(".js-plotly-plot").count()


def test_sinusoidal_then_ablation_with_minilm(page, app_url):
    dialogs: list = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, app_url, "positional", "model=minilm&section=sinusoidal&d_model=16&max_len=40&base=100")
    page.get_by_text("depends on the distance only").first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").nth(3).wait_for(state="attached", timeout=30_000)
    if __import__("os").environ.get("POS_SHOTS"):
        page.screenshot(path="/tmp/pos_sin.png", full_page=True)
    assert _plots(page) >= 4
    assert page.locator(".katex").count() >= 4  # st.latex formulas beside the views
    page.get_by_text("Without positions", exact=True).click()
    page.get_by_text("bag of words").first.wait_for(timeout=60_000)
    box = page.get_by_label("Sentence", exact=True).and_(page.get_by_test_id("stTextInputField"))
    box.fill(HOSTILE)
    box.press("Enter")
    code = page.locator('[data-testid="stCode"]').filter(has_text="onerror")
    code.first.wait_for(timeout=60_000)  # the shuffled hostile sentence, shown literally
    wait_idle(page)
    if __import__("os").environ.get("POS_SHOTS"):
        page.screenshot(path="/tmp/pos_abl.png", full_page=True)
    assert "**cat**" in code.first.inner_text() and "</script>" in code.first.inner_text()
    page.get_by_text("sees a bag of words").first.wait_for(timeout=60_000)
    assert page.locator("img[src='x']").count() == 0 and not dialogs
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors


def test_rope_section_with_smollm2(page, app_url):
    open_app(page, app_url, "positional", "model=smollm2&section=rope")
    page.get_by_text("rotary embedding agrees").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_text("depends only on the relative distance").first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").nth(3).wait_for(state="attached", timeout=60_000)  # plotly loads lazily
    assert _plots(page) >= 4
    if __import__("os").environ.get("POS_SHOTS"):
        page.screenshot(path="/tmp/pos_rope.png", full_page=True)
    no_exception(page)
    assert_offline(page)
