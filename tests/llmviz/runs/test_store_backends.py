"""The run store on SQLite and on a real PostgreSQL server the tests start (issue 25): round trip, paired
comparison against hand numbers, migrations from an empty database and from schema version 1, concurrent
writers in separate processes, ``llmviz runs compare`` through the CLI, and clear messages for a wrong URL, a
refused connection and a missing driver. The PostgreSQL cases are marked ``postgres``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmviz.bias.stats import bootstrap_ci
from llmviz.runs import store as RS
from tests import postgres_server as PG

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def pg():
    try:
        server = PG.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:  # make test installs the binaries
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {err}")
    yield server
    PG.stop(server)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path, monkeypatch):
    """(kind, URL) of a fresh, empty store; LLMVIZ_DB_URL points at it and LLMVIZ_HOME at a temp folder."""
    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))
    monkeypatch.setattr(RS, "LOCK_WAIT_S", 5.0)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    else:
        server = request.getfixturevalue("pg")
        url = server.url(server.create_database())
    monkeypatch.setenv("LLMVIZ_DB_URL", url)
    RS.reset_engines()
    yield request.param, url
    RS.reset_engines()


def _items(values, groups):
    return [{"key": f"k{i}", "group": g, "value": v, "extra": {"i": i}} for i, (v, g) in enumerate(zip(values, groups))]


def _sql(url: str, query: str) -> list[tuple]:
    from sqlalchemy import create_engine, text

    eng = create_engine(RS.engine_url(url))
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        eng.dispose()


def test_round_trip_listing_and_paired_comparison(backend):
    _, url = backend
    va, vb, groups = [100, 0, 100, 0, 100, 0], [100, 100, 0, 100, 100, 100], "xxxyyy"
    a = RS.record_run("crows_pairs", "A", {"pct": np.float64(50.0)}, _items(va, groups), data_sha256="s")
    b = RS.record_run("crows_pairs", "B", {"pct": 83.3}, _items(vb, groups), data_sha256="s")
    assert [r["id"] for r in RS.list_runs()] == [b, a]  # newest first
    got = RS.get_run(a)
    assert got["summary"] == {"pct": 50.0} and [i["value"] for i in got["items"]] == va
    assert got["items"][4] == {"key": "k4", "group": "y", "value": 100.0, "extra": {"i": 4}}
    cmp = RS.compare_runs(a, b, n_boot=800, seed=1)
    d = np.array(vb, float) - np.array(va, float)
    assert cmp["overall"]["mean_diff"] == pytest.approx(d.mean())
    assert cmp["overall"]["ci95"] == pytest.approx(list(bootstrap_ci(d, n_boot=800, seed=1)))
    assert cmp["by_group"]["y"]["mean_diff"] == pytest.approx(200 / 3)
    assert _sql(url, "select version from schema_version") == [(RS.SCHEMA_VERSION,)]


def test_migration_from_an_empty_database(backend):
    _, url = backend
    assert RS.list_runs() == []
    assert _sql(url, "select version from schema_version") == [(RS.SCHEMA_VERSION,)]
    from sqlalchemy import create_engine, inspect

    eng = create_engine(RS.engine_url(url))
    try:
        insp = inspect(eng)
        cols = {c["name"] for c in insp.get_columns("runs")}
        assert {"id", "uid", "kind", "model", "summary", "n_items"} <= cols
        assert {c["name"] for c in insp.get_columns("run_items")} >= {"run_id", "idx", "item_key", "value"}
    finally:
        eng.dispose()


def test_migration_from_schema_version_1_keeps_old_runs(backend):
    """A store written by the version-1 build (no ``uid`` column) is migrated on open: the old run stays
    readable, new runs get a unique uid, and one version row says 2."""
    from sqlalchemy import create_engine, insert

    _, url = backend
    eng = create_engine(RS.engine_url(url))
    try:
        with eng.begin() as conn:
            RS.METADATA.create_all(conn, tables=[RS.METADATA.tables["schema_version"]])
            RS._m1(conn)
            conn.exec_driver_sql("DROP INDEX IF EXISTS ux_runs_uid")
            conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN uid")  # the v1 table had none
            conn.execute(insert(RS.METADATA.tables["schema_version"]).values(version=1))
            conn.exec_driver_sql(
                "INSERT INTO runs (kind, model, parameters, versions, date, summary, n_items) "
                "VALUES ('seat', 'old-model', '{}', '{}', '2026-01-01T00:00:00+00:00', '{\"e\": 0.5}', 0)"
            )
    finally:
        eng.dispose()
    RS.reset_engines()
    new = RS.record_run("seat", "new-model", {"e": 0.7}, _items([1.0], "g"))
    runs = RS.list_runs()
    assert [r["model"] for r in runs] == ["new-model", "old-model"] and runs[1]["summary"] == {"e": 0.5}
    assert _sql(url, "select version from schema_version") == [(2,)]
    uids = _sql(url, "select uid from runs order by id")
    assert uids[0] == (None,) and len(uids[1][0]) == 32
    assert RS.get_run(new)["items"][0]["value"] == 1.0
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):  # the unique index the migration created
        _sql(url, f"insert into runs (uid, kind, model, n_items) values ('{uids[1][0]}', 'seat', 'x', 0)")


WORKER = """
import json, os, sys, time
m, go, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from llmviz.runs import store as RS
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
msgs = []
for i in range(m):
    items = [{"key": f"k{j}", "group": "g", "value": float(j)} for j in range(20)]
    rid, msg = RS.try_record(kind="seat", model=f"p{os.getpid()}", summary={"i": i}, items=items, versions={"v": "1"})
    msgs += [msg] if msg else []
print(json.dumps(msgs))
"""


def test_concurrent_writers_in_processes_lose_nothing(backend, tmp_path):
    """N processes open the fresh store at the same moment (racing to migrate it) and write M runs each."""
    _, url = backend
    n, m = 4, 15
    go = tmp_path / "go"
    procs, readies = [], [tmp_path / f"ready{k}" for k in range(n)]
    for ready in readies:
        cmd = [sys.executable, "-c", WORKER, str(m), str(go), str(ready)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True))
    import time

    deadline = time.monotonic() + 60
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    msgs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        msgs += json.loads(out.strip().splitlines()[-1])
    assert all("spool" in x for x in msgs), msgs[:2]
    RS.reset_engines()
    runs = RS.list_runs(limit=10_000)  # imports anything spooled
    assert len(runs) == n * m
    assert sorted(r["summary"]["i"] for r in runs) == sorted(list(range(m)) * n)
    assert _sql(url, "select count(*) from run_items") == [(n * m * 20,)]
    assert _sql(url, "select count(*) from schema_version") == [(1,)]


@pytest.mark.postgres
def test_cli_runs_list_and_compare_on_postgres(pg, tmp_path):
    url = pg.url(pg.create_database())
    env = {
        **os.environ,
        "LLMVIZ_DB_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "LLMVIZ_HOME": str(tmp_path),
    }
    code = (
        "from llmviz.runs import store as RS;"
        "RS.record_run('crows_pairs','A',{},[{'key':'k0','group':'x','value':0.0},{'key':'k1','group':'x','value':100.0}],data_sha256='s');"
        "RS.record_run('crows_pairs','B',{},[{'key':'k0','group':'x','value':100.0},{'key':'k1','group':'x','value':100.0}],data_sha256='s')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    cli = [sys.executable, "-m", "llmviz", "runs"]
    listed = subprocess.run(cli + ["list", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [r["model"] for r in json.loads(listed.stdout)] == ["B", "A"]
    out = subprocess.run(cli + ["compare", "1", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "50" in out.stdout  # mean difference B - A = (100 + 0) / 2 points


@pytest.mark.postgres
def test_messages_for_a_wrong_url_a_refused_connection_and_a_missing_driver(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))
    cases = {
        pg.url("no_such_database"): "does not exist",
        f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{PG.free_port()}/x": "cannot be reached",
        "postgresql+pg8000://postgres@127.0.0.1/x": "driver that is not installed",
        "this is not a url": "not a database URL",
    }
    for url, expected in cases.items():
        monkeypatch.setenv("LLMVIZ_DB_URL", url)
        RS.reset_engines()
        with pytest.raises(RS.RunStoreError) as err:
            RS.list_runs()
        msg = str(err.value)
        assert expected in msg and "s3cret" not in msg and "Traceback" not in msg, msg
        rid, warning = RS.try_record(kind="seat", model="m", summary={}, items=[])
        assert rid is None and expected in warning and "spool" in warning  # the run waits, it is not lost
    RS.reset_engines()
    # the CLI: one line, exit status 1-2, no traceback
    env = {**os.environ, "LLMVIZ_DB_URL": pg.url("no_such_database"), "LLMVIZ_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "llmviz", "runs", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr and "does not exist" in out.stderr
    # psycopg itself missing: the default postgresql:// URL names the driver to install
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from llmviz.runs import store as RS\n"
        "try:\n    RS.list_runs()\nexcept RS.RunStoreError as e:\n    print(e)\n"
    )
    env["LLMVIZ_DB_URL"] = pg.url().replace("+psycopg", "")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert 'pip install "psycopg[binary]"' in out.stdout, out.stdout + out.stderr
