"""Training-lab experiments end to end at CI size, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.bias.templates import template_probe
from llmviz.train import corpus as C
from llmviz.train import experiments as X
from llmviz.train import transfer as T


def test_mean_pooled_equals_manual_mean(tiny_mlm):
    texts = ["the nurse walks .", "a much longer sentence with several more words in it ."]
    got = T.mean_pooled(tiny_mlm, texts)
    for i, text in enumerate(texts):  # one at a time, no padding: plain mean over all tokens
        enc = tiny_mlm.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = tiny_mlm.model.base_model(**enc).last_hidden_state[0]
        np.testing.assert_allclose(got[i], hidden.mean(0).numpy(), atol=1e-5)


def test_classifier_copies_pretrained_encoder_and_scratch_does_not():
    tok = X.tokenizer_for("mlm")
    mlm = X.build_model(X.TinyConfig("mlm", "learned", 1, 32, 2, 64), tok, seed=3)
    pre, scratch = T.make_classifier(mlm, True, 0), T.make_classifier(mlm, False, 0)
    w = mlm.bert.embeddings.word_embeddings.weight
    assert torch.equal(pre.encoder.embeddings.word_embeddings.weight, w)
    assert not torch.equal(scratch.encoder.embeddings.word_embeddings.weight, w)
    assert (
        T.logistic_accuracy(np.array([[0.0], [1.0]]), np.array([0, 1]), np.array([[0.1], [0.9]]), np.array([0, 1]))
        == 1.0
    )


def test_transfer_experiment_small(minilm):
    p = X.TransferParams(sizes=(8, 32), pretrain_stories=60, pretrain_epochs=1, d_model=32, steps=5, n_test=20)
    res, mlm, tok = X.run_transfer(p, minilm)
    assert res.sizes == [8, 32] and set(res.accuracy) == {"finetune", "scratch", "minilm"}
    assert all(len(a) == 2 and all(0.0 <= x <= 1.0 for x in a) for a in res.accuracy.values())
    # minilm's accuracy recomputed from its features directly
    pool, test = C.number_set(32, 1, words="seen"), C.number_set(20, 2)
    ref = T.logistic_accuracy(
        T.mean_pooled(minilm, pool.texts[:8]), pool.labels[:8], T.mean_pooled(minilm, test.texts), test.labels
    )
    assert res.accuracy["minilm"][0] == pytest.approx(ref)
    assert len(res.rows()) == 6


def test_bias_experiment_uses_the_template_probe():
    p = X.BiasParams(stories=60, epochs=1, d_model=32, cda=True)
    res, models = X.run_bias(p)
    assert set(res.log_ratio) == {"skewed", "balanced", "cda"}
    model, tok = models["skewed"]
    loaded = X.as_loaded(model, tok, "skewed")
    probe = template_probe(loaded, X.BIAS_TEMPLATES[0], res.occupations, X.BIAS_TARGETS)
    probe2 = template_probe(loaded, X.BIAS_TEMPLATES[1], res.occupations, X.BIAS_TARGETS)
    ref = ((probe.kurita[:, 0] - probe.kurita[:, 1]) + (probe2.kurita[:, 0] - probe2.kurita[:, 1])) / 2
    np.testing.assert_allclose(res.log_ratio["skewed"], ref, atol=1e-6)
    sign = np.array([1 if C.OCCUPATIONS[o] == "m" else -1 for o in res.occupations])
    assert res.alignment["skewed"] == pytest.approx(float(np.mean(sign * ref)))
    assert res.counts["balanced"] == C.cooccurrence(C.grammar_corpus(60, 8, 0.0, 0).texts, res.occupations)
    assert len(res.rows()) == 3 * len(res.occupations)


def test_cancelling_an_experiment_returns_no_result():
    calls = []
    res, _models = X.run_bias(
        X.BiasParams(stories=60, epochs=2, d_model=32), lambda frac, msg: calls.append(frac) or True
    )
    assert res is None and len(calls) == 1
