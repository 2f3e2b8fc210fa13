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


def test_run_counter_sees_a_run_that_starts_and_ends_between_two_looks(browser):
    """A quick rerun (a button click) can set "running" and then "notRunning" before the counter's
    observer is called; counting from the state at call time missed it (a CI failure of the test
    above: the click's run was not counted). The counter reads each change's old value."""
    ctx = new_context(browser)
    try:
        page = ctx.new_page()
        page.set_content('<div data-testid="stApp" data-test-script-state="notRunning"></div>')
        page.evaluate(
            """() => new Promise((done) => {
              const app = document.querySelector('[data-testid="stApp"]');
              app.setAttribute('data-test-script-state', 'running');  // one task: no observer call between
              app.setAttribute('data-test-script-state', 'notRunning');
              setTimeout(done, 50);
            })"""
        )
        assert page.evaluate("() => window.__llmvizRuns") == 1
        page.evaluate(
            """() => new Promise((done) => {
              const app = document.querySelector('[data-testid="stApp"]');
              for (let i = 0; i < 3; i++) {
                app.setAttribute('data-test-script-state', 'running');
                app.setAttribute('data-test-script-state', 'notRunning');
              }
              app.setAttribute('data-test-script-state', 'running');
              setTimeout(done, 50);
            })"""
        )
        assert page.evaluate("() => window.__llmvizRuns") == 5
    finally:
        ctx.close()
