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
