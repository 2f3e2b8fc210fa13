"""The server-wide work queue: FIFO order, one job per owner, bounded concurrency, cancellation of
queued and running jobs, time budget, position reporting, configuration from the environment."""

import threading
import time

import pytest

from llmviz import jobs as J
from llmviz.errors import LlmvizError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _start_in_thread(q, job, log, name, hold: threading.Event | None = None):
    """Acquire ``job`` in a thread, log ``name`` when it runs, keep the slot until ``hold`` is set."""

    def body():
        try:
            q.acquire(job, poll_s=0.01)
        except J.JobCancelled:
            log.append(f"{name}:cancelled")
            return
        log.append(name)
        if hold is not None:
            hold.wait(5)
        q.release(job)

    th = threading.Thread(target=body, daemon=True)
    th.start()
    return th


def test_jobs_start_in_arrival_order_one_at_a_time():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    first = q.submit("a")
    q.acquire(first)
    log, threads = [], []
    for name in "bcde":
        threads.append(_start_in_thread(q, q.submit(name), log, name))
        time.sleep(0.03)  # arrival order b, c, d, e
    assert log == [] and q.counts() == {"running": 1, "waiting": 4, "max_jobs": 1}
    q.release(first)
    for th in threads:
        th.join(5)
    assert log == list("bcde")


def test_position_reports_jobs_ahead():
    q = J.JobQueue(max_jobs=2, budget_s=60)
    running = [q.submit(o) for o in "ab"]
    for j in running:
        q.acquire(j)
    waiting = [q.submit(o) for o in "cde"]
    assert [j.ahead() for j in waiting] == [2, 3, 4]  # 2 running + those queued before
    assert all(j.ahead() == 0 for j in running)
    waiting[0].cancel()
    assert [j.ahead() for j in waiting[1:]] == [2, 3]
    q.release(running[0])
    assert waiting[1].ahead() == 1  # one slot free: d is first in line (it starts when it asks)
    q.acquire(waiting[1])
    assert waiting[2].ahead() == 2


def test_on_wait_is_told_the_position_while_waiting():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    blocker = q.submit("a")
    q.acquire(blocker)
    q.submit("b")
    me = q.submit("c")
    seen = []

    def on_wait(k):
        seen.append(k)
        if len(seen) == 3:
            q.release(blocker)  # the job ahead of b finishes; b starts; then b finishes
        if len(seen) == 4:
            for j in q.jobs_of("b"):
                q.acquire(j)
                q.release(j)

    q.acquire(me, on_wait, poll_s=0.01)
    assert seen[:3] == [2, 2, 2] and me.state == J.RUNNING and seen[-1] in (1, 2)


def test_concurrency_is_bounded():
    q = J.JobQueue(max_jobs=2, budget_s=60)
    lock, active, peak = threading.Lock(), [0], [0]

    def work(owner):
        with q.job(owner, "x") as job:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            for _ in range(5):
                job.check()
                time.sleep(0.01)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work, args=(f"user{i}",)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert peak[0] == 2 and q.counts()["running"] == q.counts()["waiting"] == 0


def test_a_new_job_of_the_same_owner_cancels_the_old_one_queued_or_running():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    running = q.submit("alice")
    q.acquire(running)
    other = q.submit("bob")
    again = q.submit("alice")  # alice reruns her page: her running job is cancelled
    assert running.cancelled and not other.cancelled
    with pytest.raises(J.JobCancelled):
        running.check()  # ... at its next progress point
    q.release(running)
    queued = q.submit("bob")  # bob's queued job is replaced, not duplicated
    assert other.cancelled and other not in q.jobs_of("bob")
    with pytest.raises(J.JobCancelled):
        q.acquire(other)
    q.acquire(again)  # alice arrived before bob's replacement
    assert queued.ahead() == 1


def test_cancelling_a_queued_job_wakes_its_waiter_and_frees_the_line():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    blocker = q.submit("a")
    q.acquire(blocker)
    waiting, behind = q.submit("b"), q.submit("c")
    log = []
    th = _start_in_thread(q, waiting, log, "b")
    time.sleep(0.05)
    assert q.cancel_owner("b") == 1
    th.join(2)
    assert log == ["b:cancelled"] and behind.ahead() == 1


def test_cancelling_a_running_job_stops_it_at_its_next_progress_check():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    steps = []
    started = threading.Event()
    outcome = []

    def heavy(progress):
        for i in range(500):
            progress(i)
            time.sleep(0.005)

    def body():
        try:
            with q.job("a", "train") as job:
                started.set()
                heavy(job.wrap(steps.append))
        except J.JobCancelled:
            outcome.append("cancelled")

    th = threading.Thread(target=body)
    th.start()
    started.wait(2)
    time.sleep(0.05)
    q.cancel_owner("a")
    th.join(5)
    assert outcome == ["cancelled"] and 0 < len(steps) < 500
    assert q.counts()["running"] == 0  # the slot came back


def test_time_budget_raises_with_a_message():
    clock = Clock()
    q = J.JobQueue(max_jobs=1, budget_s=10, clock=clock)
    job = q.submit("a")
    clock.now = 100.0  # time spent waiting does not count
    q.acquire(job)
    clock.now = 109.0
    job.check()
    clock.now = 110.5
    with pytest.raises(J.JobTimeout, match="10 s") as info:
        job.check()
    assert isinstance(info.value, LlmvizError) and info.value.budget_s == 10
    q.release(job)
    nxt = q.submit("b")
    q.acquire(nxt)  # the slot is free again
    assert nxt.state == J.RUNNING


def test_on_wait_raising_cancels_the_job():
    """Streamlit raises its stop exception inside the waiting notice when the run is stopped."""
    q = J.JobQueue(max_jobs=1, budget_s=60)
    q.acquire(q.submit("a"))
    me = q.submit("b")

    class Stop(BaseException):
        pass

    def on_wait(k):
        raise Stop

    with pytest.raises(Stop):
        q.acquire(me, on_wait)
    assert me.cancelled and q.counts()["waiting"] == 0


def test_iterate_checks_before_each_item():
    q = J.JobQueue(max_jobs=1, budget_s=60)
    job = q.acquire(q.submit("a"))
    got = []
    with pytest.raises(J.JobCancelled):
        for x in job.iterate(range(10)):
            got.append(x)
            if x == 3:
                job.cancel()
    assert got == [0, 1, 2, 3]


def test_configuration_from_environment(monkeypatch):
    monkeypatch.setenv("LLMVIZ_MAX_JOBS", "3")
    monkeypatch.setenv("LLMVIZ_JOB_BUDGET_S", "42")
    q = J.JobQueue()
    assert q.max_jobs == 3 and q.budget_s == 42
    monkeypatch.delenv("LLMVIZ_MAX_JOBS")
    monkeypatch.setattr(J.os, "cpu_count", lambda: 2)
    assert J.default_max_jobs() == 1
    monkeypatch.setattr(J.os, "cpu_count", lambda: 16)
    assert J.default_max_jobs() == 8
    monkeypatch.setenv("LLMVIZ_MAX_JOBS", "zero")
    with pytest.raises(LlmvizError, match="LLMVIZ_MAX_JOBS"):
        J.default_max_jobs()
    monkeypatch.setenv("LLMVIZ_MAX_JOBS", "0")
    with pytest.raises(LlmvizError, match="above 0"):
        J.default_max_jobs()


def _own_nice() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_heavy_job_runs_at_lower_priority_and_threads_it_starts_inherit_it():
    """A running heavy job lowers its thread's CPU priority (nice is per thread on Linux), threads it
    starts inside (e.g. torch's OpenMP workers) inherit it, and light threads keep theirs."""
    seen = {}

    def heavy_thread():
        seen["before"] = _own_nice()
        with J.lowered_priority(5) as applied:
            seen["applied"] = applied
            seen["inside"] = _own_nice()
            child = threading.Thread(target=lambda: seen.__setitem__("child", _own_nice()))
            child.start()
            child.join()
        seen["after"] = _own_nice()

    light_before = _own_nice()
    t = threading.Thread(target=heavy_thread)
    t.start()
    t.join()
    assert seen["applied"] is True
    assert seen["inside"] == min(19, seen["before"] + 5)
    assert seen["child"] == seen["inside"]  # inherited by threads started during the job
    assert _own_nice() == light_before  # other threads unchanged
    assert seen["after"] in (seen["before"], seen["inside"])  # restored where the OS allows it


def test_heavy_nice_is_configurable_and_checked(monkeypatch):
    monkeypatch.delenv("LLMVIZ_HEAVY_NICE", raising=False)
    assert J.heavy_nice() == J.HEAVY_NICE == 5
    monkeypatch.setenv("LLMVIZ_HEAVY_NICE", "0")
    assert J.heavy_nice() == 0
    with J.lowered_priority() as applied:
        assert applied is False
    for bad in ("-1", "20", "low"):
        monkeypatch.setenv("LLMVIZ_HEAVY_NICE", bad)
        with pytest.raises(LlmvizError, match="LLMVIZ_HEAVY_NICE must be a whole number from 0 to 19"):
            J.heavy_nice()


def test_page_heavy_block_runs_at_lower_priority(monkeypatch):
    """ui.jobs.heavy (what every page's heavy work goes through) lowers the priority for its block."""
    from ui import jobs as UJ

    monkeypatch.setattr(J, "_QUEUE", J.JobQueue(max_jobs=1, budget_s=60))
    seen = {}

    def run():
        seen["before"] = _own_nice()
        with UJ.heavy("generate"):
            seen["inside"] = _own_nice()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen["inside"] == min(19, seen["before"] + J.HEAVY_NICE)


# ---------------------------------------------------------------- threads per job
def test_choose_threads_shares_the_free_cores():
    from llmviz.threads import choose_threads

    assert choose_threads(2, running=1, busy_other=0.0) == 2  # a quiet machine: every core
    assert choose_threads(2, running=1, busy_other=2.0) == 1  # two other heavy jobs: one thread, never 0
    assert choose_threads(2, running=2, busy_other=0.0) == 1  # two jobs of this server share the cores
    assert choose_threads(16, running=2, busy_other=4.0) == 6
    assert choose_threads(16, running=1, busy_other=0.3) == 16
    assert choose_threads(2, running=1, busy_other=0.6) == 2  # a browser beside the server: keep both cores
    assert choose_threads(2, running=1, busy_other=1.0) == 1  # one other heavy job


def test_busy_elsewhere_sees_another_process_and_not_this_one():
    import subprocess
    import sys

    from llmviz.threads import busy_elsewhere

    t0 = time.process_time()
    while time.process_time() - t0 < 0.05:  # this process busy: not counted
        pass
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        seen = max(busy_elsewhere(0.3) for _ in range(2))
    finally:
        spinner.kill()
        spinner.wait()
    assert seen > 0.6  # one core spun by the child (other load can only add)


def test_job_threads_sets_and_restores_in_the_calling_thread_only(monkeypatch):
    import torch

    from llmviz import threads as jobs

    monkeypatch.delenv("LLMVIZ_THREADS", raising=False)
    monkeypatch.setattr(jobs, "_recent_busy", lambda: 5.0)  # a machine busier than its cores
    before = torch.get_num_threads()
    seen = {}

    def worker():
        with jobs.job_threads(running=1) as n:
            seen["n"], seen["inside"] = n, torch.get_num_threads()
        seen["after"] = torch.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["n"] == 1 and seen["inside"] == 1
    assert torch.get_num_threads() == before  # the main thread's count is its own
    monkeypatch.setenv("LLMVIZ_THREADS", "3")
    with jobs.job_threads() as n:
        assert n == 3 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_recent_busy_measures_since_the_last_call_without_waiting(monkeypatch):
    import subprocess
    import sys

    from llmviz import threads as T

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        T._BUSY[:] = [0.0, -1e9]
        T._LAST[:] = [T._snapshot()]
        time.sleep(0.4)  # the child spins through this window

        def no_wait(_s):
            raise AssertionError("waited although a window since the last call was there")

        monkeypatch.setattr(T.time, "sleep", no_wait)
        assert T._recent_busy() > 0.5
    finally:
        spinner.kill()
        spinner.wait()
        T._BUSY[:] = [0.0, -1e9]
