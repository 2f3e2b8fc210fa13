"""Intervene page under AppTest: patching (run on click, checks shown, a cell's predictions), DLA with
its checks against the library, steering (generations per α, the curve, a probe), an encoder, 中文."""

from __future__ import annotations

import pytest

from llmviz.interventions import dla as D
from llmviz.interventions import patching as P
from llmviz.models.loading import load_model
from llmviz.precision import bf16_facts
from tests.fixtures.apptest_util import assert_ok, open_page, texts

PAGE = "pages/intervene.py"
CLEAN, CORRUPT = "the cat sat on the mat", "the dog sat on the mat"


def _button(at, key):
    return next(b for b in at.button if b.key == key)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    from tests.llmviz.interventions.test_interventions import _tiny_llama_big

    return _tiny_llama_big(tmp_path_factory.mktemp("page_iv_llama"))


def test_patching_runs_on_click_and_matches_the_library(llama_dir):
    at = open_page(PAGE, str(llama_dir), query={"section": "patching", "text": CLEAN})
    assert_ok(at)
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    assert_ok(at)
    assert "Click **Run patching**" in texts(at)  # nothing heavy ran before the click
    assert "2 (cat → dog)" in texts(at)
    _button(at, "iv_run_patch").click().run()
    assert_ok(at)
    body = texts(at)
    assert "Checks: whole residual stream patched at each layer gives 1" in body
    setup = P.prepare(load_model(str(llama_dir)), CLEAN, CORRUPT)
    value, _ = P.patched_predictions(setup, P.Site("resid", 1, 3))
    at.number_input(key="iv_cell_layer_resid").set_value(1).run()
    at.number_input(key="iv_cell_index_resid").set_value(3).run()
    assert f"normalised metric {value:.3f}" in texts(at)
    assert len(at.dataframe) >= 2  # tokens side by side + the patched run's predictions
    if bf16_facts()["available"]:  # the fast mode shows its own deviation against float32
        at.radio(key="iv_precision").set_value("bf16").run()
        _button(at, "iv_run_patch").click().run()
        assert_ok(at)
        assert "Fast mode (bfloat16): max |Δ metric|" in texts(at)
    else:
        assert "Fast mode (bfloat16) is off on this machine" in texts(at)


def test_length_mismatch_and_replace_word(llama_dir):
    at = open_page(PAGE, str(llama_dir), query={"section": "patching", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input("the dog sat").run()
    assert_ok(at)
    assert any("Patching pastes activations position by position" in w.value for w in at.warning)
    at.text_input(key="iv_word_x").input("cat")
    at.text_input(key="iv_word_y").input("dog")
    _button(at, "iv_replace").click().run()
    assert_ok(at)
    assert at.text_input(key="iv_corrupt_next_token").value == CORRUPT
    at.text_input(key="iv_word_x").input("zebra")
    _button(at, "iv_replace").click().run()
    assert any("does not occur" in e.value for e in at.error)


def test_dla_section_shows_the_checks(llama_dir):
    at = open_page(PAGE, str(llama_dir), query={"section": "dla", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    _button(at, "iv_run_dla").click().run()
    assert_ok(at)
    d = D.direct_logit_attribution(P.prepare(load_model(str(llama_dir)), CLEAN, CORRUPT))
    real = next(m.value for m in at.metric if m.label == "Model's logit difference")
    assert real == f"{d.real:.4f}"
    assert "Checks: terms sum to the frozen-scale logit difference" in texts(at)


def test_steering_generations_curve_and_probe(llama_dir):
    at = open_page(PAGE, str(llama_dir), query={"section": "steering"})
    assert_ok(at)
    assert "a steered model is a debiased one" in texts(at)
    assert "Click the button to compute v" in texts(at)  # nothing computed before the click
    _button(at, "iv_run_vec").click().run()
    assert_ok(at)
    at.text_input(key="iv_alphas").input("-5, 0, 5").run()
    at.slider(key="iv_max_new").set_value(4).run()
    _button(at, "iv_run_gen").click().run()
    assert_ok(at)
    assert sum("α = " in m.value for m in at.markdown) >= 3
    _button(at, "iv_run_probe").click().run()
    assert_ok(at)
    assert "Before:" in texts(at) and "after:" in texts(at)


def test_steered_generations_in_the_int8_mode_show_their_agreement(llama_dir):
    """The Playground's exact/fast choice on steered generation: in int8 each α's column says how far the run
    moved from float32 steered the same way, the library's own figure."""
    from llmviz.generation.generate import SamplingParams
    from llmviz.interventions import steering as S
    from llmviz.precision import int8_support

    if not int8_support()[0]:
        pytest.skip(int8_support()[1])
    at = open_page(PAGE, str(llama_dir), query={"section": "steering"})
    _button(at, "iv_run_vec").click().run()
    assert at.radio(key="iv_gen_precision").value == "exact"  # the default
    at.text_input(key="iv_alphas").input("0, 5").run()
    at.slider(key="iv_max_new").set_value(4).run()
    at.checkbox(key="iv_greedy").check().run()
    at.radio(key="iv_gen_precision").set_value("int8").run()
    _button(at, "iv_run_gen").click().run()
    assert_ok(at)
    loaded = load_model(str(llama_dir))
    sets = [S.parse_prompts(at.text_area(key=k).value, k) for k in ("iv_set_a", "iv_set_b")]
    vec = S.steering_vector(loaded, *sets, at.slider(key="iv_layer").value)  # the page's vector, by hand
    ref = S.generations_by_alpha(
        loaded, "I think that the movie was", vec, [0.0, 5.0], SamplingParams(greedy=True, max_new_tokens=4),
        precision="int8",
    )  # fmt: skip
    shown = texts(at)
    for g in ref.generations:
        d = g.deviation
        assert f"Fast (int8 weights): top-1 agreement {100 * d.fraction:.0f} % with float32 on this answer" in shown


def test_encoder_patching_similarity_and_dla_refusal(tiny_encoder_dir):
    at = open_page(PAGE, str(tiny_encoder_dir), query={"section": "dla"})
    assert_ok(at)
    assert "direct logit attribution does not apply" in texts(at)
    at = open_page(PAGE, str(tiny_encoder_dir), query={"section": "steering"})
    assert "has no language-model head" in texts(at)


def test_chinese(llama_dir):
    # (no rerun here: AppTest re-formats select options in the test thread, i.e. in English)
    at = open_page(PAGE, str(llama_dir), query={"section": "steering", "lang": "zh"})
    assert_ok(at)
    assert "点击按钮，由两个提示集计算 v" in texts(at)
    assert "干预" in texts(at) and "转向" in texts(at)


def test_link_to_this_view_carries_the_prompts_and_restores_them(llama_dir):
    """The link promises "model, text, layer, section": it used to give /intervene?model=..&section=patching
    only, so a copied link reopened on the default prompts."""
    from ui.links import parse_link

    at = open_page(PAGE, str(llama_dir), query={"section": "dla", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    at.text_input(key="iv_correct").input(" mat").run()
    link = next(c.value for c in at.code if "/intervene?" in c.value)
    page, params = parse_link(link)
    assert page == "intervene" and params["section"] == "dla"
    assert params["text"] == CLEAN and params["corrupt"] == CORRUPT and params["correct"] == " mat"
    again = open_page(PAGE, str(llama_dir), query={k: v for k, v in params.items() if k != "model"})
    assert_ok(again)
    assert again.text_input(key="iv_clean_next_token").value == CLEAN
    assert again.text_input(key="iv_corrupt_next_token").value == CORRUPT
    assert again.text_input(key="iv_correct").value == " mat"
    assert "2 (cat → dog)" in texts(again)


def test_steering_results_stay_in_the_tab_they_were_asked_in(llama_dir):
    """The steering tabs keep their selection across reruns (keyed st.tabs), and a result stays drawn on
    every later run without a new click."""
    at = open_page(PAGE, str(llama_dir), query={"section": "steering"})
    _button(at, "iv_run_vec").click().run()
    at.text_input(key="iv_alphas").input("-5, 0, 5").run()
    _button(at, "iv_run_probe").click().run()
    assert_ok(at)
    assert "Before:" in texts(at)
    at.slider(key="iv_layer").set_value(at.slider(key="iv_layer").value).run()  # any rerun
    assert "Before:" in texts(at)  # still drawn, no new click
    assert "iv_steer_tab" in at.session_state  # the open tab is server state, kept across reruns
