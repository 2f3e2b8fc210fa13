"""Page side of the server-wide work queue (llmviz/jobs.py), and the one way pages run heavy work:
:func:`run_on_click` (start on a click with the estimate, wait in the queue, progress and Stop, the result
kept for this session and its inputs and drawn again on every rerun, a side effect made once).

Underneath: ``with heavy("generate") as job:`` waits for a slot (showing "k jobs ahead of you"), then runs the
block; pass ``job.wrap(cb)`` as the heavy function's progress callback so that Stop, a newer run of
the same session and the time budget stop it at its next progress point.

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
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from typing import Callable

import streamlit as st

from llmviz.errors import LlmvizError
from llmviz.jobs import JobCancelled, JobTimeout, lowered_priority, server_queue
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
        with lowered_priority():  # light work of other students stays responsive
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
    when the caller gave one in ``kwargs``, that one, with the job's check in front). ``shared``: results
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
        if progress:

            def draw(done, total, *rest):
                if total:
                    bar.progress(min(1.0, done / total), text=f"{progress_text or label} {done}/{total}")

            kwargs[progress] = given if callable(given) else draw
        try:
            result = run_in_slot(kind, fn, args, kwargs, progress=progress or "_progress", estimate=estimate_s)
        except LlmvizError as err:
            show_error(err)
            return None
        finally:
            if bar is not None:
                bar.empty()
            stop_slot.empty()
        _keep(kept, sig, result, keep)
        if shared:
            with _SHARED_LOCK:
                _keep(_SHARED, signature([key, _fn_name(fn), inputs]), copy.deepcopy(result), _SHARED_MAX)
        if on_result is not None:
            on_result(result)
        return result
