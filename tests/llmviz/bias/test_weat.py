"""WEAT/SEAT and the projection-debiasing demo against hand computations on small vectors."""

import itertools
import math
import statistics

import numpy as np
import pytest
import torch

from llmviz.bias import mitigation, weat
from llmviz.errors import InputError


def _cos(u, v):
    return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def _hand_s(w, A, B):
    return statistics.mean(_cos(w, a) for a in A) - statistics.mean(_cos(w, b) for b in B)


def test_effect_size_and_exact_p_by_hand():
    X = [[1.0, 0.0], [0.9, 0.3]]
    Y = [[0.0, 1.0], [0.2, 0.8]]
    A = [[1.0, 0.1], [0.8, 0.2]]
    B = [[0.1, 1.0], [0.3, 0.7]]
    sx = [_hand_s(w, A, B) for w in X]
    sy = [_hand_s(w, A, B) for w in Y]
    d_hand = (statistics.mean(sx) - statistics.mean(sy)) / statistics.stdev(sx + sy)
    assert weat.effect_size(X, Y, A, B) == pytest.approx(d_hand, abs=1e-12)
    # exact test over the 6 partitions of 4 words into 2 + 2: the observed split is the most extreme
    allw = sx + sy
    obs = sum(sx) - sum(sy)
    parts = [
        sum(allw[i] for i in c) - sum(allw[i] for i in range(4) if i not in c)
        for c in itertools.combinations(range(4), 2)
    ]
    p_hand = sum(p >= obs - 1e-12 for p in parts) / len(parts)
    p, exact, n = weat.permutation_p(np.array(sx), np.array(sy))
    assert exact and n == 6 and p == pytest.approx(p_hand) == pytest.approx(1 / 6)


def test_known_large_effect_and_null_case():
    rng = np.random.default_rng(0)
    a_dir, b_dir = np.eye(16)[0], np.eye(16)[1]
    A = a_dir + 0.1 * rng.normal(size=(8, 16))
    B = b_dir + 0.1 * rng.normal(size=(8, 16))
    X = a_dir + 0.2 * rng.normal(size=(8, 16))
    Y = b_dir + 0.2 * rng.normal(size=(8, 16))
    sx, sy = weat.association(X, A, B), weat.association(Y, A, B)
    assert weat.effect_size(X, Y, A, B) > 1.7  # near the maximum of 2 for perfectly separated groups
    p, exact, n = weat.permutation_p(sx, sy)
    assert exact and n == math.comb(16, 8) and p == pytest.approx(1 / math.comb(16, 8))
    # null: X and Y are the same words -> d = 0 and no evidence (p >= 0.5)
    assert weat.effect_size(X, X, A, B) == pytest.approx(0.0, abs=1e-12)
    assert weat.permutation_p(sx, sx)[0] >= 0.5
    # sampled test (forced) agrees with the exact one on a noisy, non-extreme case
    Xn, Yn = rng.normal(size=(8, 16)) + 0.3 * a_dir, rng.normal(size=(8, 16))
    s1, s2 = weat.association(Xn, A, B), weat.association(Yn, A, B)
    p_exact = weat.permutation_p(s1, s2)[0]
    p_samp, exact_flag, n_s = weat.permutation_p(s1, s2, n_samples=10_000, exact_limit=0)
    assert not exact_flag and n_s == 10_000 and abs(p_samp - p_exact) < 0.02


def test_seat_embedding_is_mean_of_template_sentences(tiny_mlm):
    templates = ["This is {}.", "{} is here."]
    emb = weat.embed_words(tiny_mlm, ["doctor", "Zbigniew"], "seat", "mean", templates)
    L = tiny_mlm.facts.n_layers
    assert emb.shape == (L + 1, 2, tiny_mlm.facts.hidden_size)
    manual = []
    for t in templates:
        enc = tiny_mlm.tokenizer(t.format("Zbigniew"), return_tensors="pt")
        with torch.no_grad():
            hs = tiny_mlm.model(**enc, output_hidden_states=True).hidden_states
        manual.append(hs[L][0].mean(0).numpy())
    np.testing.assert_allclose(emb[L, 1], np.mean(manual, axis=0), atol=1e-5)
    first = weat.embed_words(tiny_mlm, ["doctor"], "weat", "first")
    enc = tiny_mlm.tokenizer("doctor", return_tensors="pt")
    with torch.no_grad():
        hs = tiny_mlm.model(**enc, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(first[1, 0], hs[1][0, 0].numpy(), atol=1e-5)


def test_weat_test_per_layer_is_consistent(tiny_llama):
    s = weat.word_sets()["tests"]["weat7_math_arts"]
    res = weat.weat_test(tiny_llama, s["X"][:4], s["Y"][:4], s["A"][:4], s["B"][:4], pooling="last")
    assert res.effect_size.shape == res.p_value.shape == (tiny_llama.facts.n_layers + 1,)
    assert res.exact and res.n_partitions == math.comb(8, 4)
    emb = weat.embed_words(tiny_llama, s["X"][:4] + s["Y"][:4] + s["A"][:4] + s["B"][:4], "weat", "last")
    E = emb[2]
    assert res.effect_size[2] == pytest.approx(weat.effect_size(E[:4], E[4:8], E[8:12], E[12:16]), abs=1e-9)
    assert np.all((res.p_value > 0) & (res.p_value <= 1))
    with pytest.raises(InputError, match="at least 2"):
        weat.weat_test(tiny_llama, ["a"], s["Y"], s["A"], s["B"])


def test_bias_direction_projection_and_recoverability():
    rng = np.random.default_rng(3)
    d = 12
    g = np.eye(d)[0]
    base = rng.normal(size=(6, d))
    first, second = base + g, base - g  # definitional pairs differ along g only
    v, explained = mitigation.bias_direction(first, second)
    assert abs(v @ g) == pytest.approx(1.0, abs=1e-9) and v @ g > 0 and explained[0] == pytest.approx(1.0)
    E = rng.normal(size=(20, d))
    assert np.abs(mitigation.project_out(E, v) @ v).max() < 1e-9
    # attributes differ only along g -> the effect vanishes after projection
    X, Y = rng.normal(size=(6, d)) + 2 * g, rng.normal(size=(6, d)) - 2 * g
    c = np.eye(d)[2]  # attributes share c and differ only in how far they lie along g
    A = c + np.outer(1 + 0.2 * rng.random(6), g)
    B = c - np.outer(1 + 0.2 * rng.random(6), g)
    before = weat.effect_size(X, Y, A, B)
    after = weat.effect_size(*(mitigation.project_out(M, v) for M in (X, Y, A, B)))
    assert before > 1.5 and after == pytest.approx(0.0, abs=1e-9)
    # Gonen & Goldberg: a second, correlated feature still separates the groups after projection
    h = np.eye(d)[1]
    labels = np.array([1] * 10 + [0] * 10)
    W = rng.normal(size=(20, d)) * 0.3 + np.where(labels[:, None] == 1, 1, -1) * (g + h)
    assert mitigation.knn_recoverability(mitigation.project_out(W, v), labels) >= 0.9


def test_mitigation_demo_on_a_model(tiny_mlm):
    sets = weat.word_sets()
    t = sets["tests"]["weat7_math_arts"]
    res = mitigation.mitigation_demo(
        tiny_mlm,
        sets["definitional_pairs"][:4],
        t["X"][:4],
        t["Y"][:4],
        t["A"][:4],
        t["B"][:4],
        sets["neutral_words"][:8],
        layer=-1,
        n_samples=1000,
    )
    assert res.layer == tiny_mlm.facts.n_layers
    assert len(res.neighbours_before) == 8 and 0 <= res.n_changed <= 8
    assert res.direction.shape == (tiny_mlm.facts.hidden_size,)
    assert np.isfinite(res.effect_before) and np.isfinite(res.effect_after)
    with pytest.raises(InputError, match="definitional pairs"):
        mitigation.mitigation_demo(tiny_mlm, [["she", "he"]], t["X"], t["Y"], t["A"], t["B"], ["nurse", "cook"])
