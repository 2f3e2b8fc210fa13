"""The audits in the fast (bf16) mode: ``precision`` in the settings, checked before any model work, carried into
the parameters, and the report's deviation from float32 checked against an exact run's own numbers (computed
independently of the fast run). A CrowS-Pairs partial file is only resumed in the precision it was scored in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmviz import precision as PR
from llmviz.audits import crows as C
from llmviz.audits import seat as S
from llmviz.audits import stereoset as A
from llmviz.audits.common import AuditInterrupted
from llmviz.bias import pairs as P
from llmviz.bias import seat as SEAT
from llmviz.bias import stereoset as SS
from llmviz.bias import weat as W
from llmviz.bias.pairs_data import starter_pairs
from llmviz.errors import InputError, LlmvizError
from llmviz.runs import store as RS
from tests.llmviz.audits.test_audits import _cfg
from tests.llmviz.bias.test_seat import _sets, _write


def _first_pair_change(fast: dict, exact: dict) -> float:
    return max(abs(fast["score_more"] - exact["score_more"]), abs(fast["score_less"] - exact["score_less"]))


@pytest.mark.parametrize("which", ["tiny_mlm", "tiny_llama"])
def test_crows_bf16_reports_its_deviation_against_an_exact_run(which, store, pairs_csv, tmp_path, bf16_on, request):
    loaded = request.getfixturevalue(which)
    model_dir = request.getfixturevalue(f"{which}_dir")
    exact = C.run_crows(_cfg(model_dir, pairs_csv, tmp_path / "exact.json"), loaded=loaded)
    fast = C.run_crows(_cfg(model_dir, pairs_csv, tmp_path / "fast.json", precision="bf16"), loaded=loaded)
    assert exact.parameters["precision"] == "exact" and fast.parameters["precision"] == "bf16"
    # exact reports keep today's keys; a fast one adds its mode and deviation at the top level
    assert "precision" not in exact.to_dict() and "deviation" not in exact.to_dict()
    doc = fast.to_dict()
    assert doc["precision"] == "bf16" and doc["deviation"] == fast.deviation
    # the deviation is the first pair's largest change of score against the exact run's own first pair
    assert fast.deviation == pytest.approx(_first_pair_change(fast.pairs[0], exact.pairs[0]), abs=5e-5)
    assert fast.deviation > 1e-4  # large enough for the check above to tell a wrong pair or a zero
    # it really ran in bfloat16: scores moved, by little, and as the library's own fast scorer moves them
    more = np.array([[r["score_more"], r["score_less"]] for r in fast.pairs])
    ref = np.array([[r["score_more"], r["score_less"]] for r in exact.pairs])
    assert 0 < np.abs(more - ref).max() < 0.05 * np.abs(ref).max()
    lib = P.score_pairs(loaded, starter_pairs().frame.iloc[::6], batch_size=8, precision="bf16")
    np.testing.assert_allclose(more, np.c_[lib.score_more, lib.score_less], atol=1e-4)
    assert "bf16: max |Δ score|" in fast.summary_line("f.json") and "float32" in fast.summary_line("f.json")
    assert "bf16" not in exact.summary_line("e.json")
    fast.write([tmp_path / "fast.json", tmp_path / "fast.html"])
    written = json.loads((tmp_path / "fast.json").read_text(encoding="utf-8"))
    assert written["precision"] == "bf16" and written["deviation"] == pytest.approx(fast.deviation)
    assert "max |Δ score|" in (tmp_path / "fast.html").read_text(encoding="utf-8")
    stored = RS.get_run(fast.run_id, with_items=False)["parameters"]  # the run store keeps both, as the page does
    assert stored["precision"] == "bf16" and stored["deviation"] == pytest.approx(fast.deviation)
    assert "deviation" not in RS.get_run(exact.run_id, with_items=False)["parameters"]


def test_crows_resume_refuses_a_partial_file_of_another_precision(store, tiny_mlm_dir, pairs_csv, tmp_path, bf16_on):
    def ctrl_c(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    out = tmp_path / "r.json"
    cfg = _cfg(tiny_mlm_dir, pairs_csv, out)
    with pytest.raises(AuditInterrupted):
        C.run_crows(cfg, ctrl_c)
    assert "precision" not in json.loads(cfg.partial.read_text().splitlines()[0])  # exact: the header as before
    with pytest.raises(LlmvizError, match="scored in exact precision, this run asks for bf16") as err:
        C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, out, resume=True, precision="bf16"))
    assert "\n" not in str(err.value) and "delete it or drop --resume" in str(err.value)

    fast_whole = C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, tmp_path / "whole.json", precision="bf16"))
    cfg = _cfg(tiny_mlm_dir, pairs_csv, out, precision="bf16")  # not resuming: the exact partial file goes
    with pytest.raises(AuditInterrupted) as caught:
        C.run_crows(cfg, ctrl_c)
    assert caught.value.n == 4
    assert json.loads(cfg.partial.read_text().splitlines()[0])["precision"] == "bf16"
    with pytest.raises(LlmvizError, match="scored in bf16 precision, this run asks for exact") as err:
        C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, out, resume=True))
    assert "\n" not in str(err.value)
    resumed = C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, out, resume=True, precision="bf16"))
    assert resumed.pairs == fast_whole.pairs and resumed.deviation == fast_whole.deviation


def test_stereoset_audit_bf16_carries_precision_and_deviation(store, tiny_llama, tiny_llama_dir, bf16_on):
    def cfg(**kw):
        return A.StereoSetConfig(str(tiny_llama_dir), str(SS.ILLUSTRATIVE_FILE), limit=3, n_boot=50, batch_size=8, **kw)

    exact = A.run_stereoset(cfg(), loaded=tiny_llama)
    fast = A.run_stereoset(cfg(precision="bf16"), loaded=tiny_llama)
    assert exact.parameters["precision"] == "exact" and "precision" not in exact.to_dict()
    doc = fast.to_dict()
    assert doc["parameters"]["precision"] == "bf16" and doc["precision"] == "bf16"
    first = [sid for sid, _ in fast.run.data.sentence_items()[: SS.FIRST_ITEMS]]
    want = max(abs(fast.run.scores[s] - exact.run.scores[s]) for s in first)
    assert doc["deviation"] == pytest.approx(want, abs=1e-5) and doc["deviation"] > 0
    moved = max(abs(fast.run.scores[s] - exact.run.scores[s]) for s in exact.run.scores)
    assert 0 < moved < 0.05 * max(abs(v) for v in exact.run.scores.values())
    assert "bf16: max |Δ sentence score|" in fast.summary_line("r.json")
    assert "bf16" not in exact.summary_line("r.json")
    assert RS.get_run(fast.run_id, with_items=False)["parameters"]["deviation"] == pytest.approx(doc["deviation"])


def test_seat_audit_bf16_carries_precision_and_deviation(store, tiny_encoder_dir, tmp_path, bf16_on):
    from llmviz.models.loading import load_model

    folder = tmp_path / "seat"
    folder.mkdir()
    sets_b = {k: (c, list(reversed(ex))) for k, (c, ex) in _sets().items()}
    _write(folder / "a.jsonl", _sets())
    _write(folder / "b.jsonl", sets_b)  # another first item, another deviation
    enc = load_model(str(tiny_encoder_dir))
    exact = S.run_seat(S.SeatConfig(str(tiny_encoder_dir), (str(folder),), n_samples=50), loaded=enc)
    fast = S.run_seat(S.SeatConfig(str(tiny_encoder_dir), (str(folder),), n_samples=50, precision="bf16"), loaded=enc)
    assert exact.parameters["precision"] == "exact" and "precision" not in exact.to_dict()
    assert all("deviation" not in t for t in exact.tests)
    doc = fast.to_dict()
    assert doc["parameters"]["precision"] == "bf16" and doc["precision"] == "bf16"
    want = []
    for t in SEAT.load_seat_tests([folder]):  # 1 − cosine of each test's first item, bf16 twin vs float32
        first = t.items("targ1")[0]
        a = W.embed_texts(PR.on_precision(enc, "bf16"), [first], "mean")[:, 0]
        b = W.embed_texts(enc, [first], "mean")[:, 0]
        want.append(float(np.max(1 - (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)))))
    got = [t["deviation"] for t in doc["tests"]]
    assert all(t["precision"] == "bf16" for t in doc["tests"])
    assert got == pytest.approx(want, abs=1e-9) and doc["deviation"] == max(got) > 0
    assert "bf16: max 1 − cosine" in fast.summary_line("s.json") and "bf16" not in exact.summary_line("s.json")
    assert "bf16: max 1 − cosine" in fast.html() and "cosine" not in exact.html()
    assert RS.get_run(fast.run_id, with_items=False)["parameters"]["deviation"] == pytest.approx(max(got))


def test_api_audits_pass_the_precision_through(store, tiny_mlm_dir, pairs_csv, bf16_on):
    import llmviz as lv

    m = lv.load(str(tiny_mlm_dir))
    v = lv.audit.crows(m, pairs=pairs_csv, limit=3, precision="bf16")
    assert v.result.precision == "bf16" and v.result.deviation > 0
    assert v.result.parameters["precision"] == "bf16"


def test_mode_off_is_one_error_before_any_model_work(store, tmp_path, pairs_csv, monkeypatch):
    monkeypatch.setattr(PR, "bf16_support", lambda: (False, "The fast mode is off: no bf16 units here."))
    seat_file = _write(tmp_path / "t.jsonl", _sets())
    missing = str(tmp_path / "no-such-model")  # loading it would fail with another error
    for run, cfg in [
        (C.run_crows, C.CrowsConfig(missing, str(pairs_csv), (str(tmp_path / "r.json"),), precision="bf16")),
        (A.run_stereoset, A.StereoSetConfig(missing, str(SS.ILLUSTRATIVE_FILE), precision="bf16")),
        (S.run_seat, S.SeatConfig(missing, (str(seat_file),), precision="bf16")),
    ]:
        with pytest.raises(InputError, match="^The fast mode is off: no bf16 units here.$"):
            run(cfg)
    with pytest.raises(InputError, match="Unknown precision 'fp8'"):
        C.run_crows(C.CrowsConfig(missing, str(pairs_csv), (str(tmp_path / "r.json"),), precision="fp8"))
    assert not (tmp_path / "r.json.partial.jsonl").exists()


def test_matrix_in_bf16_keeps_its_cells_apart_from_exact_ones(store, tiny_mlm_dir, pairs_csv, tmp_path, bf16_on):
    """An audit matrix in the fast mode: each cell is the fast audit (its report carries precision and
    deviation), the summary says the mode per row, and an exact matrix's finished cells in the same folder are
    not taken for fast ones (nor the other way round); a fast matrix run again skips its own cells."""
    from llmviz.audits import matrix as M

    benches = tuple(M.parse_benchmarks(f"crows:{pairs_csv}"))
    out = tmp_path / "m"

    def run(precision):
        seen = []
        cfg = M.MatrixConfig((str(tiny_mlm_dir),), benches, out, n_boot=50, batch_size=8, precision=precision)
        res = M.run_matrix(cfg, on_cell=lambda k, n, cell, skipped: seen.append(skipped))
        return res, seen

    exact, seen = run("exact")
    assert seen == [False] and exact.rows[0]["precision"] == "exact"
    fast, seen = run("bf16")
    assert seen == [False]  # the exact cell is not reused
    assert fast.rows[0]["precision"] == "bf16"
    assert "bf16" in (out / "summary.csv").read_text(encoding="utf-8")
    cells = {json.loads(p.read_text())["matrix_cell"].get("precision", "exact"): json.loads(p.read_text())
             for p in (out / "cells").glob("*.json")}  # fmt: skip
    assert set(cells) == {"exact", "bf16"}
    assert "deviation" not in cells["exact"] and cells["bf16"]["precision"] == "bf16"
    alone = C.run_crows(_cfg(tiny_mlm_dir, pairs_csv, tmp_path / "alone.json", precision="bf16"))
    assert cells["bf16"]["deviation"] == pytest.approx(alone.deviation, abs=1e-6)  # the cell is the fast audit
    assert [r["score_more"] for r in cells["bf16"]["pairs"]] == pytest.approx([r["score_more"] for r in alone.pairs])
    _, seen = run("bf16")
    assert seen == [True]  # its own finished cell is skipped
    _, seen = run("exact")
    assert seen == [True]
    assert "bf16" not in (out / "summary.csv").read_text(encoding="utf-8")  # the exact matrix's summary


def test_matrix_mode_off_is_one_error_before_any_cell(store, tiny_mlm_dir, pairs_csv, tmp_path, monkeypatch):
    from llmviz.audits import matrix as M

    monkeypatch.setattr(PR, "bf16_support", lambda: (False, "The fast mode is off: no bf16 units here."))
    cfg = M.MatrixConfig(("no/such/model",), tuple(M.parse_benchmarks(f"crows:{pairs_csv}")), tmp_path / "m",
                         precision="bf16")  # fmt: skip
    with pytest.raises(InputError, match="no bf16 units"):
        M.run_matrix(cfg)
    assert not (tmp_path / "m").exists()
