"""The run store: every audit (CrowS-Pairs, StereoSet, SEAT/WEAT, template probe) recorded in a database.

See :mod:`llmviz.runs.store` (SQLite by default, any SQLAlchemy URL through ``LLMVIZ_DB_URL``) and
:mod:`llmviz.runs.record` (what each kind of audit stores per item).

From a notebook: ``llmviz.runs.list()`` (a table of the runs, newest first), ``llmviz.runs.get(id)`` and
``llmviz.runs.compare(a, b)`` (paired difference with a bootstrap CI), each a :class:`llmviz.notebook.View`.
"""

from __future__ import annotations

import builtins


def list(limit: int = 500, kind: str | None = None):  # noqa: A001 - reads as lv.runs.list()
    """The recorded runs, newest first (id, kind, model, date, summary); ``.result`` is the list of dicts."""
    import pandas as pd

    from llmviz.notebook import View
    from llmviz.runs.store import list_runs

    runs = list_runs(limit=limit, kind=kind)
    cols = ("id", "kind", "model", "date", "n_items", "summary")
    frame = lambda: pd.DataFrame([{c: r[c] for c in cols} for r in runs], columns=builtins.list(cols))  # noqa: E731
    return View(runs, "runs", {"limit": limit, "kind": kind}, frame=frame)


def get(run_id: int) -> dict:
    """One run with its items."""
    from llmviz.runs.store import get_run

    return get_run(run_id)


def compare(id_a: int, id_b: int, n_boot: int = 5000, seed: int = 0):
    """Run B minus run A item by item (same data), overall and per group, with bootstrap 95 % CIs; the figure is
    the Bias page's paired-difference chart."""
    import pandas as pd

    from llmviz.notebook import View
    from llmviz.runs.store import compare_runs
    from llmviz.viz.benchmarks import paired_diff

    cmp = compare_runs(id_a, id_b, n_boot=n_boot, seed=seed)
    frame = lambda: pd.DataFrame(cmp["items"])  # noqa: E731
    return View(
        cmp, "runs_compare", {"a": id_a, "b": id_b, "n_boot": n_boot, "seed": seed}, lambda: paired_diff(cmp), frame
    )
