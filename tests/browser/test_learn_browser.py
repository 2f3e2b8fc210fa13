"""The Learn page in a real browser: the guided tour from the first to the last step, a tour step's
live view with the sidebar controls, presenter mode's larger base font, the language switch —
all offline."""

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle
from ui.learn_content import TOUR

N = len(TOUR)
ROOT_FONT = "() => parseFloat(getComputedStyle(document.documentElement).fontSize)"
TEXT_FONT = """() => parseFloat(getComputedStyle(
    document.querySelector('[data-testid="stMain"] [data-testid="stMarkdownContainer"] p')).fontSize)"""


def _click(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    wait_idle(page)


def test_tour_walks_from_first_to_last_step(page, app_url):
    open_app(page, app_url, "", "section=tour")
    page.get_by_text(f"Step 1 of {N}").wait_for(timeout=60_000)
    for i in range(2, N + 1):
        page.locator(".st-key-home_tour_next button").first.click()
        page.get_by_text(f"Step {i} of {N}").wait_for(timeout=30_000)
        no_exception(page)
        assert f"step={i}" in page.url  # the URL follows, so a reload or a copied link keeps the step
    wait_idle(page)
    page.get_by_text("That was the last step").wait_for()
    assert page.locator(".st-key-home_tour_next").count() == 0  # no Next after the last step
    _click(page, "home_tour_prev")
    page.get_by_text(f"Step {N - 1} of {N}").wait_for()
    # A step's live view: the page opens with the step's parameters, the sidebar carries the
    # question and moves on to the next step's view.
    open_app(page, app_url, "", "section=tour&step=5")
    _click(page, "home_tour_open")
    page.wait_for_url("**/attention?**view=layer**", timeout=60_000)
    wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text(f"step 5 of {N}").wait_for(timeout=60_000)
    no_exception(page)
    _click(page, "tour_sb_next")
    page.wait_for_url("**/positional?**section=sinusoidal**", timeout=60_000)
    wait_idle(page)
    sidebar.get_by_text(f"step 6 of {N}").wait_for(timeout=60_000)
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors


def test_presenter_mode_increases_the_base_font_size(page, app_url):
    open_app(page, app_url, "", "section=formulas")  # KaTeX fonts come from the app, not a CDN
    page.get_by_text("What each symbol means").first.wait_for(timeout=60_000)
    page.locator(".katex").nth(4).wait_for(timeout=30_000)  # formulas and symbols typeset
    root, text = page.evaluate(ROOT_FONT), page.evaluate(TEXT_FONT)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Classroom").click()
    sidebar.get_by_text("Presenter mode").click()
    wait_idle(page)
    page.wait_for_function(f"() => ({ROOT_FONT})() > {root}", timeout=30_000)
    assert page.evaluate(ROOT_FONT) >= 1.3 * root
    assert page.evaluate(TEXT_FONT) >= 1.3 * text
    assert "presenter=true" in page.url
    no_exception(page)
    # Off again: back to the normal size.
    sidebar.get_by_text("Presenter mode").click()
    wait_idle(page)
    page.wait_for_function(f"() => ({ROOT_FONT})() == {root}", timeout=30_000)
    assert_offline(page)


def test_language_switch_translates_navigation_and_cards(page, app_url):
    open_app(page, app_url, "", "section=faq")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("中文").click()
    wait_idle(page)
    page.get_by_text("什么是过拟合？").first.wait_for(timeout=60_000)
    assert sidebar.get_by_text("首页 / 学习").first.is_visible()  # page titles in the navigation
    assert sidebar.get_by_text("训练实验室").first.is_visible()
    assert "lang=zh" in page.url
    # The language stays on after following a card's link to another page.
    page.get_by_text("为最小对打分").first.click()
    page.wait_for_url("**/bias?**section=pairs**", timeout=60_000)
    wait_idle(page)
    assert sidebar.get_by_text("首页 / 学习").first.is_visible()
    assert page.locator("text=⟦").count() == 0
    no_exception(page)
    assert_offline(page)
