"""Fill-mask: masked LM == manual softmax at the mask index (found by hand); several masks;
no-mask message; 5,000 words bounded; causal candidate scoring == manual sentence log-likelihood."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.generation.fill_mask import (
    CLASSIC_EXAMPLE,
    MAX_FILL_WORDS,
    fill_mask,
    normalize_masks,
    parse_candidates,
)
from llmviz.generation.transcript import fill_mask_csv, fill_mask_json


def manual_topk(loaded, text: str, k: int):
    """Reference: tokenize, locate '[MASK]' in the token list by string, forward, softmax, top-k."""
    tok = loaded.tokenizer
    enc = tok(text, return_tensors="pt")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
    positions = [i for i, t in enumerate(tokens) if t == "[MASK]"]
    with torch.no_grad():
        logits = loaded.model(**enc).logits[0]
    out = []
    for pos in positions:
        probs = torch.softmax(logits[pos], dim=-1)
        vals, idx = probs.topk(k)
        out.append((pos, idx.tolist(), vals.numpy()))
    return out


def test_classic_example_equals_manual_softmax_at_mask_index(tiny_mlm):
    result = fill_mask(tiny_mlm, CLASSIC_EXAMPLE, top_k=5)
    ((pos, ids, vals),) = manual_topk(tiny_mlm, CLASSIC_EXAMPLE, 5)
    (slot,) = result.slots
    assert result.method == "masked_lm" and slot.position == pos == 4  # [CLS] this is a [MASK]
    assert slot.token_ids == ids
    np.testing.assert_allclose(slot.probs, vals, rtol=1e-5, atol=1e-7)
    assert slot.filled[0] == CLASSIC_EXAMPLE.replace("[MASK]", slot.candidates[0])


def test_several_masks_each_match_manual(tiny_mlm):
    text = "The [MASK] sat on the [MASK] near the <mask> door."
    result = fill_mask(tiny_mlm, text, top_k=3)
    ref = manual_topk(tiny_mlm, text.replace("<mask>", "[MASK]"), 3)
    assert [s.position for s in result.slots] == [r[0] for r in ref] and len(ref) == 3
    for slot, (_, ids, vals) in zip(result.slots, ref):
        assert slot.token_ids == ids
        np.testing.assert_allclose(slot.probs, vals, rtol=1e-5, atol=1e-7)
    assert [r["mask"] for r in result.rows()] == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_mask_aliases_are_normalised_to_the_models_token():
    assert normalize_masks("a [MASK] b [mask] c <mask>", "<mask>") == ("a <mask> b <mask> c <mask>", 3)
    assert normalize_masks("a <mask> b", "[MASK]") == ("a [MASK] b", 1)
    assert normalize_masks("no mask here", "[MASK]") == ("no mask here", 0)


def test_no_mask_and_empty_give_clear_messages(tiny_mlm, tiny_encoder_dir):
    with pytest.raises(InputError, match=r"No mask.*\[MASK\].*This is a \[MASK\] sentence"):
        fill_mask(tiny_mlm, "This sentence has no gap.")
    with pytest.raises(InputError, match="empty"):
        fill_mask(tiny_mlm, "  ")
    from llmviz.models.loading import load_model

    with pytest.raises(UnsupportedModelError, match="encoder"):
        fill_mask(load_model(str(tiny_encoder_dir)), CLASSIC_EXAMPLE)


def test_5000_words_are_bounded_with_a_notice(tiny_mlm):
    text = "This is a [MASK] sentence. " + "word " * 5000 + "[MASK] at the end"
    result = fill_mask(tiny_mlm, text, top_k=2)
    assert len(result.text.split()) == MAX_FILL_WORDS
    assert any("5,009 words" in n and "1 mask(s) after the cut" in n for n in result.notices)
    assert any("at most 128" in n for n in result.notices)  # tiny model: 128 positions
    (slot,) = result.slots
    ((pos, ids, vals),) = manual_topk(tiny_mlm, "This is a [MASK] sentence.", 2)
    assert slot.position == pos and slot.token_ids == ids  # bidirectional: the long context changes probs
    with pytest.raises(InputError, match="after the first"):
        fill_mask(tiny_mlm, "word " * 5000 + "[MASK]")


def manual_sentence_ll(loaded, sentence: str) -> float:
    tok = loaded.tokenizer
    start = (
        tok.bos_token_id
        if tok.bos_token_id is not None
        else (tok.eos_token_id if tok.eos_token_id is not None else tok.cls_token_id)
    )
    ids = [start] + tok(sentence, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(loaded.model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
    return float(sum(logp[i - 1, ids[i]] for i in range(1, len(ids))))


def test_causal_scoring_equals_manual_sentence_log_likelihood(tiny_llama):
    result = fill_mask(tiny_llama, "The cat sat on the [MASK].", candidates="mat, sofa, elephant")
    assert result.method == "causal_scoring" and result.candidate_source == "user"
    (slot,) = result.slots
    manual = {w: manual_sentence_ll(tiny_llama, f"The cat sat on the {w}.") for w in ("mat", "sofa", "elephant")}
    for word, ll in zip(slot.candidates, slot.log_likelihoods):
        assert ll == pytest.approx(manual[word], abs=1e-3)
    assert list(slot.log_likelihoods) == sorted(slot.log_likelihoods, reverse=True)
    expected = np.exp(slot.log_likelihoods - slot.log_likelihoods.max())
    np.testing.assert_allclose(slot.probs, expected / expected.sum(), rtol=1e-9)


def test_causal_proposals_are_the_models_top_next_words(tiny_llama):
    result = fill_mask(tiny_llama, "the cat sat on the [MASK] today", top_k=4)
    assert result.candidate_source == "proposals" and len(result.slots[0].candidates) == 4
    tok = tiny_llama.tokenizer
    ids = [tok.cls_token_id] + tok("the cat sat on the", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = tiny_llama.model(input_ids=torch.tensor([ids])).logits[0, -1]
    words = [tok.decode([i]).strip() for i in logits.topk(400).indices.tolist()]
    words = [w for w in words if w.isalnum()]
    assert set(result.slots[0].candidates) == set(words[:4])
    with pytest.raises(InputError, match="one slot"):
        fill_mask(tiny_llama, "[MASK] and [MASK]")


def test_candidates_parsing_and_exports(tiny_mlm):
    assert parse_candidates("good, bad,\n good ; ugly") == ["good", "bad", "ugly"]
    with pytest.raises(InputError, match="at most"):
        parse_candidates(",".join(f"w{i}" for i in range(30)))
    result = fill_mask(tiny_mlm, "</script> is a [MASK] 😀 مرحبا", top_k=2)
    doc = json.loads(fill_mask_json(result, tiny_mlm.facts))
    assert doc["provenance"]["parameters"]["text"].startswith("</script>")
    assert [r["candidate"] for r in doc["rows"]] == result.slots[0].candidates
    assert fill_mask_csv(result, tiny_mlm.facts).count("\n") >= 3
