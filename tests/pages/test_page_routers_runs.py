"""Issue 21 for the Attention, Explain and Playground pages: each page file is a router (URL state, picker,
views called with explicit arguments), and every heavy action goes through ui.jobs.run_on_click: it waits in
the server queue, its result is kept for the session and its inputs and drawn again without a new click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.apptest_util import assert_ok, open_page, texts

ROOT = Path(__file__).resolve().parents[2]
ROUTERS = ("pages/attention.py", "pages/explain.py", "pages/playground.py")


@pytest.mark.parametrize("page", ROUTERS)
def test_page_is_a_router(page):
    source = (ROOT / page).read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert len(source.splitlines()) <= 60
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda, ast.ClassDef))]
    assert "section_picker" in source  # the picker and the URL state through ui.router
    assert not (ROOT / "ui/on_click.py").exists()


# `kinds`: tests/pages/conftest.py


def test_attribution_is_kept_across_sections_and_shared_with_the_next_session(tiny_llama_dir, kinds):
    query = {"text": "the patient said that", "target": "he"}
    at = open_page("pages/explain.py", str(tiny_llama_dir), query=query)
    assert "Nothing is computed until you press the button" in texts(at) and not kinds  # before the click
    at.button(key="ex_attr_start").click().run()
    assert_ok(at)
    assert kinds == ["explain"] and len(at.get("plotly_chart")) == 2  # method heatmap + agreement
    at.segmented_control(key="ex_section").set_value("ablation").run()
    at.segmented_control(key="ex_section").set_value("attribution").run()
    assert_ok(at)
    assert kinds == ["explain"] and len(at.get("plotly_chart")) == 2  # drawn again, not computed again
    other = open_page("pages/explain.py", str(tiny_llama_dir), query=query)  # another student, same inputs
    other.button(key="ex_attr_start").click().run()
    assert_ok(other)
    assert kinds == ["explain"] and len(other.get("plotly_chart")) == 2  # a copy of the kept result


def test_logit_lens_runs_in_the_queue_once(tiny_llama_dir, kinds):
    at = open_page("pages/explain.py", str(tiny_llama_dir), query={"text": "a b c d", "section": "logit_lens"})
    assert_ok(at)
    assert "reproduces the model's own output distribution" in texts(at)
    assert not [b for b in at.button if b.key == "ex_lens_run"]  # no button: one forward pass runs when shown
    at.run()
    assert kinds == ["explain"]


def test_generation_and_fill_mask_go_through_run_on_click(tiny_llama_dir, kinds):
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "qa"})
    assert_ok(at)
    assert not [b for b in at.button if b.key in ("pg_stop", "pg_generate_stop")]  # Stop only while running
    at.slider(key="pg_max_qa").set_value(2).run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    assert kinds == ["generate"]
    (kept,) = [r for _, r in at.session_state["llmviz_runs"]["pg_generate"].items()]
    assert at.session_state["pg_branches"] == [kept]  # the kept result is the branch drawn
    at.run()
    assert kinds == ["generate"]
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "fill_mask"})
    # inputs no other test uses: fill-mask results are shared server-wide, so a text another test already
    # filled would be a cache hit here and never reach the queue
    at.text_area(key="pg_fill_text").input("Routers keep [MASK] tea for later.").run()
    at.text_input(key="pg_fill_cands").input("green, black").run()
    assert_ok(at)
    assert kinds.count("fill_mask") >= 1 and "Best filling" in texts(at)
    n = len(kinds)
    at.run()
    assert len(kinds) == n  # the same text again: the kept result, no new job
