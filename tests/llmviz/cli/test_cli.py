"""`python -m llmviz bias-audit`: report layout, scores equal the library's, resume, input errors."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from llmviz.bias import pairs as P
from llmviz.bias.pairs_data import file_sha256, starter_pairs
from llmviz.cli import main


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "pairs.csv"
    starter_pairs().frame.iloc[::8].to_csv(path, index=False)  # 9 rows, one per bias type
    return path


def test_audit_writes_complete_report(tiny_mlm, tiny_mlm_dir, small_csv, tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(
        [
            "bias-audit",
            "--model",
            str(tiny_mlm_dir),
            "--pairs",
            str(small_csv),
            "--out",
            str(out),
            "--out",
            str(tmp_path / "r.csv"),
            "--out",
            str(tmp_path / "r.html"),
            "--chunk-rows",
            "4",
            "--batch-size",
            "8",
            "--n-boot",
            "500",
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert set(rep) >= {"summary", "pairs", "model", "versions", "data", "date", "parameters", "method"}
    frame = pd.read_csv(small_csv)
    ref = P.score_pairs(tiny_mlm, frame)
    assert len(rep["pairs"]) == len(frame) == rep["summary"]["n"]
    for row, more, less in zip(rep["pairs"], ref.score_more, ref.score_less):
        assert set(row) == {"sent_more", "sent_less", "stereo_antistereo", "bias_type", "score_more", "score_less"}
        assert row["score_more"] == pytest.approx(more, abs=1e-5) and row["score_less"] == pytest.approx(less, abs=1e-5)
    s = rep["summary"]
    assert s["pct_stereotype"] == pytest.approx(100 * (ref.score_more > ref.score_less).mean())
    assert s["ci95"][0] <= s["pct_stereotype"] <= s["ci95"][1] and len(s["by_bias_type"]) == 9
    assert rep["data"]["sha256"] == file_sha256(small_csv) and rep["method"] == "mlm_pll"
    assert rep["model"]["kind"] == "masked_lm" and "torch" in rep["versions"]
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(frame)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Bias audit" in html and '<script src="http' not in html  # plotly inlined: works offline
    assert not (tmp_path / "report.json.partial.jsonl").exists()


def test_resume_reuses_finished_rows(tiny_mlm_dir, small_csv, tmp_path):
    first = tmp_path / "a.json"
    assert (
        main(
            [
                "bias-audit",
                "--model",
                str(tiny_mlm_dir),
                "--pairs",
                str(small_csv),
                "--out",
                str(first),
                "--n-boot",
                "200",
                "--quiet",
            ]
        )
        == 0
    )
    full = json.loads(first.read_text())["pairs"]
    out = tmp_path / "b.json"
    partial = tmp_path / "b.json.partial.jsonl"
    planted = [dict(r, score_more=999.0) for r in full[:5]]  # as if an earlier run had scored 5 rows
    partial.write_text(
        "\n".join(json.dumps(x) for x in [{"sha256": file_sha256(small_csv), "model": str(tiny_mlm_dir)}] + planted)
        + "\n"
    )
    assert (
        main(
            [
                "bias-audit",
                "--model",
                str(tiny_mlm_dir),
                "--pairs",
                str(small_csv),
                "--out",
                str(out),
                "--chunk-rows",
                "3",
                "--resume",
                "--n-boot",
                "200",
                "--quiet",
            ]
        )
        == 0
    )
    got = json.loads(out.read_text())["pairs"]
    assert [r["score_more"] for r in got[:5]] == [999.0] * 5
    assert [r["score_more"] for r in got[5:]] == pytest.approx([r["score_more"] for r in full[5:]], abs=1e-6)


def test_cli_input_errors(tiny_mlm_dir, tmp_path, capsys):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence,label\na,b\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "sent_more,sent_less,stereo_antistereo,bias_type\nCaf\xe9 x,Caf\xe9 y,stereo,age\n".encode("latin-1")
    )
    base = ["bias-audit", "--model", str(tiny_mlm_dir), "--quiet"]
    assert main(base + ["--pairs", str(wrong), "--out", str(tmp_path / "r.json")]) == 2
    assert "lacks the column(s) sent_more" in capsys.readouterr().err
    assert main(base + ["--pairs", str(latin), "--out", str(tmp_path / "r.json")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(base + ["--pairs", str(wrong), "--out", str(tmp_path / "r.xlsx")]) == 2
    assert "Unknown report format" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "llmviz", "bias-audit", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--pairs" in out.stdout
