"""AppTest of the Bias page's "Where does the bias live?" section (issue 22): it traces a tiny causal LM on a few
starter pairs, shows the components, the correction table with the three methods and records the before/after
runs; an encoder gets a message instead."""

from __future__ import annotations

import pytest

from tests.fixtures.apptest_util import assert_ok, open_page, texts


@pytest.fixture
def few_items(monkeypatch, tmp_path):
    from llmviz.bias import mechanism as mech
    from ui.views.bias_parts import mechanism as view

    monkeypatch.setattr(view, "MAX_ITEMS_UI", 8)  # keep the run short
    monkeypatch.setattr(mech, "PRESET_TOKENS", 2)
    few = mech.neutral_sentences(6)
    monkeypatch.setattr(mech, "neutral_sentences", lambda n=None: few)
    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)


def test_trace_on_a_tiny_llama(tiny_llama_dir, few_items):
    from llmviz.runs import store

    store.reset_engines()
    at = open_page("pages/bias.py", str(tiny_llama_dir), query={"section": "mechanism"})
    assert_ok(at)
    assert "Negative effect" in texts(at)
    at.number_input(key="bias_mech_top_k").set_value(4)
    at.button(key="bias_mech_run").click().run(timeout=300)
    assert_ok(at)
    frames = [d.value for d in at.dataframe]
    comps = next(f for f in frames if "effect on S" in f.columns)
    assert len(comps) == 4 and list(comps["effect on S"]) == sorted(comps["effect on S"])
    corr = next(f for f in frames if "method" in f.columns)
    assert list(corr["method"])[1:] == ["Self-Debias", "steering vector"] and corr["method"][0].startswith("ablate top")
    assert "Overfitting, made visible" in texts(at)
    runs = store.list_runs(kind="mechanism")
    assert [r["summary"]["stage"] for r in runs] == ["after", "before"]
    at.run()  # a rerun shows the kept result and records nothing more
    assert_ok(at)
    assert len(store.list_runs(kind="mechanism")) == 2
    store.reset_engines()


def test_encoder_gets_a_message():
    at = open_page("pages/bias.py", "minilm", query={"section": "mechanism"})
    assert_ok(at)
    assert "encoder without" in texts(at)
