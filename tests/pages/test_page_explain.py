"""Explain page under AppTest: one run per target kind, the logit-lens and ablation sections via deep links,
a contrastive target, hostile input and errors shown without tracebacks."""

from __future__ import annotations

import torch

from llmviz.models.loading import load_model
from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape

PAGE = "pages/explain.py"


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_next_token_attribution_with_deep_link(tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"text": "the doctor said that", "target": "he"})
    assert_ok(at)
    assert "Completeness holds" not in texts(at)  # heavy work starts on a click (issue 13)
    at.button(key="ex_attr_start").click().run()
    body = texts(at)
    assert "logit('he') at position" in body
    assert "Completeness holds" in body  # IG gap at the default 32 steps is small on the tiny model
    assert at.segmented_control(key="ex_section").value == "attribution"
    # f(x) on the page is the model's own logit for "he" after the text
    loaded = load_model(str(tiny_llama_dir))
    ids = loaded.tokenizer("the doctor said that", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logit = loaded.model(input_ids=ids).logits[0, -1, loaded.tokenizer.convert_tokens_to_ids("he")]
    assert float(_metric(at, "f(x)")) == round(float(logit), 4)
    # contrastive: type a contrast token
    at.text_input(key="ex_contrast").input("she").run()
    assert_ok(at)
    assert "logit('he') − logit('she')" in texts(at)


def test_masked_token_attribution(tiny_mlm_dir):
    at = open_page(PAGE, str(tiny_mlm_dir), query={"text": "the capital of france is [MASK] ."})
    assert_ok(at)
    loaded = load_model(str(tiny_mlm_dir))
    enc = loaded.tokenizer("the capital of france is [MASK] .", return_tensors="pt")
    with torch.no_grad():
        top = int(loaded.model(**enc).logits[0, 6].argmax())
    assert f"logit('{loaded.tokenizer.convert_ids_to_tokens(top)}') at position 6 (top prediction)" in texts(at)
    at.text_area(key="ex_text_masked_token").input("no mask in this text").run()
    assert_ok(at)
    assert any("exactly one [MASK]" in unescape(e.value) for e in at.error)


def test_similarity_attribution_on_minilm(minilm):
    at = open_page(PAGE, "minilm", query={"text": "A man plays a guitar.", "section": "attribution"})
    at.button(key="ex_attr_start").click().run()
    assert_ok(at)
    assert "cos(mean-pooled A, mean-pooled B)" in texts(at)
    tok = minilm.tokenizer
    with torch.no_grad():
        a, b = (
            minilm.model(**tok(s, return_tensors="pt")).last_hidden_state[0].mean(0)
            for s in ("A man plays a guitar.", "Someone performs music for an audience.")
        )
    assert float(_metric(at, "f(x)")) == round(float(torch.cosine_similarity(a, b, dim=0)), 4)
    # the logit lens is for causal LMs only: a clear note, no crash
    at.segmented_control(key="ex_section").set_value("logit_lens").run()
    assert_ok(at)
    assert "causal LM" in texts(at)


def test_logit_lens_and_ablation_sections(tiny_llama_dir):
    at = open_page(PAGE, str(tiny_llama_dir), query={"text": "the doctor said that", "section": "logit_lens"})
    assert_ok(at)
    assert "reproduces the model's own output distribution (max difference 0.0e+00)" in texts(at)
    at.segmented_control(key="ex_section").set_value("ablation").run()
    assert_ok(at)
    assert "Heads that matter most" not in texts(at)  # ~50 s on smollm2: starts on a click
    at.button(key="ex_abl_start").click().run()
    body = texts(at)
    assert "Heads that matter most: L" in body and "changes by 0.0e+00" in body, body


def test_ablation_computed_by_another_session_shows_again(tiny_llama_dir):
    """A second student asking for the same ablation gets the server's kept result. It used to raise
    CacheReplayClosureError: st.cache_data recorded the progress bar's updates (a block made outside
    the cached function) and could not replay them into the new run (a full-suite failure, since
    tests/pages/test_export_names.py computes the same ablation first)."""
    query = {"text": "the nurse said that", "section": "ablation"}
    for _ in range(2):  # two sessions, one server process: the second is a cache hit
        at = open_page(PAGE, str(tiny_llama_dir), query=query)
        at.button(key="ex_abl_start").click().run()
        assert_ok(at)
        assert "Heads that matter most: L" in texts(at), texts(at)


def test_hostile_and_empty_input(tiny_llama_dir):
    xss = "</script><script>alert(1)</script> <img src=x onerror=alert(2)> 🙂 مرحبا " + "word " * 3000
    at = open_page(PAGE, str(tiny_llama_dir), query={"text": xss})
    assert_ok(at)
    assert any("cut to the first 64" in w.value for w in at.warning)
    at.text_area(key="ex_text_next_token").input("   ").run()
    assert_ok(at)
    assert any("empty" in unescape(e.value) for e in at.error)
    assert at.text_area(key="ex_text_next_token").value == "   "  # what the user typed is kept
