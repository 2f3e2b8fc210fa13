"""AppTest: every preset generates, branching keeps the earlier branch, an interrupted (stopped) run is
kept, fill-mask for masked and causal models, messages for bad input and the wrong model kind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llmviz.generation.generate import GenerationStream, SamplingParams, build_prompt
from llmviz.generation.presets import COMPLETION_PRESETS, PRESETS
from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape

PAGE = "pages/playground.py"


def _generate(at, mode: str, n: int):
    at.slider(key=f"pg_max_{mode}").set_value(n).run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    return at.session_state["pg_branches"]


@pytest.mark.parametrize("mode", list(PRESETS))
def test_each_preset_generates_with_probabilities(mode, tiny_llama_dir, tiny_llama):
    """The tiny Llama has no chat template: a base model gets the completion presets, fed as is (no system box)."""
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": mode})
    assert_ok(at)
    preset = COMPLETION_PRESETS["en"][mode]
    assert at.text_area(key=f"pg_user_{mode}_completion_en").value == preset.user
    assert not [a for a in at.text_area if a.key == f"pg_system_{mode}"]
    assert "fed to the model exactly as written" in texts(at)
    assert at.toggle(key=f"pg_greedy_{mode}").value == preset.params.greedy
    (gen,) = _generate(at, mode, 3)
    assert len(gen.steps) == 3 and gen.prompt.user == preset.user
    assert gen.params == replace(preset.params, max_new_tokens=3)  # the boxes start at the preset's settings
    # the page ran the same computation as llmviz does directly (seeded => identical)
    params = SamplingParams(**{**preset.params.as_dict(), "max_new_tokens": 3})
    ref = GenerationStream(tiny_llama, build_prompt(tiny_llama, preset.user, preset.system), params)
    assert [r.token_id for r in ref] == gen.token_ids
    assert len(at.get("plotly_chart")) >= 2  # probabilities along the output + alternatives
    assert "reached the max new tokens" in texts(at)
    html = " ".join(h.proto.body for h in at.get("html"))
    assert html.count('<span title="step') == 3


def test_sentence_boxes_set_the_stopping_rule(tiny_llama_dir):
    """The two stopping boxes reach the run's settings; the sentences box is off while the rule is."""
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "creative"})
    assert at.number_input(key="pg_sentences_creative").value == 2
    assert not at.number_input(key="pg_sentences_creative").disabled
    at.number_input(key="pg_sentences_creative").set_value(3)
    at.number_input(key="pg_sentence_creative").set_value(5)
    (gen,) = _generate(at, "creative", 3)
    assert (gen.params.sentences, gen.params.sentence_end_after) == (3, 5)
    at.number_input(key="pg_sentence_creative").set_value(0).run()
    assert at.number_input(key="pg_sentences_creative").disabled


def test_branching_keeps_the_earlier_branch(tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "creative", "text": "Once upon a time"})
    assert at.text_area(key="pg_user_creative_completion_en").value == "Once upon a time"
    (first,) = _generate(at, "creative", 4)
    at.select_slider(key="pg_step").set_value(1).run()
    forced = at.selectbox(key="pg_force_pick").value
    at.button(key="pg_force").click().run()
    assert_ok(at)
    parent, child = at.session_state["pg_branches"]
    assert parent.token_ids == first.token_ids  # the earlier branch is unchanged and still shown
    assert child.token_ids[:1] == first.token_ids[:1] and child.token_ids[1] == forced.token_id
    assert "Branch 1 (original)" in texts(at) and "forced step 1" in texts(at)
    assert at.radio(key="pg_branch").value == 1
    # outputs belong to one preset (and model): switching the preset starts clean
    at.segmented_control(key="pg_mode").set_value("code").run()
    assert_ok(at)
    assert at.session_state["pg_branches"] == [] and "Branch 1" not in texts(at)


def test_interrupted_run_is_kept_as_stopped(tiny_llama_dir, tiny_llama):
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "qa"})
    stream = GenerationStream(tiny_llama, build_prompt(tiny_llama, "hi"), SamplingParams(max_new_tokens=9))
    it = iter(stream)
    next(it), next(it)  # two tokens streamed, then the Stop button interrupted the script
    at.session_state["pg_stream"] = stream
    at.run()
    assert_ok(at)
    (gen,) = at.session_state["pg_branches"]
    assert gen.stop_reason == "stopped" and len(gen.steps) == 2
    assert "Stopped by you" in texts(at)


def test_smollm2_translation_uses_chat_template(smollm2):
    at = open_page(PAGE, "smollm2", query={"preset": "translation"})
    assert "Chat template applied" in texts(at)
    (gen,) = _generate(at, "translation", 2)
    assert gen.prompt.chat_template and gen.prompt.text.endswith("<|im_start|>assistant\n")
    assert gen.prompt.text.strip() in [c.value.strip() for c in at.get("code")]  # rendered prompt shown


def test_generation_needs_a_causal_model_and_empty_prompt_message(tiny_mlm_dir, tiny_llama_dir):
    at = open_page(PAGE, str(tiny_mlm_dir), query={"preset": "code"})
    assert_ok(at)
    assert "needs a causal language model" in texts(at)
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "code"})
    at.text_area(key="pg_user_code_completion_en").input("   ").run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    assert "prompt is empty" in " ".join(unescape(e.value) for e in at.error)


def test_fill_mask_masked_lm_page(tiny_mlm_dir):
    at = open_page(PAGE, str(tiny_mlm_dir), query={"preset": "fill_mask"})
    assert_ok(at)
    assert at.text_area(key="pg_fill_text").value == "This is a [MASK] sentence."
    assert "Best filling" in texts(at) and len(at.get("plotly_chart")) == 1
    at.text_area(key="pg_fill_text").input("The [MASK] and the [MASK].").run()
    assert len(at.get("plotly_chart")) == 2
    at.text_area(key="pg_fill_text").input("no gap here").run()
    assert_ok(at)
    assert "No mask" in " ".join(unescape(e.value) for e in at.error)
    assert at.text_area(key="pg_fill_text").value == "no gap here"  # what the user typed is kept


def test_fill_mask_causal_scoring_page(tiny_llama_dir, minilm):
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "fill_mask", "text": "I like [MASK] tea."})
    assert_ok(at)
    assert "Scoring, not prediction" in texts(at) and "top next-token proposals" in texts(at)
    at.text_input(key="pg_fill_cands").input("green, black").run()
    assert "your list" in texts(at)
    df = at.dataframe[0].value
    assert sorted(df["candidate"]) == ["black", "green"] and "log_likelihood" in df
    at = open_page(PAGE, "minilm", query={"preset": "fill_mask"})
    assert_ok(at)
    assert "encoder without a language-model head" in texts(at)
