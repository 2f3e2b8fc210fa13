"""--engine ray on a local 2-CPU Ray: actor pool (model loaded once per actor), original order, and reports
identical to the local run for CrowS-Pairs, StereoSet and SEAT (through audit-matrix, which also resumes)."""

import json
import os

import pandas as pd
import pytest

from llmviz import engine as E
from llmviz.bias.pairs_data import starter_pairs
from llmviz.cli import main
from llmviz.runs import store as RS
from tests.fixtures import stereoset_fixtures as FX
from tests.llmviz.bias.test_seat import _sets, _write

ray = pytest.importorskip("ray", reason="make test installs Ray (requirements-ray.txt)")
pytestmark = pytest.mark.slow
RAY = ["--engine", "ray", "--ray-cpus", "2", "--actors", "2"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    E.ensure_ray(E.Engine("ray", num_cpus=2))
    yield
    E.shutdown()


class Tagger:
    """Factory: each call (one per actor) gets its own token; the scorer tags items with pid and token."""

    def __call__(self):
        token = os.urandom(4).hex()
        return lambda part: [(x * x, os.getpid(), token) for x in part]


def test_actor_pool_keeps_order_and_builds_the_scorer_once_per_actor():
    got = E.map_items(Tagger(), list(range(40)), E.Engine("ray", actors=2), shard_size=3)
    assert [g[0] for g in got] == [x * x for x in range(40)]
    pids = {g[1] for g in got}
    assert len(pids) == 2 and os.getpid() not in pids  # two actors, not this process
    assert len({(g[1], g[2]) for g in got}) == 2  # one factory call per actor, then reused for every shard
    # ray connections stay on the loopback: the node address of the private Ray
    assert ray.util.get_node_ip_address() == "127.0.0.1"


def test_worker_errors_reach_the_user_as_messages(tmp_path, capsys):
    csv = tmp_path / "p.csv"
    starter_pairs().frame.head(3).to_csv(csv, index=False)
    # a missing model: a message, no traceback; then an error raised inside an actor
    rc = main(
        [
            "bias-audit",
            "--model",
            str(tmp_path / "nope"),
            "--pairs",
            str(csv),
            "--out",
            str(tmp_path / "r.json"),
            "--quiet",
            *RAY,
        ]
    )
    assert rc == 2 and "Traceback" not in capsys.readouterr().err
    with pytest.raises(E.EngineError, match="ZeroDivisionError"):
        E.map_items(lambda: lambda part: [1 / 0], [1], E.Engine("ray", actors=1))


def _cells(out):
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))}


def test_audit_matrix_ray_equals_local_and_resumes(store, tiny_llama_dir, tmp_path, capsys):
    csv = tmp_path / "pairs.csv"
    starter_pairs().frame.iloc[::2].to_csv(csv, index=False)  # 36 pairs: two 32-pair shards
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps(FX.gold_doc()))
    seat = tmp_path / "seat"
    seat.mkdir()
    _write(seat / "sent-a.jsonl", _sets())
    _write(seat / "weat-b.jsonl", _sets())
    benches = f"crows:{csv},stereoset:{gold},seat:{seat}"
    common = [
        "audit-matrix",
        "--models",
        str(tiny_llama_dir),
        "--benchmarks",
        benches,
        "--n-boot",
        "300",
        "--n-samples",
        "300",
        "--quiet",
    ]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0, capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "ray"), *RAY]) == 0, capsys.readouterr().err
    loc, dis = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert loc.keys() == dis.keys() and len(loc) == 3
    for name in loc:
        a, b = loc[name], dis[name]
        if "pairs" in a:  # CrowS-Pairs
            assert len(a["pairs"]) == 36
            for x, y in zip(a["pairs"], b["pairs"], strict=True):
                assert x["sent_more"] == y["sent_more"]
                assert abs(x["score_more"] - y["score_more"]) <= 1e-6
                assert abs(x["score_less"] - y["score_less"]) <= 1e-6
            assert a["summary"] == b["summary"]
        elif "tests" in a:  # SEAT
            assert [t["file"] for t in a["tests"]] == [t["file"] for t in b["tests"]] == ["sent-a", "weat-b"]
            for t, u in zip(a["tests"], b["tests"], strict=True):
                for la, lb in zip(t["layers"], u["layers"], strict=True):
                    assert la["effect_size"] == pytest.approx(lb["effect_size"], abs=1e-6)
                    assert la["p_value"] == lb["p_value"]
        else:  # StereoSet
            assert {k: a[k] for k in ("intrasentence", "intersentence", "overall", "ci95")} == {
                k: b[k] for k in ("intrasentence", "intersentence", "overall", "ci95")
            }
    summary = pd.read_csv(tmp_path / "ray" / "summary.csv")
    assert list(summary["benchmark"]) == ["crows", "stereoset", "seat", "seat"]
    crows = summary.iloc[0]
    assert crows["ci95_low"] <= crows["value"] <= crows["ci95_high"] and crows["n"] == 36
    assert "Audit matrix" in (tmp_path / "ray" / "summary.html").read_text()
    n_runs = len(RS.list_runs())
    assert n_runs == 6  # every cell recorded in the run store
    # resume: a killed matrix leaves some cells; a rerun only runs the missing one
    victim = next(p for p in (tmp_path / "ray" / "cells").glob("*.json") if "stereoset" in p.name)
    victim.write_text('{"half-written')
    assert main([*common, "--out", str(tmp_path / "ray"), *RAY]) == 0
    err = capsys.readouterr().err
    assert err.count("done earlier, skipped") == 2 and len(RS.list_runs()) == n_runs + 1
    assert _cells(tmp_path / "ray")[victim.name]["overall"] == dis[victim.name]["overall"]
