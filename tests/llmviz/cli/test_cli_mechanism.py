"""``llmviz bias-trace`` (issue 22): the report's layout, the before/after runs that ``runs compare`` reads, an
interrupted trace resumed to the same result, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmviz.audits import mechanism as audit

ROOT = Path(__file__).resolve().parents[3]


def _cli(args, env):
    return subprocess.run(
        [sys.executable, "-m", "llmviz", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def env(tmp_path):
    e = {**os.environ, "LLMVIZ_HOME": str(tmp_path / "home")}
    e.pop("LLMVIZ_DB_URL", None)
    return e


def test_bias_trace_writes_the_report_and_two_comparable_runs(tiny_llama_dir, tmp_path, env):
    out = _cli(
        [
            "bias-trace",
            "--model",
            str(tiny_llama_dir),
            "--limit",
            "12",
            "--top-k",
            "4",
            "--n-boot",
            "200",
            "--neutral",
            "8",
            "--no-presets",
            "--out",
            str(tmp_path / "r.json"),
            "--out",
            str(tmp_path / "r.html"),
            "--quiet",
        ],
        env,
    )
    assert out.returncode == 0, out.stderr[-800:]
    assert "top components" in out.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    comps = doc["components"]
    assert len(comps) == 4 and [c["effect"] for c in comps] == sorted(c["effect"] for c in comps)
    for c in comps:
        assert set(c) >= {"kind", "layer", "head", "effect", "ci95", "screen_estimate"}
        assert (c["head"] is None) == (c["kind"] == "mlp")
    assert len(doc["items"]) == 12 and {i["split"] for i in doc["items"]} == {"find", "test"}
    assert all("S" in i for i in doc["items"])
    for method in ("ablate_top_k", "self_debias", "steering"):
        block = doc["correction"][method]
        assert set(block) >= {"k", "find", "test", "cost"} and set(block["find"]) >= {"before", "after"}
        assert set(block["test"]) >= {"before", "after", "diff_ci95"}
    assert doc["provenance"]["versions"]["torch"] and doc["data"]["sha256"]
    assert not (tmp_path / "r.json.partial.json").exists()
    html = (tmp_path / "r.html").read_text()
    assert "llmviz-provenance" in html and "<script src" not in html
    before, after = doc["run_ids"]["before"], doc["run_ids"]["after"]
    cmp = _cli(["runs", "compare", str(before), str(after)], env)
    assert cmp.returncode == 0 and '"n_shared": ' in cmp.stdout
    assert json.loads(cmp.stdout)["n_shared"] == sum(i["split"] == "test" for i in doc["items"])


def test_an_interrupted_trace_resumes_to_the_same_result(tiny_llama, tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path / "home"))
    base = dict(model=str(tiny_llama_dir), limit=8, top_k=9, n_boot=100, presets=False, n_neutral=4)
    full = audit.run_trace(audit.TraceAuditConfig(outs=(str(tmp_path / "full.json"),), **base), loaded=tiny_llama)
    cfg = audit.TraceAuditConfig(outs=(str(tmp_path / "cut.json"),), **base)

    def cut(done, total, stage):
        if stage == "exact":
            raise KeyboardInterrupt  # after the first group of 8 components was saved

    with pytest.raises(KeyboardInterrupt):
        audit.run_trace(cfg, progress=cut, loaded=tiny_llama)
    kept = json.loads(cfg.partial.read_text())["stages"]
    assert "s_all" in kept and "atp" in kept and sum(k.startswith("exact:") for k in kept) == 8
    resumed = audit.run_trace(audit.TraceAuditConfig(**{**cfg.__dict__, "resume": True}), loaded=tiny_llama)
    assert resumed.result.components == full.result.components
    other = audit.TraceAuditConfig(**{**cfg.__dict__, "resume": True, "split_seed": 5})
    with pytest.raises(audit.LlmvizError, match="belongs to another model, data file or settings"):
        audit.run_trace(other, loaded=tiny_llama)


def test_bad_arguments_get_one_line(tiny_llama_dir, tmp_path, env):
    out = _cli(["bias-trace", "--model", str(tiny_llama_dir), "--out", str(tmp_path / "r.csv")], env)
    assert out.returncode == 2 and "Traceback" not in out.stderr and ".json" in out.stderr
    out = _cli(
        ["bias-trace", "--model", str(tiny_llama_dir), "--benchmark", "stereoset", "--out", str(tmp_path / "r.json")],
        env,
    )
    errors = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "--data" in errors[0] and "Loading" not in out.stderr
