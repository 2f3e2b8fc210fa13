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


def busy_elsewhere(window_s: float = 0.2) -> float:
    """Cores kept busy by *other* processes over the next ``window_s`` seconds (this process's own CPU time
    subtracted); 0.0 where it cannot be read."""
    a, c0 = _cpu_busy_total(), time.process_time()
    t0 = time.monotonic()
    time.sleep(window_s)
    b, c1 = _cpu_busy_total(), time.process_time()
    wall = time.monotonic() - t0
    if a is None or b is None or b[1] <= a[1] or wall <= 0:
        return 0.0
    cores = os.cpu_count() or 1
    busy_cores = (b[0] - a[0]) / (b[1] - a[1]) * cores
    return max(0.0, busy_cores - (c1 - c0) / wall)


_BUSY: list = [0.0, -1e9]  # (cores busy elsewhere, when measured): one measurement serves jobs for BUSY_TTL_S
BUSY_TTL_S = 5.0


def _recent_busy() -> float:
    now = time.monotonic()
    if now - _BUSY[1] > BUSY_TTL_S:
        _BUSY[:] = [busy_elsewhere(0.1), now]
    return _BUSY[0]


def choose_threads(cores: int, running: int, busy_other: float) -> int:
    """Intra-op threads for one heavy job: the cores not kept busy by other processes, shared by the jobs this
    server runs at once, at least 1. More OpenMP threads than free cores make every parallel region wait for
    a descheduled thread (measured in ``bench/under_load.py``: a sweep several times slower), fewer lose nothing."""
    free = max(1.0, cores - busy_other)
    return max(1, min(cores, int(free / max(1, running) + 0.5)))


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
