"""llmviz.audits: the audits called as library functions (typed settings in, report objects out), with
their progress callback, the interrupt that keeps scored pairs, resume, and the matrix calling them directly."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from llmviz.audits import crows as C
from llmviz.audits import matrix as M
from llmviz.audits import seat as S
from llmviz.audits.common import AuditInterrupted
from tests.llmviz.bias.test_seat import _sets, _write

ROOT = Path(__file__).resolve().parents[3]


def _cfg(model, pairs, out, **kw):
    return C.CrowsConfig(str(model), str(pairs), (str(out),), chunk_rows=4, batch_size=8, n_boot=50, **kw)


def test_run_crows_returns_a_report_and_hears_progress(store, tiny_mlm_dir, pairs_csv, tmp_path):
    calls = []
    cfg = _cfg(tiny_mlm_dir, pairs_csv, tmp_path / "r.json")
    report = C.run_crows(cfg, lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 12) and calls[-1] == (12, 12) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    doc = report.to_dict()
    assert list(doc) == [
        "summary",
        "pairs",
        "method",
        "model",
        "data",
        "date",
        "versions",
        "parameters",
        "notices",
        "run_id",
    ]
    assert doc["summary"]["n"] == len(doc["pairs"]) == 12 and doc["method"] == "mlm_pll" and report.run_id == 1
    assert cfg.partial.exists()  # kept until the report is written
    report.write([tmp_path / "r.json", tmp_path / "r.csv"])
    assert not cfg.partial.exists() and json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(doc))
    assert report.summary_line(tmp_path / "r.json").startswith("12 pairs · stereotype preferred in ")


def test_interrupt_keeps_scored_pairs_and_resume_finishes_the_same(store, tiny_mlm_dir, pairs_csv, tmp_path):
    whole = C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, tmp_path / "whole.json"))

    def ctrl_c(done, total):
        if done >= 8:  # the second chunk is scored, not yet written
            raise KeyboardInterrupt

    cfg = _cfg(tiny_mlm_dir, pairs_csv, tmp_path / "r.json")
    with pytest.raises(AuditInterrupted) as caught:
        C.run_crows(cfg, ctrl_c)
    assert caught.value.n == 4 and cfg.partial.exists()
    resumed = C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, tmp_path / "r.json", resume=True))
    assert resumed.pairs == whole.pairs and resumed.summary == whole.summary


def test_matrix_runs_the_audits_directly_and_skips_finished_cells(store, tiny_mlm_dir, pairs_csv, tmp_path):
    seat_dir = tmp_path / "seat"
    seat_dir.mkdir()
    _write(seat_dir / "sent-a.jsonl", _sets())
    benches = M.parse_benchmarks(f"crows:{pairs_csv},seat:{seat_dir}")
    cfg = M.MatrixConfig((str(tiny_mlm_dir),), tuple(benches), tmp_path / "m", n_boot=50, n_samples=50)
    seen, reports = [], []
    result = M.run_matrix(
        cfg,
        on_cell=lambda k, n, cell, skipped: seen.append((k, n, cell.bench.kind, skipped)),
        on_report=lambda cell, path, report: reports.append((cell.bench.kind, type(report))),
    )
    assert seen == [(1, 2, "crows", False), (2, 2, "seat", False)]
    assert reports == [("crows", C.CrowsReport), ("seat", S.SeatReport)]
    assert [r["benchmark"] for r in result.rows] == ["crows", "seat"] and result.csv.is_file()
    cells = sorted((tmp_path / "m" / "cells").glob("*.json"))
    assert [json.loads(p.read_text())["matrix_cell"]["benchmark"] for p in cells] == ["crows", "seat"]
    assert not list((tmp_path / "m" / "cells").glob("*.partial.jsonl"))
    seen.clear()
    again = M.run_matrix(cfg, on_cell=lambda k, n, cell, skipped: seen.append(skipped))
    assert seen == [True, True] and again.rows == result.rows


def test_audits_know_nothing_of_the_command_line():
    """No argparse Namespace and no llmviz.cli below llmviz/audits (the matrix used to fake CLI arguments)."""
    for path in (ROOT / "llmviz" / "audits").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "argparse" or n.startswith("llmviz.cli") for n in names), path.name
