"""AppTest: the attention page with both bundled models, a pair, empty and very long text, deep links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmviz.viz.bertviz_offline import MODEL_VIEW_SCROLL_PX
from tests.fixtures.apptest_util import assert_ok, open_page, texts
from ui.links import PRESENTER_KEY

PAGE = "pages/attention.py"
EN = json.loads(
    (Path(__file__).resolve().parents[2] / "llmviz/catalogues/en/attention.json").read_text(encoding="utf-8")
)

pytestmark = pytest.mark.slow


def test_minilm_statistics_view():
    at = open_page(PAGE, "minilm", query={"text": "The cat sat on the mat.", "layer": "2", "head": "5"})
    assert_ok(at)
    assert EN["title"] in texts(at)
    assert at.number_input(key="att_layer").value == 2 and at.number_input(key="att_head").value == 5
    assert len(at.get("plotly_chart")) >= 2  # statistic heatmap + the selected head
    assert not at.error
    assert not at.get("download_button")  # export files are built only on request
    at.toggle(key="att_stats_x_on").set_value(True).run()
    assert_ok(at)
    assert len(at.get("download_button")) == 5  # figure HTML, stats CSV/JSON, all weights NPZ/JSON
    assert len(at.dataframe) == 1  # the top-heads table
    at.session_state[PRESENTER_KEY] = True
    at.run()
    assert_ok(at)
    assert not at.dataframe  # presenter mode hides the advanced table


def test_smollm2_formula_deep_link():
    at = open_page(PAGE, "smollm2", query={"text": "Hello world", "view": "formula", "layer": "29", "head": "8"})
    assert_ok(at)
    body = texts(at)
    assert "Recomputed with the model's weights" in body
    assert "Grouped-query attention: 9 query heads share 3" in body
    assert at.segmented_control(key="att_view").value == "formula"
    assert not at.text_input  # no second sentence for a causal model


def test_pair_on_minilm_and_unknown_view_falls_back():
    at = open_page(PAGE, "minilm", query={"text": "A man walks.", "text_b": "He is tired.", "view": "bogus"})
    assert_ok(at)
    assert at.text_input(key="att_text_b").value == "He is tired."
    assert at.segmented_control(key="att_view").value == "stats"
    at.toggle(key="att_hide").set_value(True)
    at.segmented_control(key="att_view").set_value("bertviz").run()
    assert_ok(at)
    assert "View payload" in texts(at)
    at.segmented_control(key="att_view").set_value("rollout").run()  # rollout of the renormalised weights
    assert_ok(at)
    assert len(at.get("plotly_chart")) == 1


def test_five_thousand_words_are_cut_with_notice_then_empty_text():
    at = open_page(PAGE, "minilm", query={"text": " ".join(["word"] * 5000), "view": "head"})
    assert_ok(at)
    warning = " ".join(str(w.value) for w in at.warning)
    assert "cut to the first 512 tokens" in warning and "5002" in warning
    assert "Input limit: 512 tokens" in texts(at)
    at.segmented_control(key="att_view").set_value("bertviz").run()  # bounded to its own token limit
    assert_ok(at)
    assert "draws the first 96 tokens" in " ".join(str(w.value) for w in at.warning)
    at.text_area(key="att_text").set_value("   ").run()
    assert_ok(at)
    assert EN["empty"] in texts(at)
    assert not at.get("plotly_chart")


@pytest.fixture(scope="module")
def deep_llama_dir(tmp_path_factory):
    """A causal LM with more layers than the head view ships at once (smollm2 has 30)."""
    from tests.fixtures.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("deep_llama"), layers=16)


def test_model_view_shows_every_layer_in_a_scroll_area(deep_llama_dir):
    # issue 13: for smollm2 the model view showed only layer 0, and the frame was a guessed height
    import re

    at = open_page(PAGE, str(deep_llama_dir), query={"text": "The cat sat on the mat.", "view": "bertviz"})
    assert_ok(at)
    assert at.multiselect[0].value == [0]  # head view: one layer at a time for a deep model
    at.radio(key="att_bv_kind").set_value("model").run()
    assert_ok(at)
    assert at.multiselect[0].value == list(range(16))
    payload = json.loads(re.search(r"llmvizDecode\((\{.*?\})\)", at.get("iframe")[0].proto.srcdoc, re.S).group(1))
    assert payload["include_layers"] == list(range(16)) and len(payload["attention"][0]["attn"]) == 16
    assert not at.warning  # 16 layers x 4 heads x 9 tokens fit the model view's line budget
    # inside a scroll area of the page (the browser test checks the frame is as tall as its drawing)
    assert [b.proto.height_config.pixel_height for b in _blocks_holding(at._tree, "iframe")] == [MODEL_VIEW_SCROLL_PX]
    at.radio(key="att_bv_kind").set_value("head").run()
    assert not _blocks_holding(at._tree, "iframe")[0].proto.height_config.pixel_height  # the head view: no scroll


def _blocks_holding(node, element_type: str) -> list:
    """The blocks whose direct children include an element of ``element_type``."""
    found = []
    for child in (getattr(node, "children", None) or {}).values():
        if getattr(child, "type", None) == element_type and node not in found:
            found.append(node)
        found += _blocks_holding(child, element_type)
    return found
