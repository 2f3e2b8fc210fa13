"""The app in a real browser: loads offline, switches model in the sidebar, navigates."""

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle


def test_home_offline_and_switch_model(page, app_url):
    open_app(page, app_url)
    page.get_by_text("Loaded model: minilm").wait_for(timeout=60_000)
    assert page.get_by_text("6 × 12").first.is_visible()
    # Switch to smollm2 through the sidebar selectbox.
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="smollm2 — SmolLM2-135M-Instruct").click()
    page.get_by_text("Loaded model: smollm2").wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("30 × 9").first.is_visible()
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors


def test_every_page_opens_in_the_browser(page, app_url):
    from ui.registry import PAGES

    for p in PAGES:
        open_app(page, app_url, p.url)
        page.locator("h1").first.wait_for(timeout=60_000)
        no_exception(page)
    assert_offline(page)
