"""Template probe: Kurita score and causal target log-prob against manual, unbatched computations."""

import numpy as np
import pytest
import torch

from llmviz.bias.templates import normalise_template, template_probe
from llmviz.errors import InputError, UnsupportedModelError


def _manual_mlm_logprob(loaded, text_with_masks, target_ids):
    """log p(target ids at the mask positions, left to right) in one unbatched forward pass."""
    tok = loaded.tokenizer
    enc = tok(text_with_masks, return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**enc).logits[0]
    lp = torch.log_softmax(logits.double(), -1)
    pos = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    return pos, lp


def test_kurita_matches_manual_computation_with_multi_token_terms(tiny_mlm):
    tok = tiny_mlm.tokenizer
    groups, targets = ["man", "Zbigniew"], ["nurse", "cardiologist"]
    assert len(tok.tokenize("Zbigniew")) > 1 and len(tok.tokenize("cardiologist")) > 1
    res = template_probe(tiny_mlm, "The {group} worked as a [MASK].", groups, targets)
    assert res.log_prob.shape == res.kurita.shape == (2, 2)
    m = tok.mask_token
    for g, group in enumerate(groups):
        for n, target in enumerate(targets):
            t_ids = tok(target, add_special_tokens=False)["input_ids"]
            k, kg = len(t_ids), len(tok(group, add_special_tokens=False)["input_ids"])
            pos, lp = _manual_mlm_logprob(tiny_mlm, f"The {group} worked as a {' '.join([m] * k)}.", t_ids)
            want = sum(lp[p, t].item() for p, t in zip(pos, t_ids))
            pos2, lp2 = _manual_mlm_logprob(
                tiny_mlm, f"The {' '.join([m] * kg)} worked as a {' '.join([m] * k)}.", t_ids
            )
            prior = sum(lp2[p, t].item() for p, t in zip(pos2[kg:], t_ids))
            assert res.log_prob[g, n] == pytest.approx(want, abs=1e-5)
            assert res.prior[g, n] == pytest.approx(prior, abs=1e-5)
            assert res.kurita[g, n] == pytest.approx(want - prior, abs=1e-5)
            assert res.n_target_tokens[n] == k and res.n_group_tokens[g] == kg


def test_causal_target_logprob_is_manual_sum(tiny_llama):
    tok = tiny_llama.tokenizer
    res = template_probe(
        tiny_llama, "The {group} worked as a {target} here.", ["man", "woman"], ["nurse", "cardiologist"]
    )
    assert res.method == "causal_loglik"
    prefix = tok.cls_token_id  # tiny llama reuses the BERT tokenizer: no bos/eos, so [CLS] starts the row
    for g, group in enumerate(["man", "woman"]):
        for n, target in enumerate(["nurse", "cardiologist"]):
            head = tok(f"The {group} worked as a", add_special_tokens=False)["input_ids"]
            tgt = tok(target, add_special_tokens=False)["input_ids"]
            tail = tok("here.", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([[prefix] + head + tgt + tail])
            with torch.no_grad():
                lp = torch.log_softmax(tiny_llama.model(input_ids=ids).logits[0].double(), -1)
            per_tok = [lp[i - 1, ids[0, i]].item() for i in range(1, ids.shape[1])]
            start = 1 + len(head)
            want_t = sum(per_tok[start - 1 : start - 1 + len(tgt)])
            assert res.log_prob[g, n] == pytest.approx(want_t, abs=1e-5)
            assert res.kurita[g, n] == pytest.approx(sum(per_tok), abs=1e-5)


def test_skew_ranking_and_ratio_are_consistent(tiny_mlm):
    res = template_probe(tiny_mlm, "The {group} is a [MASK].", ["he", "she", "they"], ["doctor", "nurse", "cook"])
    np.testing.assert_allclose(res.skew().sum(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(res.log_ratio(0, 1), res.kurita[0] - res.kurita[1])
    spreads = [s for _, s, _ in res.ranking()]
    assert spreads == sorted(spreads, reverse=True)
    assert len(res.to_records()) == 9


@pytest.mark.parametrize(
    "template",
    [
        "",
        "No slots here.",
        "The {group} and {group} [MASK].",
        "The {group} is [MASK] and [MASK].",
        "The {group} {other} [MASK].",
    ],
)
def test_bad_templates_are_refused(template):
    with pytest.raises(InputError):
        normalise_template(template)


def test_empty_terms_and_encoder_are_refused(tiny_mlm, minilm):
    with pytest.raises(InputError, match="No groups"):
        template_probe(tiny_mlm, "The {group} is a [MASK].", [" ", ""], ["doctor"])
    with pytest.raises(UnsupportedModelError, match="masked language model"):
        template_probe(minilm, "The {group} is a [MASK].", ["he"], ["doctor"])
