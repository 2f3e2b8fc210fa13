"""Page side of the server-wide work queue (llmviz/jobs.py), and the one way pages run heavy work:
:func:`run_on_click` (start on a click with the estimate, wait in the queue, progress and Stop, the result
kept for this session and its inputs and drawn again on every rerun, a side effect made once).

Underneath: ``with heavy("generate") as job:`` waits for a slot (showing "k jobs ahead of you"), then runs the
block; pass ``job.wrap(cb)`` as the heavy function's progress callback so that Stop, a newer run of
the same session and the time budget stop it at its next progress point.

Results as they come: ``run_on_click(..., live=draw)`` draws the partial result the progress callback hands
over (patching values so far, methods done, pairs scored) into a placeholder as the work goes on, at most
every :data:`LIVE_INTERVAL_S` and within :data:`LIVE_BUDGET` of the work's time (:class:`Throttle`), under a
"partial: k of n" caption (the first progress point at once, then at most every interval, and the last);
the final result replaces it, and a stopped run keeps what it finished.

Stop semantics with Streamlit (fast reruns): a click or a widget change starts a new script run of
the session while the old one is still busy; ``cancel_stale()`` (called by app.py at the start of
every run) cancels the session's older job, queued or running, and the old run stops at its next
progress check. A waiting job updates its notice every ``llmviz.jobs.POLL_S`` seconds; Streamlit
raises its stop exception there when the run is stopped or the session ends, which cancels the job.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from typing import Callable

import numpy as np
import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.jobs import JobCancelled, JobTimeout, lowered_priority, server_queue
from llmviz.threads import job_threads
from ui.i18n import t
from ui.text import show_error

_local = threading.local()  # the job the current script thread holds


def owner() -> str:
    """The browser session running this script (one live job per session)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return "no-session"
    # the session's own state object as well: Streamlit's AppTest gives every test app the same
    # session_id, so a run left over from one test could cancel another test's job (one job per owner)
    state = getattr(ctx.session_state, "_state", None)
    return ctx.session_id if state is None else f"{ctx.session_id}/{id(state):x}"


def cancel_stale() -> None:
    """A new script run of this session: its older job (queued or still running) is cancelled."""
    server_queue().cancel_owner(owner())


def queue_note() -> str:
    q = server_queue()
    return t("jobs.waiting_help", n=q.max_jobs, s=f"{q.budget_s:.0f}")


@contextmanager
def heavy(kind: str, estimate: float | None = None):
    """Hold one slot of the server queue for the block; yields the Job. ``estimate``: its expected seconds
    (shown to jobs queued behind it; the estimator learns from the time a block that ends normally took)."""
    q = server_queue()
    box = st.empty()
    job = q.submit(owner(), kind, estimate)
    shown = [None]

    def on_wait(ahead: int) -> None:
        # Redrawn on every poll (not only when ``ahead`` changes): Streamlit notices a stopped run
        # or a closed session only when the script talks to it.
        shown[0] = ahead
        with box.container():
            st.info(t("jobs.waiting", k=ahead), icon=":material/hourglass_top:")
            st.caption(queue_note())

    try:
        try:
            q.acquire(job, on_wait)
        finally:
            if shown[0] is not None:
                box.empty()
        _local.job = job
        # light work of other students stays responsive; threads: the cores free now, shared by running jobs
        with lowered_priority(), job_threads(running=q.counts()["running"]):
            yield job
        job.complete()
    except JobTimeout as err:
        raise JobTimeout(err.budget_s, t("jobs.timeout", s=f"{err.budget_s:.0f}")) from None
    except JobCancelled:
        raise JobCancelled(t("jobs.cancelled")) from None
    finally:
        _local.job = None
        q.release(job)


def check() -> None:
    """Check the job this script run holds (no-op outside ``heavy``): for progress callbacks that
    are built before the job exists."""
    job = getattr(_local, "job", None)
    if job is not None:
        job.check()


def _fn_name(fn: Callable) -> str:
    """A function's name that stays the same when a page script defines it anew on every run."""
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def run_in_slot(
    kind: str, fn: Callable, args: tuple, kwargs: dict, progress: str = "_progress", estimate: float | None = None
):
    """``fn(*args, **kwargs)`` in a slot of the server queue; its progress callback (the keyword
    ``progress``, if given) checks the job first, so Stop, a newer run or the budget stop it there."""
    with heavy(kind, estimate) as job:
        if kwargs.get(progress) is not None:
            kwargs[progress] = job.wrap(kwargs[progress])
        return fn(*args, **kwargs)


def _keep(store: OrderedDict, key: str, value, limit: int) -> None:
    """Put ``key`` last in ``store``, dropping the least recently used entries beyond ``limit``."""
    store[key] = value
    while len(store) > max(1, limit):
        store.popitem(last=False)


# ---------------------------------------------------------------- the one run-and-remember
RUNS_KEY = "llmviz_runs"  # session_state: {action key: OrderedDict(input signature -> result)}
KEEP_PER_ACTION = 4  # results kept per action and session (least recently used dropped)
_SHARED: OrderedDict[str, object] = OrderedDict()  # server-wide results of shared actions
_SHARED_MAX = 64
_SHARED_LOCK = threading.Lock()


def signature(inputs) -> str:
    """The inputs of a run as one string (JSON, keys sorted; anything else by its ``str``)."""
    return json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=False)


def _session_runs(key: str) -> OrderedDict:
    runs = st.session_state.setdefault(RUNS_KEY, {})
    return runs.setdefault(key, OrderedDict())


def remembered(key: str, inputs):
    """The result this session already has for action ``key`` and these inputs, else None."""
    kept = _session_runs(key)
    sig = signature(inputs)
    if sig in kept:
        kept.move_to_end(sig)
        return kept[sig]
    return None


def remember(key: str, inputs, result, keep: int = KEEP_PER_ACTION) -> None:
    """Keep ``result`` for action ``key`` and these inputs in this session (bounded)."""
    _keep(_session_runs(key), signature(inputs), result, keep)


def kept_results(key: str) -> list[tuple]:
    """``[(inputs, result), ...]`` this session keeps for action ``key``, oldest first (inputs as JSON data)."""
    return [(json.loads(sig), r) for sig, r in _session_runs(key).items()]


def forget(key: str) -> None:
    """Drop every kept result of action ``key`` in this session."""
    st.session_state.get(RUNS_KEY, {}).pop(key, None)


def _fmt_s(seconds: float) -> str:
    if seconds < 10:
        return f"{max(seconds, 1):.0f}"
    return f"{round(seconds, -1):.0f}"


def button_label(label: str, estimate_s: float | None = None) -> str:
    """A start button's text with its measured estimate ("about N s on this machine"), plus the queue ahead
    when the server is busy ("about 40 s, 2 jobs ahead of you": the wait and the work)."""
    if estimate_s is None:
        return label
    ahead, wait_s = server_queue().outlook()
    if ahead:
        return f"{label} ({t('app.estimate_queue', s=_fmt_s(wait_s + estimate_s), k=ahead)})"
    return f"{label} ({t('app.estimate', s=_fmt_s(estimate_s))})"


# ---------------------------------------------------------------- results as they come
LIVE_INTERVAL_S = 1.5  # a running job redraws its partial result at most this often
LIVE_BUDGET = 0.05  # and spends at most this share of the work's time drawing it
PARTIAL_KEY = "llmviz_partial"  # session_state: {action key: (input signature, done, total, partial values)}


class Throttle:
    """When a running job redraws its partial result: the first progress point at once, then at most every
    ``interval`` seconds and never more than ``budget`` of the time (after a draw that took c seconds the next
    waits at least c / budget), plus the last (``done == total``) once anything was drawn (a run that reports
    once shows its final result only). ``clock``: seconds (tests pass a fake one)."""

    def __init__(self, interval: float = LIVE_INTERVAL_S, budget: float = LIVE_BUDGET, clock=time.monotonic):
        self.interval, self.budget, self.clock = interval, budget, clock
        self.last: float | None = None  # when the last draw ended
        self.cost = 0.0  # seconds the last draw took
        self.draws = 0

    def due(self, done: int, total: int) -> bool:
        if total and done >= total:
            return self.draws > 0
        if self.last is None:
            return True
        return self.clock() - self.last >= max(self.interval, self.cost / self.budget)

    def __call__(self, draw: Callable, done: int, total: int, *args) -> bool:
        """``draw(done, total, *args)`` when due; returns whether it drew."""
        if not self.due(done, total):
            return False
        start = self.clock()
        draw(done, total, *args)
        self.last = self.clock()
        self.cost = self.last - start
        self.draws += 1
        return True


def _frozen(values: tuple) -> tuple:
    """Partial values as they are now (a library may go on filling its array in place after Stop)."""
    return tuple(v.copy() if isinstance(v, np.ndarray) else v for v in values)


def _partials() -> dict:
    return st.session_state.setdefault(PARTIAL_KEY, {})


def _draw_partial(slot, live: Callable, key: str, done: int, total: int, values: tuple) -> None:
    """``live(done, total, *values, key=...)`` into ``slot`` (replacing what it held) with the "partial" caption;
    ``key``: unique per draw (a chart drawn twice in one run needs a new element key)."""
    with slot.container():
        live(done, total, *values, key=key)
        st.caption(t("jobs.partial", k=done, n=total))


class _Live:
    """The progress side of ``run_on_click(live=...)``: keeps the newest partial values for this session (what
    a stopped run shows) and draws them when the :class:`Throttle` says so."""

    def __init__(self, key: str, sig: str, live: Callable, slot):
        self.key, self.sig, self.live, self.slot = key, sig, live, slot
        self.throttle = Throttle()

    def __call__(self, done: int, total: int, *values) -> None:
        values = _frozen(values)
        _partials()[self.key] = (self.sig, done, total, values)
        self.throttle(self._draw, done, total, *values)

    def _draw(self, done: int, total: int, *values) -> None:
        _draw_partial(self.slot, self.live, f"{self.key}_live{self.throttle.draws}", done, total, values)


def _kept_partial(key: str, sig: str):
    """``(done, total, values)`` a stopped or failed run of action ``key`` with these inputs finished, else None."""
    kept = st.session_state.get(PARTIAL_KEY, {}).get(key)
    return kept[1:] if kept is not None and kept[0] == sig else None


def run_on_click(
    key: str,
    label: str,
    fn: Callable,
    *args,
    inputs,
    kind: str,
    estimate_s: float | None = None,
    progress: str | None = None,
    progress_text: str | None = None,
    live: Callable | None = None,
    shared: bool = False,
    on_result: Callable | None = None,
    auto: bool = False,
    disabled: bool = False,
    keep: int = KEEP_PER_ACTION,
    hint: str | None = None,
    button: bool = True,
    button_args: dict | None = None,
    where=None,
    stop: bool = True,
    **kwargs,
):
    """The one way to run heavy work on a click and remember it.

    Draws a primary start button (with the estimate); on a click (or at once when ``auto`` and nothing is
    kept yet) it waits for a slot of the server queue, shows a progress bar and a Stop button, runs
    ``fn(*args, **kwargs)`` and keeps the result for this session and ``inputs`` (JSON-able; everything the
    result depends on). On every later run with the same inputs the kept result is returned again without a
    click, wherever the call stands (tab, section), so the page draws it in place. ``progress``: the name
    of ``fn``'s progress keyword; a callback ``(done, total, ...)`` drawing the bar is passed there (or,
    when the caller gave one in ``kwargs``, that one, with the job's check in front). ``live(done, total,
    *values, key=...)``: draws the partial result the progress callback hands over (``values``: what follows
    ``done, total``) into a placeholder below the bar, throttled (:class:`Throttle`), captioned "partial: k of
    n" and replaced by the final result; a stopped or failed run keeps showing what it finished, for these
    inputs, until the next run. ``shared``: results
    are also kept server-wide (a second session asking for the same inputs gets a copy at once).
    ``on_result(result)``: a side effect (e.g. recording the run) made once, after a fresh computation.
    ``hint``: the caption under the button while nothing is kept ("" for none). ``button=False`` (with
    ``auto``): no button, the work runs whenever these inputs are not kept yet. ``button_args``: more
    ``st.button`` arguments (``help``, ``type``, ``icon``). ``where``: the container for what the run draws
    after the button (queue notice, progress, Stop, messages), e.g. below a row of buttons. ``stop=False``:
    no Stop button while it runs (the caller draws its own, e.g. one that stays after the run).
    Returns the result, or None (not asked yet, stopped, or failed: the message is shown)."""
    sig = signature(inputs)
    kept = _session_runs(key)
    button_kw = {"type": "primary", "icon": ":material/play_arrow:", "disabled": disabled, **(button_args or {})}
    clicked = button and st.button(button_label(label, estimate_s), key=key, **button_kw)
    with where if where is not None else nullcontext():
        if st.session_state.get(f"{key}_stop"):
            st.warning(t("jobs.cancelled"))
        if not clicked and not (auto and sig not in kept):
            if sig in kept:
                kept.move_to_end(sig)
                return kept[sig]
            partial = _kept_partial(key, sig) if live is not None else None
            if partial is not None:  # a stopped run keeps what it finished
                _draw_partial(st.empty(), live, f"{key}_live_kept", *partial)
            if hint != "":
                st.caption(hint or t("app.press_to_start"))
            return None
        if shared:
            with _SHARED_LOCK:
                hit = _SHARED.get(shared_sig := signature([key, _fn_name(fn), inputs]))
                if hit is not None:
                    _SHARED.move_to_end(shared_sig)
            if hit is not None:
                result = copy.deepcopy(hit)
                _keep(kept, sig, result, keep)
                return result
        given = kwargs.get(progress) if progress else None
        bar = st.progress(0.0, text=progress_text or label) if progress and not callable(given) else None
        stop_slot = st.empty()
        if stop:
            stop_slot.button(t("jobs.stop"), key=f"{key}_stop", icon=":material/stop:", help=t("jobs.stop_help"))
        live_slot = st.empty()
        shown = _Live(key, sig, live, live_slot) if live is not None and progress else None
        _partials().pop(key, None)  # a new run replaces what a stopped one kept
        if progress:

            def draw(done, total, *rest):
                if callable(given):
                    given(done, total, *rest)
                elif total:
                    bar.progress(min(1.0, done / total), text=f"{progress_text or label} {done}/{total}")
                if shown is not None:
                    shown(done, total, *rest)

            kwargs[progress] = draw if shown is not None or not callable(given) else given
        try:
            result = run_in_slot(kind, fn, args, kwargs, progress=progress or "_progress", estimate=estimate_s)
        except LlmvizError as err:
            show_error(err)
            partial = _kept_partial(key, sig) if shown is not None else None
            if partial is not None:  # stopped or out of time: what finished stays
                _draw_partial(live_slot, live, f"{key}_live_end", *partial)
            return None
        finally:
            if bar is not None:
                bar.empty()
            stop_slot.empty()
        live_slot.empty()
        _partials().pop(key, None)
        _keep(kept, sig, result, keep)
        if shared:
            with _SHARED_LOCK:
                _keep(_SHARED, signature([key, _fn_name(fn), inputs]), copy.deepcopy(result), _SHARED_MAX)
        if on_result is not None:
            on_result(result)
        return result
