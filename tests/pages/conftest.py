"""Fixtures of the page tests."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from llmviz import jobs as J
from ui import jobs as ui_jobs


@pytest.fixture
def kinds(monkeypatch):
    """A fresh server queue that records the kind of every job submitted to it, and no server-wide results
    left by other tests (run_on_click's shared results would answer without a job)."""
    q = J.JobQueue(max_jobs=1, budget_s=120)
    seen = []
    submit = q.submit

    def spy(owner, kind="job", *a, **k):
        seen.append(kind)
        return submit(owner, kind, *a, **k)

    monkeypatch.setattr(q, "submit", spy)
    monkeypatch.setattr(J, "_QUEUE", q)
    monkeypatch.setattr(ui_jobs, "_SHARED", OrderedDict())
    return seen
