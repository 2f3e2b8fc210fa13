"""Explain page, fast mode (issue 27): integrated gradients and head ablation offer exact or bfloat16 arithmetic
(exact by default); after a run the page says which mode ran and, in bf16, the deviation measured on the run's
own first batch against float32 — the library's own figure, in English and in 中文."""

from __future__ import annotations

from llmviz.explain.ablation import ablation_problem, head_ablation
from llmviz.explain.attribution import attribute
from llmviz.explain.targets import Target, build_problem
from llmviz.models.loading import load_model
from tests.fixtures.apptest_util import assert_ok, open_page, texts
from tests.pages.test_zh_complete import english_words
from ui import common as COMMON
from ui import i18n as I18N

PAGE = "pages/explain.py"
TEXT = "the doctor said that"
IG = "integrated_gradients"


def _value(items, prefix):
    (w,) = [x for x in items if (x.key or "").startswith(prefix)]
    return w.value


def _ig_page(model_dir, lang: str = "en"):
    query = {"text": TEXT, "target": "he", **({"lang": lang} if lang != "en" else {})}
    at = open_page(PAGE, str(model_dir), query=query)
    at.multiselect(key="ex_methods").set_value([IG]).run()
    assert_ok(at)
    return at


def _library_ig(model_dir, at):
    """The page's integrated gradients in bf16, run here with the settings its widgets show."""
    loaded = load_model(str(model_dir))
    problem = build_problem(loaded, TEXT, Target("next_token", token="he"))
    settings = {
        "steps": _value(at.slider, "ex_steps_"),
        "baseline": _value(at.selectbox, "ex_baseline_"),
        "rule": _value(at.radio, "ex_rule_"),
        "keep_first": _value(at.checkbox, "ex_keep_first_"),
    }
    return attribute(problem, IG, precision="bf16", **settings).params


def test_ig_says_which_mode_ran_and_its_deviation(tiny_llama_dir, one_thread, bf16_here):
    at = _ig_page(tiny_llama_dir)
    assert at.radio(key="ex_precision_ig").value == "exact"  # the default
    at.button(key="ex_attr_start").click().run()
    assert_ok(at)
    assert "Arithmetic: exact (float32)." in texts(at)
    at.radio(key="ex_precision_ig").set_value("bf16").run()
    at.button(key="ex_attr_start").click().run()  # the arithmetic is one of the run's inputs: it runs again
    assert_ok(at)
    body = texts(at)
    assert "Arithmetic: exact (float32)." not in body
    params = _library_ig(tiny_llama_dir, at)
    n = min(params["batch_size"], params["steps"])
    line = (
        f"Fast mode (bfloat16): max deviation {100 * params['deviation']:.3g} % of the largest contribution "
        f"on the first batch of {n} steps, against float32."
    )
    assert line in body, body


def test_ig_fast_mode_in_chinese(tiny_llama_dir, one_thread, bf16_here, monkeypatch):
    # AppTest formats a radio's value with the page's format_func in the test's own thread, where no session
    # says 中文: the translated labels would not be found among the options the page drew
    monkeypatch.setattr(I18N, "lang", lambda: "zh")
    at = _ig_page(tiny_llama_dir, "zh")
    at.radio(key="ex_precision_ig").set_value("bf16").run()
    at.button(key="ex_attr_start").click().run()
    assert_ok(at)
    (line,) = [i.value for i in at.info if "快速模式" in i.value]
    params = _library_ig(tiny_llama_dir, at)
    assert f"与 `float32` 相比最大偏差为最大贡献的 {100 * params['deviation']:.3g} %" in line
    assert english_words([line]) == []


def test_ablation_says_which_mode_ran_and_its_deviation(tiny_llama_dir, one_thread, bf16_here):
    at = open_page(PAGE, str(tiny_llama_dir), query={"text": TEXT, "section": "ablation"})
    assert at.radio(key="ex_precision_abl").value == "exact"
    at.radio(key="ex_precision_abl").set_value("bf16").run()
    at.button(key="ex_abl_start").click().run()
    assert_ok(at)
    loaded = load_model(str(tiny_llama_dir))
    res = head_ablation(ablation_problem(loaded, TEXT, Target("next_token")), precision="bf16")
    n = min(res.batch_size, res.head_delta.size + res.layer_delta.size + 1)
    line = f"Fast mode (bfloat16): max |Δ score| {res.deviation:.2g} against float32 on the first {n} ablations"
    assert line in texts(at), texts(at)
    assert "changes by 0.0e+00" in texts(at)  # the check row stays exact


def test_without_bf16_units_the_choice_is_off_and_says_why(tiny_llama_dir, monkeypatch):
    monkeypatch.setattr(COMMON, "bf16_facts", lambda: {"units": [], "capability": "DEFAULT", "available": False})
    at = _ig_page(tiny_llama_dir)
    assert not [r for r in at.radio if r.key == "ex_precision_ig"]
    off = "Fast mode (bfloat16) is off on this machine: it needs AMX or AVX-512 BF16; the CPU reports —"
    assert off in texts(at)
    at.button(key="ex_attr_start").click().run()
    assert_ok(at)
    assert "Arithmetic: exact (float32)." in texts(at)
