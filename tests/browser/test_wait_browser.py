"""The browser wait itself (issue 12, finding 8): wait_idle returns only after a script run has started
and finished, so assertions never look at a page that has not run yet."""

import pytest

from tests.browser.conftest import new_context, open_app, wait_idle


def test_wait_idle_sees_each_run_start_and_finish(page, app_url):
    open_app(page, app_url)
    runs = page.evaluate("() => window.__llmvizRuns")
    assert runs >= 1, "no script run was seen starting"
    assert page.get_attribute('[data-testid="stApp"]', "data-test-script-state") == "notRunning"
    assert page.get_by_text("Loaded model: minilm").count() >= 1  # the page's content is there on return
    page.get_by_role("button", name="Next").first.click()  # a widget change reruns the script
    wait_idle(page)
    assert page.evaluate("() => window.__llmvizRuns") > runs
    assert page.runs_waited == page.evaluate("() => window.__llmvizRuns")
    assert page.get_by_text("Step 2 of").count() >= 1


def test_wait_idle_refuses_a_page_that_does_not_count_its_runs(browser, app_url):
    """A context made without the run counter would make wait_idle return on a page that has not run
    (it waited only for "notRunning"): it fails loudly instead; conftest.new_context adds the counter."""
    bare = browser.new_context()
    try:
        page = bare.new_page()
        page.goto(app_url)
        with pytest.raises(AssertionError, match="new_context"):
            wait_idle(page)
    finally:
        bare.close()
    counted = new_context(browser)
    try:
        page = counted.new_page()
        open_app(page, app_url)
        assert page.runs_waited >= 1
    finally:
        counted.close()
