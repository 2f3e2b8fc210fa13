"""Intervene page in Chromium: patching runs on click and draws its heatmaps (English; 中文 in presenter
mode), direct logit attribution on SmolLM2 with its checks, nothing leaves localhost."""

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle


def test_patching_on_click_english(page, app_url):
    open_app(page, app_url, "intervene", "section=patching&model=minilm")
    page.get_by_text("Click Run patching").first.wait_for(timeout=120_000)
    assert page.locator(".js-plotly-plot").count() == 0  # nothing heavy before the click
    page.get_by_role("button", name="Run patching").click()
    wait_idle(page)
    page.get_by_text("Checks: whole residual stream patched at each layer gives 1").first.wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    no_exception(page)


def test_patching_chinese_presenter_mode(page, app_url):
    open_app(page, app_url, "intervene", "section=patching&model=minilm&lang=zh&presenter=true")
    page.get_by_text("干预：改动模型，观察结果").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="运行修补").click()
    wait_idle(page)
    page.get_by_text("检验：在每一层修补整个残差流得到 1").first.wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    assert page.get_by_text("要修补的位点").count() == 0  # presenter mode hides the advanced controls
    no_exception(page)


def test_dla_on_smollm2(page, app_url):
    open_app(page, app_url, "intervene", "section=dla&model=smollm2")
    page.get_by_role("button", name="Compute direct logit attribution").wait_for(timeout=480_000)
    page.get_by_role("button", name="Compute direct logit attribution").click()
    wait_idle(page, timeout=480_000)
    page.get_by_text("Checks: terms sum to the frozen-scale logit difference").first.wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    no_exception(page)
    assert_offline(page)


def test_steering_probe_result_shows_in_its_tab_after_the_click(page, app_url):
    """Steering -> "Run the probe before and after": the tabs used to jump back to "Generations side by
    side", so the result was seen only after clicking its tab again."""
    open_app(page, app_url, "intervene", "section=steering&model=smollm2")
    page.get_by_role("button", name="Compute the direction").wait_for(timeout=480_000)
    page.get_by_role("button", name="Compute the direction").click()
    wait_idle(page, timeout=480_000)
    page.get_by_role("tab", name="Bias probe before/after").click()
    wait_idle(page)
    page.get_by_role("button", name="Run the probe before and after").click()
    wait_idle(page, timeout=480_000)
    result = page.get_by_text("Before:").first
    result.wait_for(timeout=240_000)
    assert result.is_visible()  # in the open tab, without clicking the tab again
    assert page.get_by_role("tab", name="Bias probe before/after").get_attribute("aria-selected") == "true"
    no_exception(page)
