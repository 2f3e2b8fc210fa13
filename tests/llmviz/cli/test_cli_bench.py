"""CLI: stereoset-eval, bias-audit --benchmark stereoset, seat, runs — exact flags and report layouts."""

import json

import pytest

from llmviz.bias import stereoset as SS
from llmviz.cli import main
from llmviz.runs import store as RS
from tests.fixtures import stereoset_fixtures as FX
from tests.llmviz.bias.test_seat import _sets, _write

ILLUSTRATIVE = str(SS.ILLUSTRATIVE_FILE)
METRICS = {"Count", "LM Score", "SS Score", "ICAT Score"}


def _files(tmp_path):
    gold, pred = tmp_path / "gold.json", tmp_path / "pred.json"
    gold.write_text(json.dumps(FX.gold_doc()))
    pred.write_text(json.dumps(FX.predictions_doc()))
    return gold, pred


def test_stereoset_eval_layout_and_numbers(store, tmp_path, capsys):
    gold, pred = _files(tmp_path)
    out = tmp_path / "report.json"
    assert (
        main(["stereoset-eval", "--gold", str(gold), "--predictions", str(pred), "--out", str(out), "--n-boot", "300"])
        == 0
    ), capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert set(rep) >= {
        "intrasentence",
        "intersentence",
        "overall",
        "ci95",
        "model",
        "data",
        "versions",
        "date",
        "parameters",
        "run_id",
    }
    assert set(rep["intrasentence"]) == {"gender", "race", "overall"} and set(rep["overall"]) == METRICS
    n, lm, ss, icat = FX.EXPECTED["overall"]
    assert rep["overall"]["ICAT Score"] == pytest.approx(icat) and rep["overall"]["Count"] == n
    assert rep["intrasentence"]["gender"]["SS Score"] == pytest.approx(25.0)
    assert set(rep["ci95"]["intrasentence"]["gender"]) == {"LM Score", "SS Score", "ICAT Score"}
    assert len(rep["data"]["sha256"]) == 64
    assert RS.get_run(rep["run_id"])["kind"] == "stereoset"


def test_bias_audit_stereoset_scores_and_predictions(store, tiny_llama, tiny_llama_dir, tmp_path, capsys):
    out, pred = tmp_path / "r.json", tmp_path / "p.json"
    assert (
        main(
            [
                "bias-audit",
                "--benchmark",
                "stereoset",
                "--model",
                str(tiny_llama_dir),
                "--data",
                ILLUSTRATIVE,
                "--out",
                str(out),
                "--predictions-out",
                str(pred),
                "--limit",
                "3",
                "--n-boot",
                "200",
                "--quiet",
            ]
        )
        == 0
    ), capsys.readouterr().err
    rep, preds = json.loads(out.read_text()), json.loads(pred.read_text())
    data = SS.illustrative_set().head(3)
    ref = SS.score_dataset(tiny_llama, data)
    assert len(preds["intrasentence"]) == len(preds["intersentence"]) == 9
    for split in SS.SPLITS:
        for rec in preds[split]:
            assert rec["score"] == pytest.approx(ref[rec["id"]], rel=1e-6)
    assert rep["intrasentence"]["overall"] == pytest.approx(SS.evaluate(data, ref)["intrasentence"]["overall"])
    assert rep["model"]["kind"] == "causal_lm" and rep["method"] == "generative_causal"
    assert rep["parameters"]["limit"] == 3
    run = RS.get_run(rep["run_id"])
    assert run["n_items"] == 6 and len(run["model_hash"]) == 64
    # re-scoring the written predictions with stereoset-eval gives the same numbers (published files work too)
    gold = tmp_path / "gold3.json"
    raw = json.loads(open(ILLUSTRATIVE).read())
    raw["data"] = {k: v[:3] for k, v in raw["data"].items()}
    gold.write_text(json.dumps(raw))
    out2 = tmp_path / "r2.json"
    assert (
        main(["stereoset-eval", "--gold", str(gold), "--predictions", str(pred), "--out", str(out2), "--n-boot", "200"])
        == 0
    )
    assert json.loads(out2.read_text())["overall"] == pytest.approx(rep["overall"])


def test_corrupt_store_still_writes_the_report(store, tmp_path, capsys):
    (store / "runs.sqlite").write_bytes(b"garbage" * 500)
    gold, pred = _files(tmp_path)
    out = tmp_path / "r.json"
    assert (
        main(["stereoset-eval", "--gold", str(gold), "--predictions", str(pred), "--out", str(out), "--n-boot", "100"])
        == 0
    )
    assert "corrupt" in capsys.readouterr().err
    assert json.loads(out.read_text())["run_id"] is None


def test_seat_cli_layout_and_runs_commands(store, tiny_encoder_dir, tmp_path, capsys):
    folder = tmp_path / "seat"
    folder.mkdir()
    _write(folder / "sent-a.jsonl", _sets())
    _write(folder / "weat-b.jsonl", _sets())
    out, html = tmp_path / "seat.json", tmp_path / "seat.html"
    for _ in range(2):
        assert (
            main(
                [
                    "seat",
                    "--model",
                    str(tiny_encoder_dir),
                    "--tests",
                    str(folder),
                    "--out",
                    str(out),
                    "--pooling",
                    "mean",
                    "--layers",
                    "all",
                    "--n-samples",
                    "500",
                    "--html",
                    str(html),
                    "--quiet",
                ]
            )
            == 0
        ), capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert set(rep) >= {"model", "pooling", "tests", "versions", "date"}
    assert [t["file"] for t in rep["tests"]] == ["sent-a", "weat-b"]
    t = rep["tests"][0]
    assert set(t) == {"file", "targ1", "targ2", "attr1", "attr2", "n", "layers"} and t["n"] == [3, 3, 3, 3]
    assert set(t["layers"][0]) == {"layer", "effect_size", "p_value", "exact"} and len(t["layers"]) == 3
    assert "layer 2" in html.read_text()
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in runs] == [2, 1]
    assert set(runs[0]) == {"id", "kind", "model", "data_sha256", "date", "summary"} and runs[0]["kind"] == "seat"
    assert main(["runs", "compare", "1", "2"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    assert cmp["same_data"] and cmp["overall"]["mean_diff"] == pytest.approx(0.0, abs=1e-9)
    assert set(cmp["by_group"]) == {"sent-a/X", "sent-a/Y", "weat-b/X", "weat-b/Y"}
    assert main(["runs", "export", "2", "--out", str(tmp_path / "e.json")]) == 0
    assert len(json.loads((tmp_path / "e.json").read_text())["items"]) == 12
    assert main(["runs", "show", "1"]) == 0 and '"kind": "seat"' in capsys.readouterr().out
    assert main(["runs", "list"]) == 0 and "seat" in capsys.readouterr().out
    assert main(["runs", "show", "77"]) == 2 and "No run with id 77" in capsys.readouterr().err


def test_benchmark_input_errors(store, tmp_path, capsys):
    assert main(["bias-audit", "--benchmark", "stereoset", "--model", "x", "--out", str(tmp_path / "r.json")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["bias-audit", "--model", "x", "--out", str(tmp_path / "r.json")]) == 2
    assert "--pairs" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": {}}')
    assert (
        main(["stereoset-eval", "--gold", str(bad), "--predictions", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    )
    assert "not a StereoSet file" in capsys.readouterr().err
