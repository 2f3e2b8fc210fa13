"""Issue 26: the training lab's translator (an encoder-decoder) as this session's model opens on the Attention page
(encoder, decoder and cross-attention), the Explain page (the decoder's logit lens) and the Intervene page
(patching a source word); the views built for Hugging Face models, and the other pages, say they need one."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import numpy as np
import pytest

from llmviz.models.loading import REGISTRY, load_model
from llmviz.train import translate as grammar
from llmviz.train import translator as TR
from llmviz.train import translator_probes as probes
from tests.fixtures.apptest_util import assert_ok, open_page, texts

TINY = replace(TR.DEFAULT, n_train=100, n_test=10, steps=5, d_model=16, d_ff=32, n_heads=2, eval_every=5)


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    """A tiny translator trained in ~1 s, registered for every session (removed afterwards); its id and model."""
    res = TR.run_translator(TINY)
    mid = res.register("Test translator", owner=None, root=tmp_path_factory.mktemp("trained"))
    yield mid, load_model(mid)
    REGISTRY.pop(mid, None)


def _z(chart) -> np.ndarray:
    """The first trace's z of a drawn plotly chart (a list, or numpy as base64 with dtype and shape)."""
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):
        shape = [int(n) for n in str(z.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape).astype(float)
    return np.asarray(z, dtype=float)


def _pair(loaded):
    return probes.sentence_pair(loaded.model, loaded.tokenizer, TR.PROBE)


def test_attention_page_draws_the_translators_cross_attention(translator):
    mid, loaded = translator
    at = open_page("pages/attention.py", mid)  # no view named: the head view
    assert_ok(at)
    att = probes.pair_attention(loaded.model, loaded.tokenizer, _pair(loaded))
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # cross-attention, encoder and decoder self-attention of layer 0, head 0
    np.testing.assert_allclose(_z(charts[0]), att["cross"][0, 0], atol=1e-6)
    np.testing.assert_allclose(_z(charts[1]), att["enc_self"][0, 0], atol=1e-6)
    at.number_input(key="att_x_layer").set_value(1).run()
    at.number_input(key="att_x_head").set_value(1).run()
    assert_ok(at)
    np.testing.assert_allclose(_z(at.get("plotly_chart")[0]), att["cross"][1, 1], atol=1e-6)
    at.text_input(key="att_x_src").set_value("the zebra slept").run()  # an unknown word: a message
    assert_ok(at)
    assert at.error and "zebra" in at.error[0].value
    stats = open_page("pages/attention.py", mid, query={"view": "stats"})
    assert_ok(stats)
    assert "Hugging Face" in texts(stats) and not stats.get("plotly_chart")


def test_attention_page_bertviz_and_all_heads(translator):
    mid, _ = translator
    at = open_page("pages/attention.py", mid, query={"view": "bertviz", "text": "a cat saw the dog"})
    assert_ok(at)
    assert at.text_input(key="att_x_src").value == "a cat saw the dog"
    assert at.get("iframe") and "encoder" in at.get("iframe")[0].proto.srcdoc.lower()
    at = open_page("pages/attention.py", mid, query={"view": "layer"})
    assert_ok(at)
    assert len(at.get("plotly_chart")) == 3  # all heads' cross-attention, then each side's self-attention


def test_explain_page_reads_the_decoder_with_the_logit_lens(translator):
    mid, loaded = translator
    at = open_page("pages/explain.py", mid)  # no section named: the logit lens
    assert_ok(at)
    lens = probes.pair_lens(loaded.model, loaded.tokenizer, _pair(loaded))
    (chart,) = at.get("plotly_chart")
    np.testing.assert_allclose(_z(chart), lens.prob, atol=1e-6)
    other = open_page("pages/explain.py", mid, query={"section": "attribution"})
    assert_ok(other)
    assert "Hugging Face" in texts(other) and not other.get("plotly_chart")


def test_intervene_page_patches_a_source_word(translator):
    mid, loaded = translator
    at = open_page("pages/intervene.py", mid)
    assert_ok(at)
    words = grammar.words_of(TR.PROBE)
    replacement = grammar.same_kind(words[0])[0]
    patch = probes.patch_source(loaded.model, loaded.tokenizer.src, loaded.tokenizer.tgt, words, 0, replacement)
    (chart,) = at.get("plotly_chart")
    np.testing.assert_allclose(_z(chart), patch.recovery, atol=1e-5)
    steering = open_page("pages/intervene.py", mid, query={"section": "steering"})
    assert_ok(steering)
    assert "Hugging Face" in texts(steering) and not steering.get("plotly_chart")


def test_other_pages_say_they_need_another_model(translator):
    mid, _ = translator
    at = open_page("pages/positional.py", mid)
    assert_ok(at)
    assert "encoder-decoder translator" in texts(at)
    assert any(b.label.startswith("Switch to") for b in at.button)
