"""Explain page, information-flow section under AppTest: the graph and QK attribution on a tiny Llama (GQA),
a tiny Gemma 3 (sliding window) and minilm (BERT, no next-token readout); a masked key is a message, not a
traceback; the top-heads links carry the head to the Attention page."""

from __future__ import annotations

from urllib.parse import quote_plus

from tests.fixtures.apptest_util import assert_ok, open_page, texts

PAGE = "pages/explain.py"
TEXT = "the doctor said that the nurse was late"


def test_flow_section_graph_and_qk_on_tiny_llama(tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"text": TEXT, "section": "flow"})
    assert_ok(at)
    body = texts(at)
    assert "The terms add up to the model's own residual stream" in body
    assert "Pre-norm model" in body
    assert at.slider(key="ex_flow_tau").value == 0.04
    assert "The score" in body and "at the query meeting" in body  # QK summary sentence
    assert "score q·k/√d" in [m.label for m in at.metric]
    at.radio(key="ex_flow_mode").set_value("full").run()
    at.slider(key="ex_flow_tau").set_value(0.0).run()
    assert_ok(at)
    heads = [df.value for df in at.dataframe if "Attention page" in df.value.columns]
    assert heads and heads[0]["Attention page"].str.contains("view=head").all()
    # a key after the query is masked: a message, not a traceback
    at.selectbox(key="ex_qk_query_10").set_value(2).run()
    at.selectbox(key="ex_qk_key_10").set_value(7).run()
    assert_ok(at)
    assert any("cannot attend" in e.value for e in at.error)


def test_flow_section_gemma3_and_chinese(tiny_gemma3_dir):
    at = open_page(PAGE, str(tiny_gemma3_dir), query={"text": TEXT, "section": "flow", "lang": "zh"})
    assert_ok(at)
    body = texts(at)
    assert "三明治归一化" in body and "各项相加等于模型自己" in body


def test_flow_section_on_minilm(minilm):
    at = open_page(PAGE, "minilm", query={"text": "A man plays a guitar.", "section": "flow"})
    assert_ok(at)
    body = texts(at)
    assert "BERT is post-norm" in body
    assert "no next-token readout" in body


def test_playground_links_carry_prompt_and_generation(tiny_llama_dir):
    """After a generation, "Open in Attention / Information flow" carry the prompt plus what was generated."""
    at = open_page("pages/playground.py", str(tiny_llama_dir), query={"preset": "creative"})
    at.slider(key="pg_max_creative").set_value(3).run()
    at.button(key="pg_generate").click().run()
    assert_ok(at)
    (gen,) = at.session_state["pg_branches"]
    links = {p.proto.label: p.proto for p in at.get("page_link")}
    full = gen.prompt.text + gen.text
    for label, page, section in (
        ("Open in Attention", "attention", "head"),
        ("Open in Information flow", "explain", "flow"),
    ):
        proto = links[label]
        assert page in proto.page
        assert quote_plus(full) in str(proto)  # the query parameters hold the whole text
        assert section in str(proto)
