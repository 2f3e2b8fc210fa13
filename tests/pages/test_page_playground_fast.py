"""AppTest: the Playground's fast mode (int8 weights) generates, says which mode ran and shows its measured
agreement with float32; the choice is off with the reason where the kernel fails; Generate carries an estimate."""

from __future__ import annotations

from llmviz import precision
from tests.fixtures.apptest_util import assert_ok, open_page, texts

PAGE = "pages/playground.py"


def test_fast_mode_generates_and_shows_its_agreement(tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "qa"})
    assert_ok(at)
    assert at.radio(key="pg_precision").value == "exact"  # the default
    assert "(about" in at.button(key="pg_generate").label  # the estimate
    at.radio(key="pg_precision").set_value("int8").run()
    at.slider(key="pg_max_qa").set_value(3).run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    (gen,) = at.session_state["pg_branches"]
    assert gen.precision == "int8" and len(gen.steps) == 3
    dev = gen.deviation
    assert dev.total == 3 and dev.presets is not None and dev.presets.total > 0
    shown = texts(at)
    assert f"Fast (int8 weights): top-1 agreement {100 * dev.fraction:.0f} % with float32 on this answer" in shown
    assert "over the 5 preset prompts" in shown
    at.button(key="pg_continue").click().run()  # a continuation keeps the mode and is measured again
    assert_ok(at)
    (longer,) = at.session_state["pg_branches"]
    assert longer.precision == "int8" and longer.deviation.total == len(longer.steps) > 3


def test_fast_mode_off_says_why(monkeypatch, tiny_llama_dir, fresh_support):
    def missing():
        raise AttributeError("no attribute '_weight_int8pack_mm'")

    monkeypatch.setattr(precision, "int8_kernel", missing)
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "qa"})
    assert_ok(at)
    assert at.radio(key="pg_precision").disabled
    assert "Fast mode (int8 weights) is off on this machine" in texts(at)
    assert "_weight_int8pack_mm" in texts(at)
