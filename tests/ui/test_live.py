"""Results as they come (ui.jobs): the Throttle draws the first progress point at once, then at most every
interval (longer when a draw is costly: at most its budget of the time), plus the last; run_on_click(live=...)
draws the partial values with the "partial" caption, the final result replaces them, and a failed or stopped run
keeps what it finished until the next run."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from llmviz import jobs as J
from ui.jobs import Throttle


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_draws_the_first_then_at_most_every_interval_plus_the_last():
    clock, drawn = Clock(), []
    th = Throttle(interval=1.5, budget=0.05, clock=clock)
    for i in range(1, 101):  # a progress point every 0.1 s, 10 s in all
        clock.now = 0.1 * i
        th(lambda d, n: drawn.append((round(clock.now, 1), d)), i, 100)
    times = [t for t, _ in drawn]
    assert drawn[0] == (0.1, 1) and drawn[-1] == (10.0, 100)
    gaps = [b - a for a, b in zip(times, times[1:-1])]
    assert all(g >= 1.5 - 1e-9 for g in gaps) and len(drawn) == 2 + len(gaps)
    assert len(drawn) == 8  # 0.1, 1.6, 3.1, 4.6, 6.1, 7.6, 9.1 and the last


def test_a_costly_draw_waits_longer_and_a_single_point_is_not_drawn():
    clock, drawn = Clock(), []
    th = Throttle(interval=1.5, budget=0.05, clock=clock)

    def slow(done, total):  # 0.2 s a draw: the next waits 0.2 / 0.05 = 4 s after it
        drawn.append((clock.now, done))
        clock.now += 0.2

    for i in range(1, 101):
        clock.now = max(clock.now, 0.1 * i)
        th(slow, i, 100)
    starts = [t for t, _ in drawn]
    assert drawn[0][1] == 1 and drawn[-1][1] == 100 and len(drawn) == 4  # 0.1, ~4.3, ~8.5 and the last
    assert all(b - a >= 4.2 - 1e-9 for a, b in zip(starts, starts[1:-1]))  # a draw: at most 0.2 / 4.2 of the time
    once = Throttle(clock=Clock())
    assert not once.due(1, 1)  # a run reporting once shows its final result only


def _live_script():
    import numpy as np
    import streamlit as st

    from llmviz.errors import LlmvizError
    from ui.jobs import run_on_click

    def work(n, fail_at=None, progress=None):
        vals = np.full(n, np.nan)  # filled in place, as patching does
        for i in range(n):
            vals[i] = i
            if i == fail_at:
                raise LlmvizError("broke")
            progress(i + 1, n, vals)
        return vals

    def live(done, total, vals, key):
        st.write(f"live {done}/{total}: " + ",".join("-" if np.isnan(v) else f"{v:g}" for v in vals))

    res = run_on_click(
        "t_run",
        "Run",
        work,
        4,
        fail_at=st.session_state.get("fail"),
        inputs=[],
        kind="test",
        progress="progress",
        live=live,
    )
    if res is not None:
        st.write("final " + ",".join(f"{v:g}" for v in res))


@pytest.fixture
def queue(monkeypatch):
    q = J.JobQueue(max_jobs=1, budget_s=60)
    monkeypatch.setattr(J, "_QUEUE", q)
    return q


def _shown(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def test_run_on_click_draws_partials_and_keeps_them_when_a_run_fails(queue):
    at = AppTest.from_function(_live_script, default_timeout=30)
    at.session_state["fail"] = 2
    at.run()
    at.button(key="t_run").click().run()
    assert not at.exception
    assert "live 2/4: 0,1,-,-" in _shown(at) and "Partial result: 2 of 4 done." in _shown(at)
    assert [e.value for e in at.error] == ["broke"]
    at.run()  # a later rerun without a click: what finished stays
    assert "live 2/4: 0,1,-,-" in _shown(at) and "Partial result: 2 of 4 done." in _shown(at)
    at.session_state["fail"] = None
    at.button(key="t_run").click().run()  # the next run replaces it; its final result replaces its partials
    assert _shown(at) == ["final 0,1,2,3"]
    at.run()
    assert _shown(at) == ["final 0,1,2,3"]
