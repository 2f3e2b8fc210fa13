"""Playground "Continue" (issue 13): it extends the selected output in place — text, token count and the
transcript grow, the earlier tokens stay — through the same work queue as Generate."""

from __future__ import annotations

import json

from llmviz.generation.generate import GenerationStream, SamplingParams, build_prompt
from llmviz.generation.presets import COMPLETION_PRESETS
from llmviz.generation.transcript import transcript_json
from tests.fixtures.apptest_util import assert_ok, open_page, texts

PAGE = "pages/playground.py"


# `kinds`: tests/pages/conftest.py


def test_continue_extends_the_output_text_tokens_and_transcript(tiny_llama_dir, tiny_llama, kinds):
    at = open_page(PAGE, str(tiny_llama_dir), query={"preset": "qa"})
    assert_ok(at)
    at.button(key="pg_continue").click().run()
    assert "no output to continue yet" in texts(at) and not at.session_state["pg_branches"]
    at.slider(key="pg_max_qa").set_value(3).run()
    at.button(key="pg_generate").click().run()
    (first,) = at.session_state["pg_branches"]
    assert len(first.steps) == 3
    at.button(key="pg_continue").click().run()  # up to 3 more (the slider)
    assert_ok(at)
    (longer,) = at.session_state["pg_branches"]  # extended in place, not a second branch
    assert longer.token_ids[:3] == first.token_ids and len(longer.steps) == 6
    assert longer.text.startswith(first.text) and len(longer.text) > len(first.text)
    assert kinds == ["generate", "generate"]  # Continue waited for a slot like Generate
    # the same as one run of 6 tokens with the preset's settings, computed here
    preset = COMPLETION_PRESETS["en"]["qa"]
    params = SamplingParams(**{**preset.params.as_dict(), "max_new_tokens": 6})
    ref = GenerationStream(tiny_llama, build_prompt(tiny_llama, preset.user, preset.system), params)
    assert [r.token_id for r in ref] == longer.token_ids
    assert "6 tokens in" in texts(at)
    html = " ".join(h.proto.body for h in at.get("html"))
    assert html.count('<span title="step') == 6
    doc = json.loads(transcript_json(at.session_state["pg_branches"]))  # what the page's export button offers
    assert len(doc["branches"]) == 1 and [s["step"] for s in doc["branches"][0]["steps"]] == list(range(6))
