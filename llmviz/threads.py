"""How many torch threads one heavy job runs with: the cores other processes leave free now, shared by the
jobs this server runs at once (``llmviz.jobs`` holds the queue; ``ui.jobs.heavy`` and the estimator's
calibration use :func:`job_threads`). ``LLMVIZ_THREADS`` fixes the count."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from llmviz.errors import LlmvizError


def _cpu_busy_total() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores from /proc/stat (None off Linux)."""
    try:
        parts = open("/proc/stat", encoding="ascii").readline().split()[1:]
    except OSError:
        return None
    vals = [float(x) for x in parts[:8]]
    idle = vals[3] + vals[4]  # idle + iowait
    return sum(vals) - idle, sum(vals)


def _snapshot() -> tuple[tuple[float, float] | None, float, float]:
    """(/proc/stat busy and total jiffies, this process's CPU seconds, monotonic seconds) now."""
    return _cpu_busy_total(), time.process_time(), time.monotonic()


def _busy_between(a, b) -> float:
    """Cores kept busy by other processes between two snapshots (0.0 where it cannot be read)."""
    (s0, c0, t0), (s1, c1, t1) = a, b
    if s0 is None or s1 is None or s1[1] <= s0[1] or t1 <= t0:
        return 0.0
    cores = os.cpu_count() or 1
    busy_cores = (s1[0] - s0[0]) / (s1[1] - s0[1]) * cores
    return max(0.0, busy_cores - (c1 - c0) / (t1 - t0))


def busy_elsewhere(window_s: float = 0.2) -> float:
    """Cores kept busy by *other* processes over the next ``window_s`` seconds (this process's own CPU time
    subtracted); 0.0 where it cannot be read."""
    a = _snapshot()
    time.sleep(window_s)
    return _busy_between(a, _snapshot())


_BUSY: list = [0.0, -1e9]  # (cores busy elsewhere, when measured): one measurement serves jobs for BUSY_TTL_S
_LAST: list = []  # the snapshot the next measurement starts from
BUSY_TTL_S = 5.0
WINDOW_S = (0.2, 60.0)  # a window since the last snapshot this long is used as it is: no waiting


def _recent_busy() -> float:
    """Cores busy elsewhere, measured over the time since the previous call when that is 0.2-60 s ago (no
    waiting), else over a fresh 0.1 s window; one figure serves the calls of the next BUSY_TTL_S seconds."""
    now = time.monotonic()
    if now - _BUSY[1] > BUSY_TTL_S:
        cur = _snapshot()
        if _LAST and WINDOW_S[0] <= cur[2] - _LAST[0][2] <= WINDOW_S[1]:
            value = _busy_between(_LAST[0], cur)
        else:
            time.sleep(0.1)
            value, cur = _busy_between(cur, end := _snapshot()), end
        _BUSY[:] = [value, now]
        _LAST[:] = [cur]
    return _BUSY[0]


def choose_threads(cores: int, running: int, busy_other: float) -> int:
    """Intra-op threads for one heavy job: the cores not kept busy by other processes, shared by the jobs this
    server runs at once, at least 1. More OpenMP threads than free cores make every parallel region wait for
    a descheduled thread (measured in ``bench/under_load.py``: a sweep several times slower), fewer lose nothing."""
    free = max(1.0, cores - busy_other)
    # two threads unless other processes keep more than three quarters of a core busy: a browser or a light job
    # beside a server must not halve its speed; two heavy jobs (2 cores busy) leave one
    return max(1, min(cores, int(free / max(1, running) + 0.75)))


def job_threads_setting() -> int | None:
    """``LLMVIZ_THREADS`` (a fixed count for every job) if set, else None (chosen per job)."""
    raw = os.environ.get("LLMVIZ_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise LlmvizError(f"LLMVIZ_THREADS must be a whole number from 1 to 1024 (got {raw!r}).")
    return value


@contextmanager
def job_threads(running: int = 1, n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` torch threads (default: :func:`choose_threads` from this machine's load now and
    ``running`` jobs of this server); yields the count. torch's thread count (OpenMP and MKL) belongs to the
    calling thread, so other sessions' threads keep theirs; the old count is put back afterwards."""
    import torch

    n = n or job_threads_setting() or choose_threads(os.cpu_count() or 1, running, _recent_busy())
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
