"""Issue 24, item 1: a user's file that breaks the parser (brackets nested 100,000 deep, an unclosed quote, a
field too long) makes the CLI print one ``error:`` line and exit 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmviz.cli import main
from tests.fixtures import stereoset_fixtures as FX
from tests.llmviz.test_safe_io import DEEP_SEAT, DEEP_STEREOSET

HEAD = "sent_more,sent_less,stereo_antistereo,bias_type\n"


def _one_error_line(err: str, words: str) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("error: ") and words in lines[-1], err
    assert "Traceback" not in err and "RecursionError" not in err and "C error" not in err, err


@pytest.mark.parametrize("which", ["--gold", "--predictions"])
def test_stereoset_eval_deep_json(which, store, tmp_path, capsys):
    deep, gold, pred = tmp_path / "deep.json", tmp_path / "gold.json", tmp_path / "pred.json"
    deep.write_bytes(DEEP_STEREOSET)
    gold.write_text(json.dumps(FX.gold_doc()))
    pred.write_text(json.dumps(FX.predictions_doc()))
    files = {"--gold": str(gold), "--predictions": str(pred), which: str(deep)}
    args = ["stereoset-eval", "--gold", files["--gold"], "--predictions", files["--predictions"]]
    assert main(args + ["--out", str(tmp_path / "o.json")]) == 2
    _one_error_line(capsys.readouterr().err, "nested too deeply")


def test_seat_deep_jsonl(store, tmp_path, capsys):
    deep = tmp_path / "deep.jsonl"
    deep.write_bytes(DEEP_SEAT)
    assert main(["seat", "--model", "x", "--tests", str(deep), "--out", str(tmp_path / "o.json"), "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "deep.jsonl is nested too deeply")


@pytest.mark.parametrize(
    "body,words",
    [
        ('"A x,B x,stereo,age\n', "unclosed quote near row 1"),
        ('"' + "a" * 200_000 + '",b,stereo,age\n', "a field is longer than 131,072 characters"),
    ],
)
def test_bias_audit_malformed_csv(body, words, store, tiny_mlm_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + body, encoding="utf-8")
    args = ["bias-audit", "--model", str(tiny_mlm_dir), "--pairs", str(bad), "--out", str(tmp_path / "r.json")]
    assert main(args + ["--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, words)


def test_deep_gold_in_a_real_process(tmp_path):
    """The installed entry point, not only main(): stderr holds one line, the exit status is 2."""
    deep = tmp_path / "deep.json"
    deep.write_bytes(DEEP_STEREOSET)
    out = subprocess.run(
        [sys.executable, "-m", "llmviz", "stereoset-eval", "--gold", str(deep), "--predictions", str(deep)]
        + ["--out", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
        env={"LLMVIZ_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "nested too deeply" in out.stderr, out.stderr
