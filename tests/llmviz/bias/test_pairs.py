"""Minimal pairs: batched CrowS-Pairs PLL equals the straightforward reference; causal log-likelihood
equals a manual sum of token log-probs; drill-down and summaries are consistent."""

import numpy as np
import pandas as pd
import pytest
import torch

from llmviz.bias import pairs, stats
from llmviz.bias.pairs_data import starter_pairs
from llmviz.errors import InputError, UnsupportedModelError
from tests.fixtures.crows_reference import reference_crows_scores

PAIRS = [  # multi-token words (Zbigniew, cardiologist, DeShawn) and pairs of different lengths
    ("Zbigniew was a cardiologist in Warsaw.", "John was a cardiologist in Warsaw.", "stereo", "nationality"),
    ("The poor family could not pay.", "The very rich family could not pay the rent.", "stereo", "socioeconomic"),
    ("DeShawn ran from the police.", "Bradley ran from the police.", "stereo", "race-color"),
    ("He fixed the car.", "She fixed the car.", "antistereo", "gender"),
]


def _frame(rows=PAIRS):
    return pd.DataFrame(rows, columns=["sent_more", "sent_less", "stereo_antistereo", "bias_type"])


def test_batched_pll_equals_reference_crows_pairs(tiny_mlm):
    tok = tiny_mlm.tokenizer
    assert len(tok.tokenize("Zbigniew")) > 1 and len(tok.tokenize("cardiologist")) > 1
    res = pairs.score_pairs(tiny_mlm, _frame(), batch_size=7)  # odd batch size: copies span batches
    for i, (more, less, _, _) in enumerate(PAIRS):
        ref_more, ref_less = reference_crows_scores(tiny_mlm.model, tok, more, less)
        assert res.score_more[i] == pytest.approx(ref_more, abs=1e-5)
        assert res.score_less[i] == pytest.approx(ref_less, abs=1e-5)
    assert res.method == "mlm_pll"
    assert (res.n_tokens > 0).all()


def test_causal_scores_equal_manual_sum_of_token_logprobs(tiny_llama):
    res = pairs.score_pairs(tiny_llama, _frame(), batch_size=3)
    tok = tiny_llama.tokenizer
    for i, (more, less, _, _) in enumerate(PAIRS):
        for sent, got in ((more, res.score_more[i]), (less, res.score_less[i])):
            ids = torch.tensor([[tok.cls_token_id] + tok(sent, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                logits = tiny_llama.model(input_ids=ids).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            manual = sum(lp[t - 1, ids[0, t]].item() for t in range(1, ids.shape[1]))
            assert got == pytest.approx(manual, abs=1e-5)


def test_summary_matches_counts_and_ci_contains_point(tiny_mlm):
    res = pairs.score_pairs(tiny_mlm, starter_pairs().frame.iloc[::6])
    s = res.summary(n_boot=1000)
    assert s["n"] == 12
    assert s["pct_stereotype"] == pytest.approx(100 * np.mean(res.score_more > res.score_less))
    assert s["ci95"][0] <= s["pct_stereotype"] <= s["ci95"][1]
    assert sum(v["n"] for v in s["by_bias_type"].values()) == 12
    for t, v in s["by_bias_type"].items():
        sel = res.frame["bias_type"] == t
        assert v["pct_stereotype"] == pytest.approx(100 * np.mean(res.diff[sel] > 0))
    table = res.table()
    assert list(table.columns[:6]) == [
        "sent_more",
        "sent_less",
        "stereo_antistereo",
        "bias_type",
        "score_more",
        "score_less",
    ]


def test_get_span_matches_difflib_blocks():
    t1, t2 = pairs.get_span([1, 5, 6, 7, 2], [1, 9, 6, 7, 8, 2])
    assert t1 == [0, 2, 3, 4] and t2 == [0, 2, 3, 5]


def test_pair_detail_mlm_token_diffs_sum_to_score_difference(tiny_mlm):
    more, less = PAIRS[1][:2]
    d = pairs.pair_detail(tiny_mlm, more, less)
    res = pairs.score_pairs(tiny_mlm, _frame([PAIRS[1]]))
    assert np.nansum(d.lp_more) == pytest.approx(res.score_more[0], abs=1e-5)
    assert d.token_diff.sum() == pytest.approx(res.diff[0], abs=1e-5)
    L, H = tiny_mlm.facts.n_layers, tiny_mlm.facts.n_heads
    A = len(d.attention_tokens)
    assert d.attention_diff.shape == (L, H, A, A)
    # the aligned attention difference is exactly the two extracted maps restricted to shared tokens
    from llmviz.attention.extract import extract_attention

    r1, r2 = extract_attention(tiny_mlm, more), extract_attention(tiny_mlm, less)
    s1, s2 = pairs.get_span(r1.token_ids, r2.token_ids)
    np.testing.assert_allclose(
        d.attention_diff[1, 2, 0, 1], r1.attention[1, 2, s1[0], s1[1]] - r2.attention[1, 2, s2[0], s2[1]], atol=1e-6
    )


def test_pair_detail_causal(tiny_llama):
    d = pairs.pair_detail(tiny_llama, "He fixed the car.", "She fixed the car.")
    res = pairs.score_pairs(tiny_llama, _frame([PAIRS[3]]))
    assert np.nansum(d.lp_more) == pytest.approx(res.score_more[0], abs=1e-5)
    assert len(d.shared_tokens) == len(d.token_diff) >= 3


def test_bootstrap_ci_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small, big = rng.normal(0.3, 1, 30), rng.normal(0.3, 1, 3000)
    lo_s, hi_s = stats.bootstrap_ci(small, n_boot=2000)
    lo_b, hi_b = stats.bootstrap_ci(big, n_boot=2000)
    assert lo_s <= small.mean() <= hi_s and lo_b <= big.mean() <= hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 5  # ~ 1/sqrt(100) of the width
    # close to the normal-theory interval 1.96 * sd / sqrt(n)
    assert (hi_b - lo_b) / 2 == pytest.approx(1.96 * big.std() / np.sqrt(big.size), rel=0.1)
    lo, hi = stats.bootstrap_diff_ci(big, big - 1.0, n_boot=1000)
    assert lo < 1.0 < hi


def test_empty_and_encoder_inputs(tiny_mlm, minilm):
    with pytest.raises(InputError):
        pairs.score_pairs(tiny_mlm, _frame([]))
    with pytest.raises(InputError, match="empty"):
        pairs.score_pairs(tiny_mlm, _frame([(" ", "x y", "stereo", "age")]))
    with pytest.raises(UnsupportedModelError, match="masked language model"):
        pairs.score_pairs(minilm, _frame())
