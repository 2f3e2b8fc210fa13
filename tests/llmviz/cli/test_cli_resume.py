"""`bias-audit --resume` after any number of Ctrl-C (real SIGINT to a subprocess), a changed input file
refused, Ctrl-C's message and exit status 130, --limit < 1, failed runs leave no header-only partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from llmviz.bias.pairs_data import file_sha256, starter_pairs
from llmviz.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def csv200(tmp_path_factory):
    base = starter_pairs().frame
    rows = [base.iloc[i % len(base)] for i in range(200)]
    frame = pd.DataFrame(rows).reset_index(drop=True)
    frame["sent_more"] = [f"{s} ({i})" for i, s in enumerate(frame["sent_more"])]  # 200 distinct pairs
    path = tmp_path_factory.mktemp("resume") / "pairs200.csv"
    frame.to_csv(path, index=False)
    return path


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()] if path.exists() else []


def _run_until(args: list[str], partial: Path, min_lines: int | None, timeout: float = 240):
    """Start the CLI; once ``partial`` has at least ``min_lines`` lines send SIGINT (None: run to the end)."""
    # paced (0.1 s after each written chunk) so a SIGINT lands mid-run even on a quiet machine
    env = dict(os.environ, LLMVIZ_TESTING="1", LLMVIZ_TEST_PACE_S="0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmviz", "bias-audit", *args],
        cwd=ROOT,
        env=env,
        # a child inherits an ignored SIGINT (Ray's tests earlier in the session leave the pytest process so);
        # Python then installs no KeyboardInterrupt handler: give the CLI the default disposition a shell gives
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = time.monotonic()
    if min_lines is not None:
        while proc.poll() is None and time.monotonic() - start < timeout:
            if len(_lines(partial)) >= min_lines:
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _args(model, pairs, out, *extra):
    return [
        "--model",
        str(model),
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--chunk-rows",
        "5",
        "--batch-size",
        "8",
        "--n-boot",
        "100",
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_resume_after_repeated_interrupts_equals_one_run(tiny_mlm_dir, csv200, tmp_path):
    ref_out = tmp_path / "ref.json"
    assert main(["bias-audit", *_args(tiny_mlm_dir, csv200, ref_out)]) == 0
    ref = json.loads(ref_out.read_text())["pairs"]
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    seen = []
    for extra in [(), ("--resume",), ("--resume",)]:
        # interrupt each run a few chunks after it has started writing
        rc, _, err = _run_until(_args(tiny_mlm_dir, csv200, out, *extra), partial, len(_lines(partial)) + 11)
        assert rc == 130, err
        assert "Traceback" not in err
        n = len(_lines(partial)) - 1
        assert f"interrupted after {n} pairs; continue with --resume" in err
        seen.append(n)
    assert seen[0] < seen[1] < seen[2] < 200, seen
    header = [json.loads(ln) for ln in _lines(partial) if "sha256" in json.loads(ln)]
    assert len(header) == 1 and header[0]["sha256"] == file_sha256(csv200)  # header written once
    rc, _, err = _run_until(_args(tiny_mlm_dir, csv200, out, "--resume"), partial, None)
    assert rc == 0, err
    got = json.loads(out.read_text())["pairs"]
    assert len(got) == 200 and not partial.exists()
    assert [g["sent_more"] for g in got] == [r["sent_more"] for r in ref]  # no row skipped or repeated
    assert [g["score_more"] for g in got] == pytest.approx([r["score_more"] for r in ref], abs=1e-5)


def _partial_with(sha: str, model: str, records: list[dict], extra_lines: list[str] = ()) -> str:
    lines = [json.dumps({"sha256": sha, "model": model})] + [json.dumps(r) for r in records] + list(extra_lines)
    return "\n".join(lines) + "\n"


def test_resume_survives_a_duplicate_header_and_a_torn_last_line(tiny_mlm_dir, csv200, tmp_path):
    """What an older build left behind (a second header after an interrupt before the first pair; a
    line cut by Ctrl-C mid-write) is read correctly: no header counted as a pair, no row skipped."""
    small = tmp_path / "small.csv"
    pd.read_csv(csv200).head(12).to_csv(small, index=False)
    ref_out = tmp_path / "ref.json"
    assert main(["bias-audit", *_args(tiny_mlm_dir, small, ref_out)]) == 0
    ref = json.loads(ref_out.read_text())["pairs"]
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    head = json.dumps({"sha256": file_sha256(small), "model": str(tiny_mlm_dir)})
    partial.write_text(
        "\n".join([head, head] + [json.dumps(r) for r in ref[:4]]) + "\n" + '{"sent_more": "cut', encoding="utf-8"
    )
    assert main(["bias-audit", *_args(tiny_mlm_dir, small, out, "--resume")]) == 0
    got = json.loads(out.read_text())["pairs"]
    assert [g["sent_more"] for g in got] == [r["sent_more"] for r in ref]
    assert [g["score_more"] for g in got] == pytest.approx([r["score_more"] for r in ref], abs=1e-5)


def test_resume_refuses_a_changed_input_file(tiny_mlm_dir, csv200, tmp_path, capsys):
    data = tmp_path / "p.csv"
    pd.read_csv(csv200).head(6).to_csv(data, index=False)
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    rec = {
        "sent_more": "a",
        "sent_less": "b",
        "stereo_antistereo": "stereo",
        "bias_type": "age",
        "score_more": -1.0,
        "score_less": -2.0,
    }
    partial.write_text(_partial_with(file_sha256(data), str(tiny_mlm_dir), [rec]), encoding="utf-8")
    data.write_text(data.read_text(encoding="utf-8").replace("(1)", "(one)"), encoding="utf-8")  # edited
    assert main(["bias-audit", *_args(tiny_mlm_dir, data, out, "--resume")]) == 2
    err = capsys.readouterr().err
    assert "changed" in err and "--resume" in err
    assert partial.exists()  # it holds scored rows: kept


def test_limit_below_one_has_its_own_message(tiny_mlm_dir, csv200, tmp_path, capsys):
    for bad in ("0", "-3"):
        assert main(["bias-audit", *_args(tiny_mlm_dir, csv200, tmp_path / "r.json", "--limit", bad)]) == 2
        err = capsys.readouterr().err
        assert "--limit must be at least 1" in err and "no pairs" not in err
    assert not (tmp_path / "r.json.partial.jsonl").exists()


def test_failed_run_removes_a_partial_without_scored_rows(tiny_mlm_dir, tmp_path, capsys):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence,label\na,b\n", encoding="utf-8")
    out = tmp_path / "r.json"
    assert main(["bias-audit", "--model", str(tiny_mlm_dir), "--pairs", str(wrong), "--out", str(out), "--quiet"]) == 2
    assert "lacks the column(s)" in capsys.readouterr().err
    assert not (tmp_path / "r.json.partial.jsonl").exists()


@pytest.mark.slow
def test_ctrl_c_before_the_first_pair_leaves_nothing_to_resume(tiny_mlm_dir, csv200, tmp_path):
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    rc, _, err = _run_until(_args(tiny_mlm_dir, csv200, out), partial, 1)  # as soon as the header is there
    assert rc == 130 and "Traceback" not in err, err
    if "interrupted after 0 pairs" in err:
        assert not partial.exists()


def _scores(path: Path) -> list[tuple[str, float, float]]:
    return [(p["sent_more"], p["score_more"], p["score_less"]) for p in json.loads(path.read_text())["pairs"]]


def _default_chunk_args(model, pairs, out, *extra):
    """``_args`` without --chunk-rows: the default 256 rows, more than the file holds."""
    args = _args(model, pairs, out, *extra)
    i = args.index("--chunk-rows")
    return args[:i] + args[i + 2 :]


@pytest.mark.slow
def test_ctrl_c_with_the_default_chunk_rows_keeps_what_was_scored(tiny_mlm_dir, csv200, tmp_path):
    """Issue 24: with --chunk-rows 256 a 60-pair run interrupted mid-way kept 0 pairs. Each finished group of
    pairs (--batch-size 8: 4 pairs) is saved at once, and the resumed run's scores equal one run's exactly."""
    data = tmp_path / "p60.csv"
    pd.read_csv(csv200).head(60).to_csv(data, index=False)
    assert main(["bias-audit", *_default_chunk_args(tiny_mlm_dir, data, tmp_path / "ref.json")]) == 0
    out = tmp_path / "r.json"
    partial = tmp_path / "r.json.partial.jsonl"
    rc, _, err = _run_until(_default_chunk_args(tiny_mlm_dir, data, out), partial, 1 + 12)
    n = len(_lines(partial)) - 1
    assert rc == 130 and f"interrupted after {n} pairs" in err, err
    assert 12 <= n < 60 and n % 4 == 0, n  # whole groups of 4, kept as they finished
    rc, _, err = _run_until(_default_chunk_args(tiny_mlm_dir, data, out, "--resume"), partial, None)
    assert rc == 0, err
    assert _scores(out) == _scores(tmp_path / "ref.json")  # exactly: the same pairs shared each forward pass


def test_resume_inside_a_group_scores_like_one_run(tiny_mlm_dir, csv200, tmp_path):
    """A partial file that ends inside a group (a torn write, an older build) is continued with the groups of
    an uninterrupted run: per-pair scores are equal, not only within 1e-5."""
    data = tmp_path / "p60.csv"
    pd.read_csv(csv200).head(60).to_csv(data, index=False)
    ref_out = tmp_path / "ref.json"
    assert main(["bias-audit", *_default_chunk_args(tiny_mlm_dir, data, ref_out)]) == 0
    ref = json.loads(ref_out.read_text())["pairs"]
    out = tmp_path / "r.json"
    (tmp_path / "r.json.partial.jsonl").write_text(  # 13 pairs: the fourth group of 4 is cut after one pair
        _partial_with(file_sha256(data), str(tiny_mlm_dir), ref[:13]), encoding="utf-8"
    )
    assert main(["bias-audit", *_default_chunk_args(tiny_mlm_dir, data, out, "--resume")]) == 0
    assert _scores(out) == _scores(ref_out)


def test_chunk_rows_do_not_change_the_scores(tiny_mlm_dir, csv200, tmp_path):
    data = tmp_path / "p40.csv"
    pd.read_csv(csv200).head(40).to_csv(data, index=False)
    got = []
    for rows in ("3", "5", "256"):
        out = tmp_path / f"c{rows}.json"
        args = _default_chunk_args(tiny_mlm_dir, data, out, "--chunk-rows", rows)
        assert main(["bias-audit", *args]) == 0
        got.append(_scores(out))
    assert got[0] == got[1] == got[2]


def test_batch_size_effect_is_documented_and_small(tiny_mlm_dir, csv200, tmp_path, capsys):
    """Another --batch-size groups and pads sentences differently: float32 sums move by ~1e-5. The CLI's help
    and the README say so; on the tiny model the scores stay that close."""
    with pytest.raises(SystemExit):
        main(["bias-audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1e-5" in text and "float32" in text and "scores do not depend on it" in text
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    section = readme[readme.index("## Batch bias audit") : readme.index("## Published bias benchmarks")]
    assert "--batch-size" in section and "1e-5" in section and "--chunk-rows" in section
    data = tmp_path / "p20.csv"
    pd.read_csv(csv200).head(20).to_csv(data, index=False)
    runs = []
    for batch in ("2", "32"):
        args = _default_chunk_args(tiny_mlm_dir, data, tmp_path / f"b{batch}.json")
        args[args.index("--batch-size") + 1] = batch
        assert main(["bias-audit", *args]) == 0
        runs.append(_scores(tmp_path / f"b{batch}.json"))
    for (s1, m1, l1), (s2, m2, l2) in zip(*runs, strict=True):
        assert s1 == s2 and m1 == pytest.approx(m2, abs=1e-4) and l1 == pytest.approx(l2, abs=1e-4)
