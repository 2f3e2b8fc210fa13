"""Issue 21 for the Bias and Training pages: each page file is a router (URL state, picker, views called with
explicit arguments); every heavy action goes through ui.jobs.run_on_click (it waits in the server queue and
its result is kept for the session and its inputs, drawn again without a new job); a run is recorded in the
run store once, by run_on_click's on_result, never again by a rerun or another session showing the kept
result; "Link to this view" carries the section / preset and reopens it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import streamlit as st

from llmviz.runs import store as RS
from tests.fixtures.apptest_util import assert_ok, open_page, texts
from ui import jobs as ui_jobs
from ui.links import parse_link
from ui.registry import BIAS_SECTIONS, TRAINING_LIVE_PRESETS, TRAINING_SECTIONS

ROOT = Path(__file__).resolve().parents[2]
BIAS, TRAINING = "pages/bias.py", "pages/training.py"


@pytest.mark.parametrize("page", [BIAS, TRAINING])
def test_page_is_a_router(page):
    source = (ROOT / page).read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert len(source.splitlines()) <= 60
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda, ast.ClassDef))]
    assert "section_picker" in source  # the picker and the URL state through ui.router
    assert not (ROOT / "ui/bias_views.py").exists()


@pytest.mark.parametrize("views", ["ui/views/bias.py", "ui/views/training.py"])
def test_views_use_the_one_run_and_remember(views):
    """No second way to run on a click and remember: no heavy() block, cached()/memo(), st.cache_data,
    flag-in-session-state requests or run_or_recall."""
    source = (ROOT / views).read_text(encoding="utf-8")
    tree = ast.parse(source)
    called = {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))
    }
    assert not called & {"heavy", "cached", "memo", "run_in_slot", "cache_data", "run_or_recall"}
    assert "run_on_click" in called
    assert "bias_go_" not in source


# `kinds`: tests/pages/conftest.py


def _n_runs(kind: str) -> int:
    return len(RS.list_runs(kind=kind))


def test_weat_is_recorded_once_not_by_a_rerun_or_a_second_session(store, kinds, tiny_encoder_dir):
    """The WEAT result was computed and recorded inside one cached function; now it is recorded by on_result
    after the computation, once: a rerun and a second session showing the kept (shared) result record nothing."""
    at = open_page(BIAS, str(tiny_encoder_dir), query={"section": "weat"})
    assert_ok(at)
    assert kinds == ["weat"] and _n_runs("weat") == 1
    at.slider(key="bias_weat_layer").set_value(1).run()  # a rerun draws the kept result
    assert_ok(at)
    assert kinds == ["weat"] and _n_runs("weat") == 1
    other = open_page(BIAS, str(tiny_encoder_dir), query={"section": "weat"})  # another student, same inputs
    assert_ok(other)
    assert [m for m in other.metric if m.label.startswith("Effect size")]  # shown: a copy of the kept result
    assert kinds == ["weat"] and _n_runs("weat") == 1
    ui_jobs._SHARED.clear()  # the server dropped its copies (other students' work): the session keeps its own
    st.cache_data.clear()
    at.run()
    assert kinds == ["weat"] and _n_runs("weat") == 1  # with the record inside a cached function: 2 runs


def test_template_probe_is_recorded_once(store, kinds, tiny_mlm_dir):
    at = open_page(BIAS, str(tiny_mlm_dir), query={"section": "templates"})
    assert_ok(at)
    assert kinds == ["templates"] and _n_runs("template_probe") == 1
    at.run()
    other = open_page(BIAS, str(tiny_mlm_dir), query={"section": "templates"})
    assert_ok(other)
    assert len(other.dataframe[0].value) == 10  # the ranking, from the shared result
    assert kinds == ["templates"] and _n_runs("template_probe") == 1


def test_pairs_are_kept_across_sections_and_recorded_once(store, kinds, tiny_llama_dir):
    at = open_page(BIAS, str(tiny_llama_dir), query={"section": "pairs"})
    assert not kinds  # nothing before the click
    at.button(key="bias_pairs_run").click().run()
    assert_ok(at)
    assert kinds == ["pairs", "pairs"]  # the scoring, then the drill-down of the first pair
    assert _n_runs("crows_pairs") == 1
    at.segmented_control(key="bias_section").set_value("runs").run()
    at.segmented_control(key="bias_section").set_value("pairs").run()
    assert_ok(at)
    assert "Stereotype preferred" in [m.label for m in at.metric]  # drawn again, not computed again
    assert kinds == ["pairs", "pairs"] and _n_runs("crows_pairs") == 1
    at.selectbox(key="bias_pairs_pick").set_value(2).run()  # another pair: its drill-down runs in the queue
    assert kinds == ["pairs", "pairs", "pairs"] and _n_runs("crows_pairs") == 1


def test_stereoset_run_id_stays_with_the_kept_result(store, kinds, tiny_llama_dir):
    at = open_page(BIAS, str(tiny_llama_dir), query={"section": "stereoset"})
    at.button(key="bias_ss_run").click().run()
    assert_ok(at)
    assert "run #1" in texts(at) and kinds == ["stereoset"]
    at.radio(key="bias_ss_metric").set_value("LM Score").run()
    assert_ok(at)
    assert "run #1" in texts(at) and kinds == ["stereoset"] and _n_runs("stereoset") == 1


def test_live_training_goes_through_the_queue_and_is_kept(kinds, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path))
    at = open_page(TRAINING, query={"preset": "overfit"})
    for key, value in (("trn_stories", 8), ("trn_epochs", 2), ("trn_d_model", 32), ("trn_d_ff", 64)):
        at.number_input(key=key).set_value(value)
    at.button(key="trn_run").click().run()
    assert_ok(at)
    assert kinds == ["train"]
    assert not [b for b in at.button if b.key == "trn_run_stop"]  # one Stop: the section's own
    at.run()
    assert_ok(at)
    assert kinds == ["train"] and {m.label for m in at.metric} >= {"Step", "Training loss"}
    assert len(at.session_state["trn_runs"]) == 1  # the gap comparison noted the run once


def _link(at, page: str) -> dict[str, str]:
    link = next(c.value for c in at.code if f"/{page}?" in c.value)
    path, params = parse_link(link)
    assert path == page
    return params


@pytest.mark.parametrize("section", BIAS_SECTIONS)
def test_bias_link_carries_the_section_and_reopens_it(section, store, tiny_encoder_dir):
    at = open_page(BIAS, str(tiny_encoder_dir), query={"section": section})
    assert_ok(at)
    params = _link(at, "bias")
    assert params["section"] == section and params["model"] == str(tiny_encoder_dir)
    again = open_page(BIAS, str(tiny_encoder_dir), query=params)
    assert again.segmented_control(key="bias_section").value == section


@pytest.mark.parametrize("preset", TRAINING_LIVE_PRESETS + TRAINING_SECTIONS[1:])
def test_training_link_carries_the_preset_and_reopens_it(preset, tiny_encoder_dir):
    at = open_page(TRAINING, str(tiny_encoder_dir), query={"preset": preset})
    assert_ok(at)
    params = _link(at, "training")
    assert params["preset"] == preset
    again = open_page(TRAINING, str(tiny_encoder_dir), query=params)
    if preset in TRAINING_SECTIONS:
        assert again.segmented_control(key="trn_section").value == preset
    else:
        assert again.segmented_control(key="trn_section").value == "live"
        assert again.selectbox(key="trn_preset").value == preset


def test_training_link_follows_the_preset_and_section_chosen(tiny_encoder_dir):
    at = open_page(TRAINING, str(tiny_encoder_dir))
    at.selectbox(key="trn_preset").set_value("weight_decay").run()
    assert _link(at, "training")["preset"] == "weight_decay"
    assert at.query_params["preset"] in ("weight_decay", ["weight_decay"])  # the URL follows (reload, copy)
    at.segmented_control(key="trn_section").set_value("memorization").run()
    assert _link(at, "training")["preset"] == "memorization"
    assert at.query_params["preset"] in ("memorization", ["memorization"])
