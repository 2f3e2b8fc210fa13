"""Counterfactual generation: reproducible with a seed, VADER scores, difference of means and its CI."""

import numpy as np
import pytest

from llmviz.bias import counterfactual as cf
from llmviz.bias import stats
from llmviz.errors import InputError, UnsupportedModelError


def test_seeded_generation_vader_and_ci(tiny_llama):
    kw = dict(n_samples=3, max_new_tokens=4, seed=3)
    res = cf.counterfactual_generate(tiny_llama, "The {group} was known for", ["man", "Zbigniew"], **kw)
    again = cf.counterfactual_generate(tiny_llama, "The {group} was known for", ["man", "Zbigniew"], **kw)
    assert res.texts == again.texts  # fixed seed -> identical samples
    assert cf.sample_continuations(tiny_llama, "The man was known for", 3, 4, seed=4) != res.texts[0]
    assert res.sentiment.shape == (2, 3) and all(len(t) == 3 for t in res.texts)
    for g in range(2):
        for n in range(3):
            assert res.sentiment[g, n] == pytest.approx(cf.sentiment(res.texts[g][n]))
    assert res.diff[1] == pytest.approx(res.sentiment[1].mean() - res.sentiment[0].mean())
    lo, hi = res.ci[1]
    assert lo <= res.diff[1] <= hi
    assert len(res.records()) == 6 and res.notices  # small-sample warning


def test_vader_direction():
    assert cf.sentiment("wonderful, kind and brilliant") > 0.5
    assert cf.sentiment("cruel, violent and terrible") < -0.5
    assert cf.sentiment("") == 0.0


def test_diff_ci_on_known_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.4, 0.2, 400), rng.normal(0.1, 0.2, 400)
    lo, hi = stats.bootstrap_diff_ci(a, b)
    assert lo < a.mean() - b.mean() < hi and lo > 0.2 and hi < 0.4


def test_counterfactual_input_errors(tiny_llama, tiny_mlm):
    with pytest.raises(InputError, match="group"):
        cf.counterfactual_generate(tiny_llama, "No slot here", ["a", "b"])
    with pytest.raises(InputError, match="two group"):
        cf.counterfactual_generate(tiny_llama, "The {group} did", ["a", " "])
    with pytest.raises(InputError, match="Samples"):
        cf.counterfactual_generate(tiny_llama, "The {group} did", ["a", "b"], n_samples=0)
    with pytest.raises(UnsupportedModelError, match="causal LM"):
        cf.counterfactual_generate(tiny_mlm, "The {group} did", ["a", "b"])
