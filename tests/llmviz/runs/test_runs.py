"""Run store: round trip, newest-first listing, paired comparison vs hand numbers, migrations, bad stores."""

import sqlite3

import numpy as np
import pytest

from llmviz.bias.stats import bootstrap_ci
from llmviz.runs import store as RS


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)
    monkeypatch.setattr(RS, "LOCK_WAIT_S", 0.5)  # a held lock is retried this long before the run is spooled
    RS.reset_engines()
    yield tmp_path
    RS.reset_engines()


def _items(values, groups):
    return [{"key": f"k{i}", "group": g, "value": v, "extra": {"i": i}} for i, (v, g) in enumerate(zip(values, groups))]


def test_round_trip_and_listing(store):
    a = RS.record_run(
        "crows_pairs",
        "model-a",
        {"pct": 50.0},
        _items([100, 0, 100], "xxy"),
        model_hash="h1",
        data_sha256="d" * 64,
        data_path="pairs.csv",
        parameters={"seed": 0},
    )
    b = RS.record_run("stereoset", "model-b", {"x": np.float64(1.5)}, [], data_sha256="e" * 64)
    assert (store / "runs.sqlite").is_file()
    runs = RS.list_runs()
    assert [r["id"] for r in runs] == [b, a]  # newest first
    got = RS.get_run(a)
    assert got["kind"] == "crows_pairs" and got["model"] == "model-a" and got["model_hash"] == "h1"
    assert got["summary"] == {"pct": 50.0} and got["parameters"] == {"seed": 0} and "torch" in got["versions"]
    assert [(i["key"], i["group"], i["value"], i["extra"]) for i in got["items"]] == [
        ("k0", "x", 100.0, {"i": 0}),
        ("k1", "x", 0.0, {"i": 1}),
        ("k2", "y", 100.0, {"i": 2}),
    ]
    assert RS.get_run(b)["summary"] == {"x": 1.5}
    with pytest.raises(RS.RunStoreError, match="No run with id 999"):
        RS.get_run(999)
    with sqlite3.connect(store / "runs.sqlite") as con:
        assert con.execute("select version from schema_version").fetchall() == [(RS.SCHEMA_VERSION,)]


def test_compare_paired_difference(store):
    va, vb = [100, 0, 100, 0, 100, 0], [100, 100, 0, 100, 100, 100]
    groups = "xxxyyy"
    a = RS.record_run("crows_pairs", "A", {}, _items(va, groups), data_sha256="s")
    b = RS.record_run("crows_pairs", "B", {}, _items(vb, groups), data_sha256="s")
    cmp = RS.compare_runs(a, b, n_boot=800, seed=1)
    d = np.array(vb, float) - np.array(va, float)
    assert cmp["same_data"] and cmp["n_shared"] == 6 and not cmp["notes"]
    assert cmp["overall"]["mean_diff"] == pytest.approx(d.mean())
    assert cmp["overall"]["ci95"] == pytest.approx(list(bootstrap_ci(d, n_boot=800, seed=1)))
    assert cmp["by_group"]["x"]["mean_diff"] == pytest.approx(0.0)  # (0 + 100 - 100) / 3
    assert cmp["by_group"]["y"]["mean_diff"] == pytest.approx(200 / 3)
    assert cmp["by_group"]["y"]["mean_a"] == pytest.approx(100 / 3)
    assert [i["diff"] for i in cmp["items"]] == d.tolist()
    c = RS.record_run("stereoset", "C", {}, _items([1], "x"))
    with pytest.raises(RS.RunStoreError, match="one kind"):
        RS.compare_runs(a, c)


def test_corrupt_store_gives_message_not_traceback(store):
    (store / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    rid, msg = RS.try_record(kind="seat", model="m", summary={}, items=[])
    assert rid is None and "corrupt" in msg and str(store) not in msg
    with pytest.raises(RS.RunStoreError, match="corrupt"):
        RS.list_runs()


def test_locked_store_gives_message(store):
    RS.record_run("seat", "m", {}, [])
    RS.reset_engines()
    con = sqlite3.connect(store / "runs.sqlite", timeout=0)
    con.execute("BEGIN EXCLUSIVE")
    try:
        rid, msg = RS.try_record(kind="seat", model="m", summary={}, items=[])
    finally:
        con.rollback()
        con.close()
    assert rid is None and "locked" in msg


def test_newer_schema_is_refused(store):
    RS.record_run("seat", "m", {}, [])
    RS.reset_engines()
    with sqlite3.connect(store / "runs.sqlite") as con:
        con.execute("update schema_version set version = 99")
    with pytest.raises(RS.RunStoreError, match="schema version 99"):
        RS.list_runs()


def test_db_url_override(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_DB_URL", f"sqlite:///{tmp_path / 'lab.db'}")
    RS.reset_engines()
    try:
        RS.record_run("weat", "m", {}, [])
        assert (tmp_path / "lab.db").is_file() and len(RS.list_runs()) == 1
    finally:
        RS.reset_engines()


def _locked_insert(conn, doc):
    from sqlalchemy.exc import OperationalError

    raise OperationalError("INSERT INTO runs ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_run_the_store_cannot_take_is_spooled_and_imported_once(store, monkeypatch):
    RS.record_run("seat", "first", {}, [])
    insert = RS._insert_run
    monkeypatch.setattr(RS, "_insert_run", _locked_insert)  # every write fails as "locked", however long retried
    rid, msg = RS.try_record(kind="crows_pairs", model="spooled", summary={"pct": 50.0}, items=_items([1, 0], "xy"))
    files = list((store / "runs.spool").glob("*.json"))
    assert rid is None and len(files) == 1
    assert "locked" in msg and f"runs.spool/{files[0].name}" in msg and "next time it opens" in msg
    assert "not recorded" not in msg and str(store) not in msg
    saved = files[0].read_bytes()
    monkeypatch.setattr(RS, "_insert_run", insert)
    RS.reset_engines()
    runs = RS.list_runs()  # the next open imports it
    assert [r["model"] for r in runs] == ["spooled", "first"] and not files[0].exists()
    got = RS.get_run(runs[0]["id"])
    assert got["summary"] == {"pct": 50.0} and [(i["key"], i["value"]) for i in got["items"]] == [("k0", 1), ("k1", 0)]
    files[0].parent.mkdir(exist_ok=True)
    files[0].write_bytes(saved)  # as if a second process had read it before the first removed it
    RS.reset_engines()
    assert [r["model"] for r in RS.list_runs()] == ["spooled", "first"]  # imported exactly once
    assert not files[0].exists()


def test_reading_a_locked_store_says_nothing_about_recording(store, capsys):
    from llmviz.cli import main

    RS.record_run("seat", "m", {}, [])
    RS.reset_engines()
    con = sqlite3.connect(store / "runs.sqlite", timeout=0, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")  # a lock that also keeps readers out
    con.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RS.RunStoreError) as err:
            RS.list_runs()
        assert main(["runs", "list"]) == 2
    finally:
        con.rollback()
        con.close()
    for text in (str(err.value), capsys.readouterr().err):
        assert "locked" in text and "cannot be read" in text and "not recorded" not in text


def test_an_older_store_with_two_version_rows_is_migrated_to_one(store):
    with sqlite3.connect(store / "runs.sqlite") as con:  # version 1, as two racing openers of an old build left it
        con.execute("create table schema_version (version integer not null)")
        con.executemany("insert into schema_version values (?)", [(1,), (1,)])
        con.execute(
            "create table runs (id integer primary key autoincrement, kind varchar(32) not null, model varchar(512) "
            "not null, model_hash varchar(64), data_sha256 varchar(64), data_path varchar(1024), parameters text, "
            "versions text, date varchar(40) not null, summary text, n_items integer not null)"
        )
        con.execute(
            "create table run_items (run_id integer not null references runs(id) on delete cascade, idx integer "
            "not null, item_key varchar(512) not null, grp varchar(128), value float, extra text)"
        )
        con.execute("insert into runs (kind, model, date, summary, n_items) values ('seat', 'old', 'd', '{}', 0)")
    assert [r["model"] for r in RS.list_runs()] == ["old"]
    RS.record_run("seat", "new", {}, [])
    assert [r["model"] for r in RS.list_runs()] == ["new", "old"]
    with sqlite3.connect(store / "runs.sqlite") as con:
        assert con.execute("select version from schema_version").fetchall() == [(RS.SCHEMA_VERSION,)]
