"""The bias page in Chromium: WEAT per layer with minilm, the encoder explanation on the template probe,
a hostile group term shown as text, offline."""

from __future__ import annotations

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle


def test_weat_then_templates_with_minilm(page, app_url):
    dialogs: list = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, app_url, "bias", "model=minilm&section=weat")
    page.get_by_text("effect size per layer").first.wait_for(timeout=240_000)
    page.get_by_text("Effect size d (selected layer)").first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 1
    page.get_by_text("Caveats: what these numbers").first.wait_for(timeout=10_000)
    # switch section: minilm has no LM head, so the page explains what works instead
    page.get_by_role("radio", name="Templates").click()
    page.get_by_text("needs a language-model head").first.wait_for(timeout=120_000)
    assert page.get_by_text("smollm2").first.is_visible()
    # a hostile word in the WEAT lists is drawn as text, never as HTML
    page.get_by_role("radio", name="WEAT / SEAT").click()
    wait_idle(page)
    box = page.locator("textarea").first
    box.fill("</script><img src=x onerror=alert(1)>\naster\nclover")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_text("effect size per layer").first.wait_for(timeout=240_000)
    assert page.locator("img[src='x']").count() == 0 and not dialogs
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors
