"""StereoSet: metrics against hand-computed numbers; sentence scores against a one-at-a-time loop."""

import json

import numpy as np
import pytest
import torch

from llmviz.bias import stereoset as SS
from llmviz.errors import InputError
from tests.fixtures import stereoset_fixtures as FX


def _data():
    return SS.parse_stereoset(json.dumps(FX.gold_doc()).encode(), "gold")


def _scores():
    return SS.parse_predictions(json.dumps(FX.predictions_doc()).encode())


def test_metrics_match_hand_computation():
    res = SS.evaluate(_data(), _scores())
    for split in ("intrasentence", "intersentence"):
        assert set(res[split]) == set(FX.EXPECTED[split])
        for bt, (n, lm, ss, icat) in FX.EXPECTED[split].items():
            got = res[split][bt]
            assert got["Count"] == n
            assert got["LM Score"] == pytest.approx(lm) and got["SS Score"] == pytest.approx(ss)
            assert got["ICAT Score"] == pytest.approx(icat)
    n, lm, ss, icat = FX.EXPECTED["overall"]
    assert res["overall"] == pytest.approx({"Count": n, "LM Score": lm, "SS Score": ss, "ICAT Score": icat})


def test_bootstrap_cis_bracket_and_are_seeded():
    data, scores = _data(), _scores()
    ci = SS.bootstrap_cis(data, scores, n_boot=400, seed=3)
    assert ci == SS.bootstrap_cis(data, scores, n_boot=400, seed=3)
    res = SS.evaluate(data, scores)
    for k in SS.METRIC_KEYS:
        lo, hi = ci["overall"][k]
        assert lo <= res["overall"][k] + 1e-9 and res["overall"][k] <= hi + 1e-9
    # a single example per term cannot vary: the race group's SS is 100 in every resample
    assert ci["intrasentence"]["race"]["SS Score"] == [100.0, 100.0]


def test_bootstrap_replicate_equals_metric_on_resample():
    """The vectorised bootstrap computes exactly group_scores on each resample (checked for one draw)."""
    data, scores = _data(), _scores()
    outs = SS.outcomes(data, scores)
    rng = np.random.default_rng(0)
    draw = rng.integers(0, len(outs), size=(1, len(outs)))
    expected = SS.group_scores([outs[i] for i in draw[0]])
    got = SS._boot_group(outs, 1, 0)  # same seed -> same draw
    assert got["SS Score"][0] == pytest.approx(expected["SS Score"])
    assert got["LM Score"][0] == pytest.approx(expected["LM Score"])


def test_loader_errors_and_illustrative_set():
    ill = SS.illustrative_set()
    assert len(ill.intrasentence) == 8 and len(ill.intersentence) == 6
    assert all("BLANK" in ex.context for ex in ill.intrasentence)
    bad = [
        b"[1, 2]",
        b'{"data": {"foo": []}}',
        b"not json",
        json.dumps(
            {
                "data": {
                    "intrasentence": [
                        {"id": "x", "target": "t", "bias_type": "g", "context": "no blank", "sentences": []}
                    ]
                }
            }
        ).encode(),
    ]
    for raw in bad:
        with pytest.raises(InputError):
            SS.parse_stereoset(raw)
    doc = FX.gold_doc()
    doc["data"]["intersentence"][0]["sentences"][0]["gold_label"] = "neutral"
    with pytest.raises(InputError, match="gold_label"):
        SS.parse_stereoset(json.dumps(doc).encode())
    with pytest.raises(InputError, match="no score"):
        SS.evaluate(_data(), {})


def test_filler_span():
    ctx = "The nurse said BLANK would be back soon."
    for filler in ("she", "he", "the old man"):
        s = ctx.replace("BLANK", filler)
        a, b = SS.filler_span(ctx, s)
        assert s[a:b] == filler
    assert SS.filler_span("BLANK people are here.", "Tall people are here.") == (0, 4)


def test_predictions_round_trip():
    data = SS.illustrative_set()
    scores = {sid: float(i) for i, (sid, _) in enumerate(data.sentence_items())}
    assert SS.parse_predictions(json.dumps(SS.predictions_doc(data, scores)).encode()) == scores


# ---------------------------------------------------------------- scores vs a one-at-a-time loop
def _items():
    data = SS.illustrative_set()
    return [it for _, it in data.sentence_items()][::2]  # both splits, all labels


def _ref_causal(loaded, item):
    tok, model = loaded.tokenizer, loaded.model
    # BOS, else EOS; the tiny models use a BERT vocabulary that has neither, so [CLS] (the library's last fallback)
    pre = next(x for x in (tok.bos_token_id, tok.eos_token_id, tok.cls_token_id) if x is not None)
    sent = tok(item.sentence if item.split == "intrasentence" else " " + item.sentence, add_special_tokens=False)[
        "input_ids"
    ]
    ctx = [] if item.split == "intrasentence" else tok(item.context, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[pre] + ctx + sent])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    start = 1 + len(ctx)
    toks = [lp[j - 1, ids[0, j]].item() for j in range(start, ids.shape[1])]
    return float(np.exp(np.mean(toks)))


def test_causal_scores_equal_unbatched_loop(tiny_llama, one_thread):
    items = _items()
    got = SS.score_items(tiny_llama, items, batch_size=4)
    ref = [_ref_causal(tiny_llama, it) for it in items]
    assert got == pytest.approx(ref, rel=1e-5, abs=1e-9)


def _ref_masked(loaded, item):
    tok, model = loaded.tokenizer, loaded.model
    if item.split == "intrasentence":
        pre = item.context.split("BLANK")[0]
        filler = item.sentence[len(pre) : len(item.sentence) - len(item.context.split("BLANK")[1])]
        ids = tok(item.sentence)["input_ids"]
        start = 1 + len(tok(pre.strip(), add_special_tokens=False)["input_ids"]) if pre.strip() else 1
        positions = list(range(start, start + len(tok(filler, add_special_tokens=False)["input_ids"])))
    else:
        enc = tok(item.context, item.sentence)
        ids = enc["input_ids"]
        positions = [j for j, tt in enumerate(enc["token_type_ids"]) if tt == 1][:-1]  # drop the final [SEP]
    vals = []
    for p in positions:
        row = list(ids)
        row[p] = tok.mask_token_id
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([row])).logits[0, p].double(), -1)
        vals.append(lp[ids[p]].item())
    vals = np.array(vals)
    return float(np.exp(vals).mean()) if item.split == "intrasentence" else float(vals.sum())


def test_masked_scores_equal_unbatched_loop(tiny_mlm, one_thread):
    items = _items()
    got = SS.score_items(tiny_mlm, items, batch_size=5)
    ref = [_ref_masked(tiny_mlm, it) for it in items]
    assert got == pytest.approx(ref, rel=1e-5, abs=1e-9)


def test_encoder_is_refused(tiny_encoder_dir):
    from llmviz.errors import UnsupportedModelError
    from llmviz.models.loading import load_model

    with pytest.raises(UnsupportedModelError, match="StereoSet"):
        SS.score_items(load_model(str(tiny_encoder_dir)), _items()[:1])
