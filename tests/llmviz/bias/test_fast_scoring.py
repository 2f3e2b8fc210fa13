"""The fast (bf16) mode of the bias scorers: CrowS-Pairs pairs, StereoSet sentences and SEAT embeddings run on
the model's bf16 twin, close to float32 but not equal, and each run reports its deviation on its own first
item, checked here against the float32 run's numbers (an independent computation of the same quantity)."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz import precision
from llmviz.bias import pairs as P
from llmviz.bias import seat as SEAT
from llmviz.bias import stereoset as SS
from llmviz.bias import weat as W
from llmviz.bias.pairs_data import starter_pairs
from llmviz.errors import InputError
from tests.llmviz.bias.test_seat import _sets, _write


@pytest.fixture(scope="module")
def frame():
    return starter_pairs().frame.head(12)


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mlm"])
def test_pairs_fast_mode_reports_its_deviation_on_the_first_pair(which, frame, bf16_on, one_thread, request):
    loaded = request.getfixturevalue(which)
    exact = P.score_pairs(loaded, frame, batch_size=8)
    fast = P.score_pairs(loaded, frame, batch_size=8, precision="bf16")
    assert exact.precision == "exact" and exact.deviation is None and exact.facts["precision"] == "exact"
    assert fast.precision == "bf16" and fast.facts["precision"] == "bf16"
    assert fast.facts["deviation"] == fast.deviation
    # the deviation is the first pair's largest change of score, against the float32 run's own numbers
    want = max(abs(fast.score_more[0] - exact.score_more[0]), abs(fast.score_less[0] - exact.score_less[0]))
    assert fast.deviation == pytest.approx(want, abs=1e-4)
    # it ran in bfloat16 (the scores moved), and bfloat16 keeps about 3 significant digits
    moved = np.abs(np.r_[fast.score_more - exact.score_more, fast.score_less - exact.score_less])
    assert 0 < moved.max() < 0.05 * np.abs(np.r_[exact.score_more, exact.score_less]).max()
    assert next(loaded.model.parameters()).dtype.is_floating_point  # the shared model is left as it was
    assert str(next(loaded.model.parameters()).dtype) == "torch.float32"


def test_pairs_partial_results_carry_the_mode(tiny_llama, frame, bf16_on, one_thread):
    seen = []
    P.score_pairs(tiny_llama, frame, batch_size=8, partial=lambda k, n, s: seen.append(s.precision), precision="bf16")
    assert seen and set(seen) == {"bf16"}


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mlm"])
def test_stereoset_fast_mode_reports_its_deviation_on_the_first_example(which, bf16_on, one_thread, request):
    loaded = request.getfixturevalue(which)
    data = SS.illustrative_set()
    exact = SS.run_stereoset(loaded, data, batch_size=8, n_boot=50)
    fast = SS.run_stereoset(loaded, data, batch_size=8, n_boot=50, precision="bf16")
    assert exact.precision == "exact" and exact.deviation is None and "deviation" not in exact.facts
    assert fast.precision == "bf16" and fast.facts["deviation"] == fast.deviation
    first = [sid for sid, _ in data.sentence_items()[: SS.FIRST_ITEMS]]
    want = max(abs(fast.scores[s] - exact.scores[s]) for s in first)
    assert fast.deviation == pytest.approx(want, abs=1e-5)
    moved = max(abs(fast.scores[s] - exact.scores[s]) for s in exact.scores)
    assert 0 < moved < 0.05 * max(abs(v) for v in exact.scores.values())


def test_seat_fast_mode_reports_one_minus_cosine_on_the_first_item(tiny_encoder_dir, tmp_path, bf16_on, one_thread):
    from llmviz.models.loading import load_model

    enc = load_model(str(tiny_encoder_dir))
    t = SEAT.parse_seat(_write(tmp_path / "t.jsonl", _sets()).read_bytes(), "t.jsonl")
    exact = SEAT.run_test(enc, t, "mean", "all")
    fast = SEAT.run_test(enc, t, "mean", "all", precision="bf16")
    assert "deviation" not in exact and fast["precision"] == "bf16"
    first = t.items("targ1")[0]
    a = W.embed_texts(precision.on_precision(enc, "bf16"), [first], "mean")[:, 0]
    b = W.embed_texts(enc, [first], "mean")[:, 0]
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert fast["deviation"] == pytest.approx(float(np.max(1 - cos)), abs=1e-9)
    assert 0 < fast["deviation"] < 1e-2
    d_exact = np.array([x["effect_size"] for x in exact["layers"]])
    d_fast = np.array([x["effect_size"] for x in fast["layers"]])
    assert d_exact[0] == pytest.approx(d_fast[0], abs=1e-9)  # layer 0 is the float32 embedding table
    assert 0 < np.max(np.abs(d_fast - d_exact)) < 0.2


def test_fast_mode_off_says_why(tiny_llama, frame, monkeypatch):
    monkeypatch.setattr(precision, "bf16_support", lambda: (False, "The fast mode is off: no bf16 units here."))
    with pytest.raises(InputError, match="no bf16 units"):
        P.score_pairs(tiny_llama, frame, precision="bf16")
    with pytest.raises(InputError, match="no bf16 units"):
        SS.run_stereoset(tiny_llama, SS.illustrative_set(), precision="bf16")
    with pytest.raises(InputError, match="Unknown precision"):
        P.score_pairs(tiny_llama, frame, precision="fp8")
