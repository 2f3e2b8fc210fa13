"""Bias page, fast mode (issue 27): CrowS-Pairs, StereoSet and SEAT offer exact or bfloat16 arithmetic (exact by
default); after a run the page says which mode ran and, in bf16, the deviation measured on the run's own first
item against float32: the library's own figure, in English and in 中文."""

from __future__ import annotations

import json

import pytest

from llmviz.bias import pairs as P
from llmviz.bias import seat as SEAT
from llmviz.bias import stereoset as SS
from llmviz.bias.pairs_data import starter_pairs
from llmviz.models.loading import load_model
from llmviz.runs import store as RS
from tests.fixtures.apptest_util import assert_ok, open_page, texts
from tests.llmviz.bias.test_seat import _sets
from tests.pages.test_page_bad_files import uploads  # noqa: F401 (a fixture)
from tests.pages.test_zh_complete import english_words
from ui import i18n as I18N

PAGE = "pages/bias.py"


def _infos(at) -> list[str]:
    return [i.value for i in at.info]


def test_pairs_say_which_mode_ran_and_its_deviation(tiny_llama_dir, store, one_thread, bf16_here):
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "pairs"})
    assert at.radio(key="bias_pairs_precision").value == "exact"  # the default
    at.button(key="bias_pairs_run").click().run()
    assert_ok(at)
    assert "Arithmetic: exact (float32)." in texts(at)
    exact_table = at.dataframe[0].value
    at.radio(key="bias_pairs_precision").set_value("bf16").run()
    at.button(key="bias_pairs_run").click().run()  # the arithmetic is one of the run's inputs: it runs again
    assert_ok(at)
    assert "Arithmetic: exact (float32)." not in texts(at)
    ref = P.score_pairs(load_model(str(tiny_llama_dir)), starter_pairs().frame, precision="bf16")
    line = (
        f"Fast mode (bfloat16): max |Δ score| {ref.deviation:.2g} nats against float32 on the first pair. "
        "Pairs whose two scores differ by less than this may have come out the other way."
    )
    assert line in _infos(at), _infos(at)
    fast_table = at.dataframe[0].value
    assert list(fast_table["score_more"]) == pytest.approx(list(ref.score_more), abs=1e-4)
    assert list(fast_table["score_more"]) != pytest.approx(list(exact_table["score_more"]), abs=1e-6)


def test_pairs_fast_mode_in_chinese(tiny_llama_dir, store, one_thread, bf16_here, monkeypatch):
    # AppTest formats a radio's value with the page's format_func in the test's own thread, where no session
    # says 中文: the translated labels would not be found among the options the page drew
    monkeypatch.setattr(I18N, "lang", lambda: "zh")
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "pairs", "lang": "zh"})
    at.radio(key="bias_pairs_precision").set_value("bf16").run()
    at.button(key="bias_pairs_run").click().run()
    assert_ok(at)
    (line,) = [i for i in _infos(at) if "快速模式" in i]
    ref = P.score_pairs(load_model(str(tiny_llama_dir)), starter_pairs().frame, precision="bf16")
    assert f"与 `float32` 相比分数的最大 |Δ| 为 {ref.deviation:.2g} 奈特" in line
    assert english_words([line]) == []


def test_stereoset_says_which_mode_ran_and_its_deviation(tiny_llama_dir, store, one_thread, bf16_here):
    at = open_page(PAGE, str(tiny_llama_dir), query={"section": "stereoset"})
    at.radio(key="bias_ss_precision").set_value("bf16").run()
    at.button(key="bias_ss_run").click().run()
    assert_ok(at)
    ref = SS.run_stereoset(load_model(str(tiny_llama_dir)), SS.illustrative_set(), n_boot=50, precision="bf16")
    line = (
        f"Fast mode (bfloat16): max |Δ sentence score| {ref.deviation:.2g} against float32 on the first "
        "example's 3 sentences."
    )
    assert line in _infos(at), _infos(at)
    (run,) = RS.list_runs()
    assert run["parameters"]["precision"] == "bf16" and run["parameters"]["deviation"] == pytest.approx(ref.deviation)


def test_seat_says_which_mode_ran_and_its_deviation(tiny_encoder_dir, store, uploads, one_thread, bf16_here):  # noqa: F811
    doc = {k: {"category": c, "examples": ex} for k, (c, ex) in _sets().items()}
    uploads["bias_seat_upload"] = [("t.jsonl", json.dumps(doc).encode())]
    at = open_page(PAGE, str(tiny_encoder_dir), query={"section": "weat"})
    assert at.radio(key="bias_seat_precision").value == "exact"
    at.radio(key="bias_seat_precision").set_value("bf16").run()
    at.button(key="bias_seat_run").click().run()
    assert_ok(at)
    test = SEAT.parse_seat(json.dumps(doc).encode(), "t.jsonl")
    entry = SEAT.run_test(load_model(str(tiny_encoder_dir)), test, "mean", "all", precision="bf16")
    line = (
        f"Fast mode (bfloat16): the first item's embedding moved by 1 − cosine {entry['deviation']:.2g} against "
        "float32 (the largest over the layers and tests shown)."
    )
    assert line in _infos(at), _infos(at)
