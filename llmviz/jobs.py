"""One server-wide work queue for heavy work (generation, attributions, ablation sweeps, pair scoring,
training), so that a class sharing one machine shares its cores fairly.

- At most ``max_jobs`` jobs run at once (default: one per two cores, ``LLMVIZ_MAX_JOBS`` overrides);
  the others wait in arrival order and can ask how many jobs are ahead of them.
- One owner (a browser session) holds at most one job: submitting a new one cancels the owner's
  older job, queued or running, so a student cannot fill the queue and a superseded run stops.
- Cancellation is cooperative: a running job stops at its next ``check()`` (pages call it from the
  progress callbacks the heavy functions already take); a queued one leaves the queue at once.
- A running job has a time budget (``JOB_BUDGET_S``, ``LLMVIZ_JOB_BUDGET_S`` overrides), checked at
  the same points: past it, ``check()`` raises :class:`JobTimeout`.

Pure Python (threads + one condition variable); the Streamlit side is ``ui/jobs.py``.

Usage::

    job = QUEUE.submit(owner="session-1", kind="generate")
    QUEUE.acquire(job, on_wait=lambda ahead: print(ahead, "jobs ahead"))
    try:
        heavy(progress=job.wrap(my_progress))
    finally:
        QUEUE.release(job)
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from llmviz import estimate as _estimate
from llmviz.errors import LlmvizError

QUEUED, RUNNING, DONE, CANCELLED = "queued", "running", "done", "cancelled"
POLL_S = 0.5  # how often a waiting job reports its position (and notices a Stop)


def _env_number(name: str, default: float, cast=float, low: float | None = None, high: float | None = None) -> float:
    """A number from the environment variable ``name`` (``default`` when unset): above 0, or within
    ``low``..``high`` inclusive when given; a clear error otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if low is None:
        what, ok = "above 0", lambda v: v > 0
    else:
        what, ok = f"from {low:g} to {high:g}", lambda v: low <= v <= high
    kind = "a whole number" if cast is int else "a number"
    try:
        value = cast(raw)
    except ValueError:
        raise LlmvizError(f"{name} must be {kind} {what} (got {raw!r}).") from None
    if not ok(value):
        raise LlmvizError(f"{name} must be {kind} {what} (got {raw!r}).")
    return value


def default_max_jobs() -> int:
    """``LLMVIZ_MAX_JOBS`` if set, else one job per two cores (at least one)."""
    return int(_env_number("LLMVIZ_MAX_JOBS", max(1, (os.cpu_count() or 1) // 2), int))


JOB_BUDGET_S = 300.0  # seconds one heavy job may run (any Explain or training preset fits)


def default_budget_s() -> float:
    return float(_env_number("LLMVIZ_JOB_BUDGET_S", JOB_BUDGET_S))


class JobCancelled(LlmvizError):
    """The job was stopped (Stop button, a newer run of the same session, or the session ended)."""


class JobTimeout(LlmvizError):
    """The job ran past its time budget."""

    def __init__(self, budget_s: float, message: str | None = None):
        self.budget_s = budget_s
        super().__init__(
            message
            or f"This job ran longer than the {budget_s:.0f} s one job may use on this "
            "server and was stopped. Try a shorter text or fewer steps."
        )


@dataclass(eq=False)
class Job:
    owner: str
    kind: str
    ticket: int
    queue: "JobQueue" = field(repr=False)
    submitted: float = 0.0
    started: float | None = None
    state: str = QUEUED
    estimate: float | None = None  # seconds expected (an llmviz.estimate.Estimate learns from the job)

    @property
    def cancelled(self) -> bool:
        return self.state == CANCELLED

    def ahead(self) -> int:
        """Jobs that run or start before this one (0 once it runs)."""
        return self.queue.ahead(self)

    def cancel(self) -> None:
        self.queue.cancel(self)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.queue.clock() - self.started

    def check(self) -> None:
        """Raise JobCancelled / JobTimeout when the job must stop; call it at every progress point."""
        if self.state == CANCELLED:
            raise JobCancelled("Stopped.")
        if self.started is not None and self.elapsed() > self.queue.budget_s:
            self.queue.cancel(self)
            raise JobTimeout(self.queue.budget_s)

    def remaining(self) -> float:
        """Seconds this job is still expected to take (its estimate less the time it has run; 0 if unknown)."""
        return max(float(self.estimate or 0.0) - self.elapsed(), 0.0)

    def complete(self) -> None:
        """The work finished normally: its seconds update the estimator (call before ``release``)."""
        if self.started is not None and self.state == RUNNING:
            _estimate.observe(self.estimate, self.elapsed())

    def wrap(self, callback: Callable | None = None) -> Callable:
        """A progress callback that checks the job first, then calls ``callback`` (if any)."""

        def progress(*args, **kwargs):
            self.check()
            return None if callback is None else callback(*args, **kwargs)

        return progress

    def iterate(self, items) -> Iterator:
        """Yield from ``items`` (e.g. a token stream), checking the job before each item."""
        for item in items:
            self.check()
            yield item


class JobQueue:
    """FIFO queue with at most ``max_jobs`` running jobs and one live job per owner."""

    def __init__(
        self, max_jobs: int | None = None, budget_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.max_jobs = int(max_jobs) if max_jobs is not None else default_max_jobs()
        if self.max_jobs < 1:
            raise LlmvizError("The work queue needs at least one job slot.")
        self.budget_s = float(budget_s) if budget_s is not None else default_budget_s()
        self.clock = clock
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._waiting: list[Job] = []  # arrival order
        self._running: list[Job] = []

    # ---------------------------------------------------------------- state
    def ahead(self, job: Job) -> int:
        with self._cond:
            if job.state != QUEUED or job not in self._waiting:
                return 0
            return len(self._running) + self._waiting.index(job)

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {"running": len(self._running), "waiting": len(self._waiting), "max_jobs": self.max_jobs}

    def outlook(self) -> tuple[int, float]:
        """For a job submitted now: (jobs ahead of it, seconds until it is expected to start), from the
        running and waiting jobs' estimates shared over ``max_jobs`` slots."""
        with self._cond:
            jobs = self._running + self._waiting
            if len(jobs) < self.max_jobs:
                return 0, 0.0
            return len(jobs), sum(j.remaining() for j in jobs) / self.max_jobs

    def jobs_of(self, owner: str) -> list[Job]:
        with self._cond:
            return [j for j in self._running + self._waiting if j.owner == owner]

    # ---------------------------------------------------------------- life cycle
    def submit(self, owner: str, kind: str = "job", estimate: float | None = None) -> Job:
        """Queue a job for ``owner``; the owner's older live jobs are cancelled (one job per owner).
        ``estimate``: its expected seconds (the queue-ahead note of later jobs; learnt from when it completes)."""
        with self._cond:
            for old in [j for j in self._running + self._waiting if j.owner == owner]:
                self._cancel_locked(old)
            job = Job(owner, kind, next(self._tickets), self, submitted=self.clock(), estimate=estimate)
            self._waiting.append(job)
            self._cond.notify_all()
            return job

    def _may_start(self, job: Job) -> bool:
        return len(self._running) < self.max_jobs and bool(self._waiting) and self._waiting[0] is job

    def acquire(
        self,
        job: Job,
        on_wait: Callable[[int], None] | None = None,
        poll_s: float = POLL_S,
        timeout_s: float | None = None,
    ) -> Job:
        """Block until ``job`` may run (then it is RUNNING and its budget starts). While waiting,
        ``on_wait(jobs_ahead)`` is called every ``poll_s`` seconds; whatever it raises (e.g. the
        page's run being stopped) cancels the job and propagates. ``timeout_s`` bounds the wait."""
        deadline = None if timeout_s is None else self.clock() + timeout_s
        while True:
            with self._cond:
                if job.state == CANCELLED:
                    raise JobCancelled("Stopped while waiting for a free slot.")
                if job.state == RUNNING:
                    return job
                if self._may_start(job):
                    self._waiting.remove(job)
                    self._running.append(job)
                    job.state, job.started = RUNNING, self.clock()
                    return job
                ahead = len(self._running) + self._waiting.index(job)
            if deadline is not None and self.clock() > deadline:
                self.cancel(job)
                raise JobTimeout(timeout_s or 0.0, "No free slot on this server in time; try again later.")
            if on_wait is not None:
                try:
                    on_wait(ahead)
                except BaseException:
                    self.cancel(job)
                    raise
            with self._cond:
                if job.state == QUEUED and not self._may_start(job):
                    self._cond.wait(poll_s)

    def release(self, job: Job) -> None:
        """The job is over (finished, failed or cancelled): free its slot; safe to call twice."""
        with self._cond:
            if job in self._running:
                self._running.remove(job)
            if job in self._waiting:
                self._waiting.remove(job)
            if job.state != CANCELLED:
                job.state = DONE
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        with self._cond:
            self._cancel_locked(job)

    def _cancel_locked(self, job: Job) -> None:
        if job.state in (DONE, CANCELLED):
            return
        job.state = CANCELLED
        if job in self._waiting:  # a queued job leaves at once; a running one keeps its slot until
            self._waiting.remove(job)  # it reaches its next check() and releases
        self._cond.notify_all()

    def cancel_owner(self, owner: str, keep: Job | None = None) -> int:
        """Cancel every live job of ``owner`` (except ``keep``); returns how many."""
        with self._cond:
            old = [j for j in self._running + self._waiting if j.owner == owner and j is not keep]
            for j in old:
                self._cancel_locked(j)
            return len(old)

    @contextmanager
    def job(
        self, owner: str, kind: str = "job", on_wait: Callable[[int], None] | None = None, estimate: float | None = None
    ):
        """``with QUEUE.job(owner, kind) as job:`` submit, wait for a slot, always release (a block that ends
        normally completes the job: its seconds update the estimator)."""
        job = self.submit(owner, kind, estimate)
        try:
            self.acquire(job, on_wait)
            yield job
            job.complete()
        finally:
            self.release(job)


HEAVY_NICE = 5  # how much lower the CPU priority of a running heavy job is (0 = unchanged)


def heavy_nice() -> int:
    """``LLMVIZ_HEAVY_NICE`` (0..19) if set, else :data:`HEAVY_NICE`."""
    return int(_env_number("LLMVIZ_HEAVY_NICE", HEAVY_NICE, int, low=0, high=19))


@contextmanager
def lowered_priority(nice: int | None = None) -> Iterator[bool]:
    """Run the block at a lower CPU priority for the calling thread, so that light work of other
    sessions (attention of one sentence, plots) stays responsive while a heavy job uses the cores.

    On Linux the nice value belongs to a thread, and threads started from it (torch's OpenMP workers
    created during the block) inherit it. Afterwards the old value is put back where the OS allows
    it (raising priority again needs CAP_SYS_NICE; without it the thread stays lowered until it ends,
    and Streamlit runs every script run in a thread that ends with it). Yields whether it applied."""
    nice = heavy_nice() if nice is None else nice
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        if nice > 0:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, before + nice))
        applied = nice > 0
    except (AttributeError, OSError):  # not Linux/Unix, or not allowed: run at the same priority
        applied = False
    try:
        yield applied
    finally:
        if applied:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, before)
            except OSError:
                pass


_QUEUE: JobQueue | None = None


_QUEUE_LOCK = threading.Lock()


def server_queue() -> JobQueue:
    """The process-wide queue (created on first use, so LLMVIZ_MAX_JOBS is read at start-up)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue()
        return _QUEUE
