"""One rule for state (issue 13): a page's state comes from its URL on every navigation, not only on
the first visit; the user's own widget changes stand until a link changes the URL; the model is in
the URL and the picker shows the loaded model. Without ui.links.url_state these fail: a page that
is already open keeps the previous link's view (6 of 15 tour steps landed wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llmviz.models import loading as M
from tests.fixtures.apptest_util import assert_ok, open_page

ROOT = Path(__file__).resolve().parents[2]


def _follow(at: AppTest, query: dict) -> AppTest:
    """A link to the page that is open (tour Next, a card): the URL changes, the session stays."""
    for k in list(at.query_params):
        del at.query_params[k]
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return at


def test_second_link_to_an_open_page_replaces_its_view(tiny_encoder_dir):
    at = open_page("pages/attention.py", str(tiny_encoder_dir), query={"view": "head", "layer": "1", "text": "a b c"})
    assert_ok(at)
    assert at.segmented_control(key="att_view").value == "head"
    assert at.number_input(key="att_layer").value == 1
    _follow(at, {"view": "formula", "text": "the cat sat"})
    assert_ok(at)
    assert at.segmented_control(key="att_view").value == "formula"
    assert at.text_area(key="att_text").value == "the cat sat"
    assert at.number_input(key="att_layer").value == 0  # absent parameter: the fresh-session default


def test_user_change_stands_until_a_link_changes_the_url(tiny_encoder_dir):
    at = open_page("pages/positional.py", str(tiny_encoder_dir), query={"section": "sinusoidal", "d_model": "32"})
    assert at.slider(key="pos_d_model").value == 32
    at.slider(key="pos_d_model").set_value(48).run()
    assert at.slider(key="pos_d_model").value == 48  # the user's change is not undone by the URL
    at.segmented_control(key="pos_section").set_value("learned").run()
    assert at.segmented_control(key="pos_section").value == "learned"
    assert at.query_params["section"] in ("learned", ["learned"])  # the URL follows the widget (reload, copy)
    _follow(at, {"section": "sinusoidal", "d_model": "32"})  # the same link again lands on its view
    assert at.segmented_control(key="pos_section").value == "sinusoidal"
    assert at.slider(key="pos_d_model").value == 32


def test_training_link_from_another_preset(tiny_encoder_dir):
    at = open_page("pages/training.py", str(tiny_encoder_dir), query={"preset": "transfer"})
    assert at.segmented_control(key="trn_section").value == "transfer"
    _follow(at, {"preset": "overfit"})
    assert at.segmented_control(key="trn_section").value == "live"
    assert at.selectbox(key="trn_preset").value == "overfit"
    _follow(at, {"preset": "early_stopping"})
    assert at.selectbox(key="trn_preset").value == "early_stopping"
    assert at.checkbox(key="trn_early_stopping").value


@pytest.fixture
def two_bundled(tiny_encoder_dir, tiny_mlm_dir):
    """Two models listed in the picker like bundled ones (so ?model= names them)."""
    M.register_model("tiny-enc", tiny_encoder_dir, "tiny encoder", kind_hint=M.ENCODER, replace=True, owner=None)
    M.register_model("tiny-mlm", tiny_mlm_dir, "tiny mlm", kind_hint=M.MASKED_LM, replace=True, owner=None)
    yield
    M.REGISTRY.pop("tiny-enc", None)
    M.REGISTRY.pop("tiny-mlm", None)


def test_picker_shows_the_model_a_link_loaded_and_the_url_keeps_it(two_bundled):
    at = AppTest.from_file(str(ROOT / "tests" / "fixtures" / "picker_app.py"), default_timeout=120)
    at.query_params["model"] = "tiny-enc"
    at.run()
    assert at.selectbox(key="picker_choice").value == "tiny-enc"
    _follow(at, {"model": "tiny-mlm"})  # a card link asking for another model
    assert_ok(at)
    assert at.selectbox(key="picker_choice").value == "tiny-mlm"
    assert "active model: tiny-mlm" in [m.value for m in at.markdown]
    _follow(at, {})  # sidebar navigation: no ?model=, the session's model stays and returns to the URL
    assert at.selectbox(key="picker_choice").value == "tiny-mlm"
    assert at.query_params["model"] in ("tiny-mlm", ["tiny-mlm"])
    at.selectbox(key="picker_choice").select("tiny-enc").run()  # the user's own choice
    assert at.query_params["model"] in ("tiny-enc", ["tiny-enc"])
    assert "active model: tiny-enc" in [m.value for m in at.markdown]
