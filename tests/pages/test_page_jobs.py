"""The work queue seen from the pages: a waiting session is told how many jobs are ahead, a job past its
time budget stops with a message (and keeps what it made), a new run of the same session cancels its
stale job but not other sessions' jobs, and heavy call sites go through the queue."""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from llmviz import jobs as J
from tests.fixtures.apptest_util import assert_ok, open_page, texts


@pytest.fixture
def queue(monkeypatch):
    """A fresh server queue with one slot for the test."""
    q = J.JobQueue(max_jobs=1, budget_s=60)
    monkeypatch.setattr(J, "_QUEUE", q)
    return q


def _heavy_script():
    import streamlit as st

    from ui.jobs import heavy

    with heavy("test"):
        st.write("ran")


def test_waiting_session_sees_jobs_ahead_then_runs(queue, monkeypatch):
    import streamlit as st

    blocker = queue.acquire(queue.submit("another-student"))
    queue.submit("third-student")  # queued before us
    shown = []
    real_info = st.info

    def spy(body, *a, **k):
        shown.append(str(body))
        if len(shown) == 2:  # both jobs ahead finish while we wait
            queue.release(blocker)
            for j in queue.jobs_of("third-student"):
                threading.Thread(target=lambda j=j: (queue.acquire(j), time.sleep(1.2), queue.release(j))).start()
        return real_info(body, *a, **k)

    monkeypatch.setattr(st, "info", spy)
    at = AppTest.from_function(_heavy_script, default_timeout=30).run()
    assert_ok(at)
    assert "2 job(s) ahead of you" in shown[0]
    assert any("1 job(s) ahead of you" in s for s in shown[2:])
    assert [m.value for m in at.markdown] == ["ran"] and not at.info  # the notice is gone once it runs
    assert queue.counts()["running"] == queue.counts()["waiting"] == 0


def _stale_script():
    import streamlit as st

    from llmviz.jobs import server_queue
    from ui.jobs import cancel_stale, owner

    cancel_stale()
    q = server_queue()
    if "job" not in st.session_state:  # first run: a job left running (as by a superseded run)
        st.session_state["job"] = q.acquire(q.submit(owner(), "stale"))
    st.write(st.session_state["job"].state)


def test_new_run_of_a_session_cancels_its_stale_job_only(queue):
    queue.max_jobs = 2
    other = queue.acquire(queue.submit("another-student"))
    at = AppTest.from_function(_stale_script, default_timeout=30).run()
    assert at.markdown[0].value == J.RUNNING
    at.run()
    assert at.markdown[0].value == J.CANCELLED and not other.cancelled
    with pytest.raises(J.JobCancelled):
        at.session_state["job"].check()  # the old run stops at its next progress point


def test_generation_past_the_time_budget_stops_with_a_message(queue, tiny_llama_dir, monkeypatch):
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "creative"})
    queue.budget_s = 0.0  # any job is over budget at its first check after the start
    at.slider(key="pg_max_creative").set_value(5).run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    assert any("ran longer than the 0 s" in e.value for e in at.error)
    (gen,) = at.session_state["pg_branches"]  # the stream is kept as a (stopped) branch
    assert len(gen.steps) < 5
    assert queue.counts()["running"] == 0


def test_pair_scoring_waits_in_the_queue(queue, tiny_mlm_dir):
    """The heavy call goes through the queue: with the only slot taken it waits, and starts when freed."""
    at = open_page("pages/bias.py", str(tiny_mlm_dir), query={"section": "pairs"})
    blocker = queue.acquire(queue.submit("another-student"))
    seen = []

    def free_later():
        while not queue.counts()["waiting"]:
            time.sleep(0.02)
        seen.append(queue.counts())
        time.sleep(0.3)
        queue.release(blocker)

    th = threading.Thread(target=free_later)
    th.start()
    at.button(key="bias_pairs_run").click().run()
    th.join(5)
    assert_ok(at)
    assert seen == [{"running": 1, "waiting": 1, "max_jobs": 1}]
    assert at.metric and "Stereotype preferred" in [m.label for m in at.metric]
    assert "ahead of you" not in texts(at)


def test_intervene_patching_waits_in_the_queue(queue, tmp_path):
    """The Intervene page's heavy runs go through the same queue (its single run_heavy call site)."""
    from tests.llmviz.interventions.test_interventions import _tiny_llama_big
    from tests.pages.test_page_intervene import CLEAN, CORRUPT, PAGE

    llama = _tiny_llama_big(tmp_path / "iv_llama")
    at = open_page(PAGE, str(llama), query={"section": "patching", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    blocker = queue.acquire(queue.submit("another-student"))
    seen = []

    def free_later():
        while not queue.counts()["waiting"]:
            time.sleep(0.02)
        seen.append(queue.counts())
        time.sleep(0.3)
        queue.release(blocker)

    th = threading.Thread(target=free_later, daemon=True)
    th.start()
    next(b for b in at.button if b.key == "iv_run_patch").click().run()
    th.join(5)
    assert_ok(at)
    assert seen == [{"running": 1, "waiting": 1, "max_jobs": 1}]
    assert "Checks: whole residual stream patched at each layer gives 1" in texts(at)
    assert queue.counts()["running"] == 0
