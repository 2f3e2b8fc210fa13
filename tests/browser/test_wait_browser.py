"""The browser wait itself (issue 12, finding 8): wait_idle returns only after a script run has started
and finished, so assertions never look at a page that has not run yet."""

import time

import pytest

from tests.browser.conftest import new_context, open_app, run_message, wait_idle


def test_wait_idle_sees_each_run_start_and_finish(page, app_url):
    open_app(page, app_url)
    runs = page.runs_seen
    assert runs >= 1, "no script run was seen ending"
    assert not page.run_open
    assert page.get_attribute('[data-testid="stApp"]', "data-test-script-state") == "notRunning"
    assert page.get_by_text("Loaded model: minilm").count() >= 1  # the page's content is there on return
    page.get_by_role("button", name="Next").first.click()  # a widget change reruns the script (a fragment)
    wait_idle(page)
    assert page.runs_seen > runs
    assert page.runs_waited == page.runs_seen
    assert page.get_by_text("Step 2 of").count() >= 1


# Keeps stApp's data-test-script-state at "notRunning" once it got there, as when React draws a quick
# run's "running" and "notRunning" in one render and the attribute never changes.
_FREEZE_SCRIPT_STATE_JS = """
(() => {
  const set = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (name === 'data-test-script-state' && this.getAttribute(name) === 'notRunning') return;
    return set.call(this, name, value);
  };
})();
"""


def test_wait_idle_waits_for_a_run_the_page_never_draws_as_running(browser, app_url):
    """Two CI failures: after a Next click wait_idle returned with the click's run uncounted, because
    the page never drew it as "running" (counting runs from the DOM attribute, then from every
    mutation record). Runs are counted from the server's messages: with the attribute frozen at
    "notRunning" the click's run is still waited for, and its step is there on return."""
    ctx = new_context(browser, viewport={"width": 1400, "height": 1000})
    try:
        ctx.add_init_script(_FREEZE_SCRIPT_STATE_JS)
        page = ctx.new_page()
        open_app(page, app_url)
        runs = page.runs_seen
        for step in (2, 3):
            page.get_by_role("button", name="Next").first.click()
            t0 = time.time()
            wait_idle(page)
            assert page.runs_seen > runs, "the click's run was not counted"
            runs = page.runs_seen
            assert page.get_by_text(f"Step {step} of").count() >= 1  # no auto-wait: there on return
            assert time.time() - t0 < 4.5, "waited out start_timeout: the run's end was not seen"
            assert page.get_attribute('[data-testid="stApp"]', "data-test-script-state") == "notRunning"
    finally:
        ctx.close()


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


def test_run_messages_are_read_from_the_servers_forward_msgs():
    """``run_message`` reads the ForwardMsg protobuf the server sends: each run starts with
    ``new_session`` and ends with ``script_finished`` (any status, a fragment's run included)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    start = ForwardMsg()
    start.new_session.page_script_hash = "h1"
    assert run_message(start.SerializeToString()) == "start"
    for status in (
        ForwardMsg.FINISHED_SUCCESSFULLY,  # 0: still sent, a oneof member
        ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
        ForwardMsg.FINISHED_EARLY_FOR_RERUN,
        ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    ):
        end = ForwardMsg()
        end.script_finished = status
        assert run_message(end.SerializeToString()) == "end", status
    delta = ForwardMsg()
    delta.delta.new_element.markdown.body = "script_finished"
    assert run_message(delta.SerializeToString()) is None
    assert run_message("a text frame") is None
    assert run_message(b"\xff\xff\xff") is None  # not a ForwardMsg
