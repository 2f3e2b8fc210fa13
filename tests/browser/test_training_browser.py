"""Training lab in a real browser: the loss chart updates while the model trains, and Stop stops it."""

import re

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle

STEP = re.compile(r"Training… step (\d+) / (\d+)")


def _step(page) -> int:
    text = page.locator('[data-testid="stProgress"]').first.inner_text()
    m = STEP.search(text)
    return int(m.group(1)) if m else -1


def test_loss_chart_updates_during_training_and_stop_keeps_curves(page, app_url):
    open_app(page, app_url, "training", "preset=overfit")
    page.get_by_text("Press Train to start").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(STEP).first.wait_for(timeout=60_000)
    first = _step(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    count = """() => { const t = document.querySelector('.js-plotly-plot .scatterlayer .trace');
                       return t ? t.querySelectorAll('path.point').length : 0; }"""
    page.wait_for_function(f"() => ({count})() >= 1", timeout=60_000)  # the chart element can come before its points
    before = page.evaluate(count)
    # a later evaluation is drawn while training continues: the training-loss curve gains points
    page.wait_for_function(f"() => ({count})() > {before}", timeout=60_000)
    assert _step(page) > first
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text(re.compile(r"Stopped by you at step \d+")).wait_for(timeout=60_000)
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)  # the curves so far are kept
    page.get_by_role("button", name="Stop", exact=True).click()  # any later rerun keeps them too
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    assert page.get_by_text(re.compile(r"Stopped by you at step \d+")).count() >= 1
    no_exception(page)
    assert_offline(page)
