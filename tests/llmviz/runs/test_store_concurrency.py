"""Run store under concurrent writers (issue 24, item 4): N processes start on a fresh store at the same moment
and each records M runs; afterwards exactly N*M runs are in the store (a run that could not be written at once
is spooled and imported on the next open), each with all its items, and ``schema_version`` has one row."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from llmviz.runs import store as RS

ROOT = Path(__file__).resolve().parents[3]

WORKER = """
import json, os, sys, time
home, m, n_items, go, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
os.environ["LLMVIZ_HOME"] = home
os.environ.pop("LLMVIZ_DB_URL", None)
from llmviz.runs import store as RS
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
warnings = []
for i in range(m):
    items = [{"key": f"k{j}", "group": "g", "value": float(j)} for j in range(n_items)]
    rid, msg = RS.try_record(kind="seat", model=f"p{os.getpid()}", summary={"i": i}, items=items, versions={"v": "1"})
    if msg:
        warnings.append(msg)
print(json.dumps(warnings))
"""


def _stress(home: Path, n_proc: int, m: int, n_items: int) -> tuple[list[str], float]:
    go = home.parent / "go"
    env = {k: v for k, v in os.environ.items() if k != "LLMVIZ_DB_URL"}
    procs, readies = [], []
    for k in range(n_proc):
        ready = home.parent / f"ready{k}"
        readies.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(home), str(m), str(n_items), str(go), str(ready)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    go.touch()  # every process opens the fresh store at once
    warnings: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        warnings += json.loads(out.strip().splitlines()[-1])
    return warnings, time.monotonic() - start


def test_concurrent_writers_lose_no_run_and_leave_one_schema_row(tmp_path, monkeypatch):
    n_proc, m, n_items = 4, 50, 2000
    home = tmp_path / "home"
    warnings, seconds = _stress(home, n_proc, m, n_items)
    print(f"{n_proc} processes x {m} runs of {n_items} items: {seconds:.1f} s, {len(warnings)} spooled")
    assert all("spool" in w for w in warnings), warnings[:3]  # nothing lost: any run not written is spooled
    monkeypatch.setenv("LLMVIZ_HOME", str(home))
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)
    RS.reset_engines()
    try:
        runs = RS.list_runs(limit=10**6)  # this open imports whatever was spooled
    finally:
        RS.reset_engines()
    assert len(runs) == n_proc * m
    assert sorted(r["summary"]["i"] for r in runs) == sorted(list(range(m)) * n_proc)
    with sqlite3.connect(home / "runs.sqlite") as con:
        assert con.execute("select count(*) from schema_version").fetchone()[0] == 1
        assert con.execute("select count(*) from run_items").fetchone()[0] == n_proc * m * n_items
        assert con.execute("select count(*) from runs where n_items != ?", (n_items,)).fetchone()[0] == 0
    spool = home / "runs.spool"
    assert not spool.exists() or not any(spool.glob("*.json"))
