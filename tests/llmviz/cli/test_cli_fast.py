"""CLI ``--precision`` of bias-audit (CrowS-Pairs and StereoSet) and seat: the bf16 report carries its mode and its
deviation (checked against float32 scores computed here), the summary line says it, and where the mode is off
the command prints the one-line reason and exits 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmviz import precision as PR
from llmviz.bias import pairs as P
from llmviz.bias import stereoset as SS
from llmviz.bias.pairs_data import file_sha256, starter_pairs
from llmviz.cli import main
from tests.llmviz.bias.test_seat import _sets, _write

WHY = "The fast mode is off: no bf16 units on this test CPU."


@pytest.fixture
def bf16_off(monkeypatch):
    monkeypatch.setattr(PR, "bf16_support", lambda: (False, WHY))


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_fast") / "pairs.csv"
    starter_pairs().frame.iloc[::8].to_csv(path, index=False)  # 9 rows
    return path


def _audit(model, csv, out, *extra):
    return [
        "bias-audit",
        "--model",
        str(model),
        "--pairs",
        str(csv),
        "--out",
        str(out),
        "--n-boot",
        "100",
        "--quiet",
    ] + [*extra]


def _seat(model, tests, out, *extra):
    return ["seat", "--model", str(model), "--tests", str(tests), "--out", str(out), "--n-samples", "50", "--quiet"] + [
        *extra
    ]


def _stereoset(model, out, *extra):
    return [
        "bias-audit",
        "--benchmark",
        "stereoset",
        "--model",
        str(model),
        "--data",
        str(SS.ILLUSTRATIVE_FILE),
        "--out",
        str(out),
        "--limit",
        "3",
        "--n-boot",
        "100",
        "--quiet",
        *extra,
    ]


def test_bias_audit_bf16_writes_its_mode_and_deviation(
    store, tiny_mlm, tiny_mlm_dir, small_csv, tmp_path, bf16_on, capsys
):
    out = tmp_path / "fast.json"
    assert main(_audit(tiny_mlm_dir, small_csv, out, "--precision", "bf16", "--out", str(tmp_path / "f.html"))) == 0
    printed = capsys.readouterr().out
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["parameters"]["precision"] == "bf16" and rep["precision"] == "bf16"
    # the deviation: the first pair's largest change of score against float32 scores computed here
    frame = pd.read_csv(small_csv)
    ref = P.score_pairs(tiny_mlm, frame, batch_size=32)
    first = rep["pairs"][0]
    want = max(abs(first["score_more"] - ref.score_more[0]), abs(first["score_less"] - ref.score_less[0]))
    assert rep["deviation"] == pytest.approx(want, abs=5e-5) and rep["deviation"] > 1e-4
    assert f"bf16: max |Δ score| {rep['deviation']:.3g} nats on the first pair against float32" in printed
    assert "max |Δ score|" in (tmp_path / "f.html").read_text(encoding="utf-8")


def test_bias_audit_default_is_exact_with_the_same_keys(store, tiny_mlm_dir, small_csv, tmp_path, capsys):
    out = tmp_path / "exact.json"
    assert main(_audit(tiny_mlm_dir, small_csv, out)) == 0
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["parameters"]["precision"] == "exact" and "precision" not in rep and "deviation" not in rep
    assert "bf16" not in capsys.readouterr().out


def test_resume_in_another_precision_is_one_line(store, tiny_mlm_dir, small_csv, tmp_path, bf16_on, capsys):
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    # a partial file of this data file and model scored in exact: its header has no precision key
    partial.write_text(json.dumps({"sha256": file_sha256(small_csv), "model": str(tiny_mlm_dir)}) + "\n")
    assert main(_audit(tiny_mlm_dir, small_csv, out, "--precision", "bf16", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "scored in exact precision, this run asks for bf16" in err


def test_stereoset_and_seat_bf16_reports(store, tiny_llama_dir, tiny_encoder_dir, tmp_path, bf16_on, capsys):
    out = tmp_path / "ss.json"
    assert main(_stereoset(tiny_llama_dir, out, "--precision", "bf16")) == 0, capsys.readouterr().err
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["parameters"]["precision"] == "bf16" and rep["precision"] == "bf16" and rep["deviation"] > 0
    assert f"bf16: max |Δ sentence score| {rep['deviation']:.3g}" in capsys.readouterr().out

    tests = _write(tmp_path / "sent-a.jsonl", _sets())
    out = tmp_path / "seat.json"
    assert main(_seat(tiny_encoder_dir, tests, out, "--precision", "bf16")) == 0, capsys.readouterr().err
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["parameters"]["precision"] == "bf16" and rep["precision"] == "bf16"
    assert rep["deviation"] == rep["tests"][0]["deviation"] > 0 and rep["tests"][0]["precision"] == "bf16"
    assert f"bf16: max 1 − cosine {rep['deviation']:.3g}" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["crows", "stereoset", "seat"])
def test_mode_off_prints_the_reason_in_one_line(which, store, small_csv, tmp_path, bf16_off, capsys):
    missing = tmp_path / "no-such-model"  # the check comes before the model would be looked for
    out = tmp_path / "r.json"
    argv = {
        "crows": lambda: _audit(missing, small_csv, out, "--precision", "bf16"),
        "stereoset": lambda: _stereoset(missing, out, "--precision", "bf16"),
        "seat": lambda: _seat(missing, _write(tmp_path / "t.jsonl", _sets()), out, "--precision", "bf16"),
    }[which]()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {WHY}\n" and captured.out == ""
    assert not out.exists() and not (tmp_path / "r.json.partial.jsonl").exists()


def test_help_explains_the_modes(capsys):
    for cmd in ("bias-audit", "seat"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--precision {exact,bf16}" in text and "AVX-512 BF16 or AMX" in text
        assert "the mode for audits" in text and "first item" in text


def test_audit_matrix_takes_the_precision(store, tiny_mlm_dir, small_csv, tmp_path, bf16_on, capsys, monkeypatch):
    out = tmp_path / "m"
    argv = ["audit-matrix", "--models", str(tiny_mlm_dir), "--benchmarks", f"crows:{small_csv}", "--out", str(out)]
    assert main([*argv, "--n-boot", "50", "--quiet", "--precision", "bf16"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["precision"]) == ["bf16"]
    assert "bf16: max |Δ score|" in capsys.readouterr().out  # the cell's summary line says so
    monkeypatch.setattr(PR, "bf16_support", lambda: (False, WHY))
    assert main([*argv[:-1], str(tmp_path / "m2"), "--precision", "bf16"]) == 2
    assert capsys.readouterr().err == f"error: {WHY}\n" and not (tmp_path / "m2").exists()
