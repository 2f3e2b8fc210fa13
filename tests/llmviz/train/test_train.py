"""Training lab: tiny transformer, training loop, corpora, exposure, save/re-load. All runs tiny and seeded."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from llmviz.attention import extract as A
from llmviz.errors import InputError
from llmviz.models.loading import REGISTRY, load_model
from llmviz.train import corpus as C
from llmviz.train import experiments as X
from llmviz.train import privacy, tiny
from llmviz.train.loop import TrainSettings, causal_labels, is_overfitting, mask_tokens, train_lm

SMALL = dict(n_layers=1, d_model=32, n_heads=2, d_ff=64)


@pytest.fixture(scope="module")
def tok_mlm():
    return X.tokenizer_for(tiny.MLM)


@pytest.fixture(scope="module")
def tok_causal():
    return X.tokenizer_for(tiny.CAUSAL)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tok_mlm, tok_causal):
    """One tiny MLM (sinusoidal) and one tiny causal LM (learned), saved and registered."""
    root = tmp_path_factory.mktemp("trained")
    out = {}
    for obj, tok, pos in ((tiny.MLM, tok_mlm, "sinusoidal"), (tiny.CAUSAL, tok_causal, "learned")):
        model = tiny.build_model(tiny.TinyConfig(obj, pos, 2, 32, 4, 64), tok, seed=1).eval()
        mid = tiny.register_trained(model, tok, f"test-{obj}", f"test {obj}", root=root)
        out[obj] = (model, tok, mid)
    yield out
    for _, _, mid in out.values():
        REGISTRY.pop(mid, None)


# ---------------------------------------------------------------- model
def test_sinusoidal_table_matches_the_formula():
    table = tiny.sinusoidal_table(10, 8)
    for pos in (0, 3, 9):
        for i in range(4):
            assert table[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / 8)))
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / 8)))


@pytest.mark.parametrize("obj", [tiny.MLM, tiny.CAUSAL])
def test_saved_model_reloads_through_registry_with_identical_logits(saved, obj):
    model, tok, mid = saved[obj]
    loaded = load_model(mid)  # via the registry id, like the sidebar picker
    text = "the nurse walks to the park . she feels happy and smiles ."
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        a = model(**enc).logits
        b = loaded.model(**enc).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    f = loaded.facts
    assert f.source == "trained" and f.n_layers == 2 and f.n_heads == 4 and f.hidden_size == 32
    assert f.kind == ("masked_lm" if obj == tiny.MLM else "causal_lm")
    assert f.positional == ("sinusoidal" if obj == tiny.MLM else "learned")
    assert loaded.tokenizer(text)["input_ids"] == enc["input_ids"][0].tolist()
    if obj == tiny.MLM:  # the frozen table survives the round trip
        np.testing.assert_allclose(
            tiny.position_embedding(loaded.model).weight.detach().numpy(), tiny.sinusoidal_table(40, 32), atol=1e-6
        )


@pytest.mark.parametrize("obj", [tiny.MLM, tiny.CAUSAL])
def test_attention_passes_the_attention_module_checks(saved, obj):
    """The same checks as tests/llmviz/attention/test_extract.py: rows sum to 1, causal mask for the decoder."""
    _, _, mid = saved[obj]
    r = A.extract_attention(load_model(mid), "the pilots ride to the river .")
    t = len(r.tokens)
    assert r.attention.shape == (2, 4, t, t)
    np.testing.assert_allclose(r.attention.sum(-1), 1.0, atol=1e-5)
    if obj == tiny.CAUSAL:
        assert np.triu(r.attention, k=1).max() == 0.0
        assert r.attention[:, :, 0, 0].min() == pytest.approx(1.0)
    else:
        assert np.triu(r.attention, k=1).max() > 0.0


def test_zip_holds_safetensors_config_and_tokenizer(saved):
    import io
    import zipfile

    from llmviz.models.loading import available_models

    names = zipfile.ZipFile(io.BytesIO(tiny.zip_folder(available_models()[saved[tiny.MLM][2]].locate()))).namelist()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]


def test_config_limits_are_enforced():
    with pytest.raises(InputError, match="divisible"):
        tiny.TinyConfig(d_model=30, n_heads=4).validate()
    with pytest.raises(InputError, match="n_layers"):
        tiny.TinyConfig(n_layers=60).validate()
    with pytest.raises(InputError, match="Epochs"):
        TrainSettings(epochs=0).validate()


# ---------------------------------------------------------------- tokenizer / masking
def test_tokenizer_words_specials_and_unknowns(tok_mlm, tok_causal):
    ids = tok_mlm("The Nurse walks.")["input_ids"]
    assert tok_mlm.convert_ids_to_tokens(ids) == ["[CLS]", "the", "nurse", "walks", ".", "[SEP]"]
    assert tok_causal.convert_ids_to_tokens(tok_causal("the nurse")["input_ids"]) == ["[CLS]", "the", "nurse"]
    assert tok_mlm.convert_ids_to_tokens(tok_mlm("zebra 🙂")["input_ids"])[1:-1] == ["[UNK]", "[UNK]"]


def test_masking_follows_bert_recipe(tok_mlm):
    texts = C.grammar_corpus(200, seed=3).texts
    ids = tok_mlm(texts, padding=True, return_tensors="pt")
    inputs, labels = mask_tokens(ids["input_ids"], ids["attention_mask"], tok_mlm, torch.Generator().manual_seed(0))
    picked = labels != -100
    special = torch.isin(ids["input_ids"], torch.tensor(tok_mlm.all_special_ids))
    assert not (picked & special).any()  # never predict [CLS]/[SEP]/[PAD]
    assert picked.any(1).all()  # at least one prediction per row
    assert torch.equal(labels[picked], ids["input_ids"][picked])
    real = int((~special).sum())
    assert 0.12 < picked.sum().item() / real < 0.22
    assert 0.7 < (inputs[picked] == tok_mlm.mask_token_id).float().mean().item() < 0.9
    assert torch.equal(
        causal_labels(ids["input_ids"], ids["attention_mask"])[ids["attention_mask"] == 0],
        torch.full((int((ids["attention_mask"] == 0).sum()),), -100),
    )


# ---------------------------------------------------------------- training
def test_short_seeded_run_reduces_training_loss_and_is_reproducible(tok_mlm):
    texts = C.grammar_corpus(60, seed=0).texts

    def run():
        model = tiny.build_model(tiny.TinyConfig(tiny.MLM, "learned", **SMALL), tok_mlm, seed=0)
        return train_lm(model, tok_mlm, texts[:48], texts[48:], TrainSettings(epochs=4, lr=5e-3), eval_points=6)

    h = run()
    assert h.stop_reason == "done" and h.step[-1] == h.total_steps == 12
    assert h.train_loss[-1] < h.train_loss[0] - 0.5
    assert h.tokens > 0 and h.tokens_per_s > 0
    assert run().val_loss == h.val_loss  # same seed, same numbers


def test_overfit_preset_property_on_a_ci_sized_run():
    p = replace(X.PRESETS["overfit"], stories=8, val_stories=40, epochs=40, d_model=64, d_ff=256)
    h = X.run_live(p).history
    best = int(np.argmin(h.val_loss))
    assert h.val_loss[-1] > h.val_loss[best] + 0.2  # validation rose above its minimum ...
    assert h.train_loss[-1] < h.train_loss[best] - 0.2  # ... while training loss kept falling
    assert is_overfitting(h)


def test_early_stopping_and_cancel_stop_the_run(tok_causal):
    texts = C.grammar_corpus(50, seed=0).texts
    model = tiny.build_model(tiny.TinyConfig(tiny.CAUSAL, "learned", **SMALL), tok_causal)
    seen = []
    h = train_lm(
        model,
        tok_causal,
        texts[:10],
        texts[10:],
        TrainSettings(epochs=50),
        lambda h: seen.append(1) or len(seen) >= 3,
        eval_points=50,
    )
    assert h.stop_reason == "cancelled" and len(h.step) == 3 and h.step[-1] < h.total_steps
    model = tiny.build_model(tiny.TinyConfig(tiny.CAUSAL, "learned", 2, 64, 4, 256), tok_causal)
    h = train_lm(
        model,
        tok_causal,
        texts[:6],
        texts[6:],
        TrainSettings(epochs=80, lr=4e-3, early_stopping=True, patience=3),
        eval_points=80,
    )
    assert h.stop_reason == "early_stopping" and h.step[-1] < h.total_steps
    assert len(h.val_loss) - 1 - int(np.argmin(h.val_loss)) == 3  # stopped `patience` evaluations after the best


# ---------------------------------------------------------------- corpus
def _count(texts):
    """Independent count: (occupation, pronoun) for singular subjects, by splitting on words."""
    counts: dict[tuple[str, str], int] = {}
    for text in texts:
        words = text.split()
        pron = words[words.index(".") + 1]
        if pron in ("he", "she"):
            counts[(words[1], pron)] = counts.get((words[1], pron), 0) + 1
    return counts


def test_corpus_skew_zero_is_balanced_and_skew_one_couples():
    occs = list(C.OCCUPATIONS)[:8]
    bal = _count(C.grammar_corpus(1000, 8, 0.0, seed=5).texts)
    for o in occs:
        assert abs(bal.get((o, "he"), 0) - bal.get((o, "she"), 0)) <= 1
        assert bal.get((o, "he"), 0) > 20
    full = _count(C.grammar_corpus(1000, 8, 1.0, seed=5).texts)
    for o in occs:
        stereo, other = ("he", "she") if C.OCCUPATIONS[o] == "m" else ("she", "he")
        assert full.get((o, other), 0) == 0 and full.get((o, stereo), 0) > 40
    half = _count(C.grammar_corpus(1000, 8, 0.5, seed=5).texts)
    for o in occs:
        stereo = "he" if C.OCCUPATIONS[o] == "m" else "she"
        n = half.get((o, "he"), 0) + half.get((o, "she"), 0)
        assert abs(half.get((o, stereo), 0) - 0.75 * n) <= 1  # (1 + skew) / 2 of them


def test_corpus_same_seed_same_corpus_and_grammar():
    a, b = C.grammar_corpus(300, seed=1), C.grammar_corpus(300, seed=1)
    assert a.texts == b.texts and a.texts != C.grammar_corpus(300, seed=2).texts
    vocab = set(C.vocabulary())
    for text in a.texts:
        assert set(text.split()) <= vocab
        m = re.match(r"the (\w+) (\w+)", text)
        plural_subject = m.group(1) not in C.OCCUPATIONS
        assert m.group(2).endswith("s") != plural_subject  # subject-verb agreement
        assert (" they " in text) == plural_subject  # pronoun agrees in number
    with pytest.raises(InputError, match="Skew"):
        C.grammar_corpus(10, skew=1.5)


def test_counterfactual_augmentation_balances_a_skewed_corpus():
    skewed = C.grammar_corpus(400, 8, 1.0, seed=0)
    augmented = C.counterfactual_augment(skewed).texts
    counts = C.cooccurrence(augmented, skewed.occupations)
    assert all(c["he"] == c["she"] > 0 for c in counts.values())
    ref = _count(augmented)
    assert counts == {o: {p: ref.get((o, p), 0) for p in ("he", "she")} for o in skewed.occupations}


def test_number_set_is_balanced_and_labelled_by_the_subject():
    s = C.number_set(64, seed=0, words="seen")
    assert s.labels.sum() == 32
    for text, y in zip(s.texts, s.labels):
        assert (text.split()[1] not in C.OCCUPATIONS) == bool(y)
        assert text.split()[1].rstrip("s").replace("secretarie", "secretary") in list(C.OCCUPATIONS)[:4]


# ---------------------------------------------------------------- exposure
def test_exposure_equals_the_formula_on_a_hand_made_scorer():
    cands = np.arange(10_000)
    scores = -np.abs(cands - 4821).astype(float)  # hand-made: closeness to 4821
    assert privacy.exposure(scores, 4821) == pytest.approx(math.log2(10_000))
    # 4825 is beaten by 4818..4824 (7 candidates): rank 8
    assert privacy.rank_of(scores, 4825) == 8
    assert privacy.exposure(scores, 4825) == pytest.approx(math.log2(10_000) - math.log2(8))
    # reference: 1-based position in the list sorted by score; 17 ties with 9625 and comes first in a
    # stable sort, i.e. the tie is broken in the canary's favour as rank_of documents
    order = np.argsort(-scores, kind="stable")
    assert privacy.rank_of(scores, 17) == int(np.flatnonzero(order == 17)[0]) + 1 == 9624 - 18 + 2  # 18..9624 beat it


def test_candidate_log_likelihoods_equal_full_forward_passes(saved):
    model, tok, _ = saved[tiny.CAUSAL]
    prefix = "the pin of anna is"
    ll = privacy.candidate_log_likelihoods(model, tok, prefix, 3)
    assert ll.shape == (1000,)
    for cand in (0, 7, 482, 999):
        digits = f"{cand:03d}"
        ids = torch.tensor([tok(prefix + " " + " ".join(digits))["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        n = ids.shape[1]
        ref = sum(float(logp[n - 4 + k, ids[0, n - 3 + k]]) for k in range(3))
        assert ll[cand] == pytest.approx(ref, abs=1e-4)


def test_more_repetitions_give_higher_exposure_on_a_seeded_run():
    p = X.MemoParams(repeats=(0, 24), stories=60, epochs=4, d_model=32, n_digits=3)
    res, model, tok = X.run_memorization(p)
    low, high = res.rows
    assert (low.repeats, high.repeats) == (0, 24)
    assert high.exposure > low.exposure + 2
    assert res.n_candidates == 1000 and 0 <= low.exposure <= math.log2(1000)


# ---------------------------------------------------------------- issue 24 item 3: limits checked at every step
def test_time_limit_stops_a_long_run_between_evaluation_points():
    """5,000 stories x 500 epochs: the first evaluation point is thousands of steps away, and the limit used to
    be checked only there (205 s for a 5 s limit). Now the run stops within about one step of the limit and
    evaluates once more, so its curves end where it stopped."""
    import time

    params = replace(X.OVERFIT, stories=5000, epochs=500, max_seconds=1.0, d_model=32, n_heads=2, d_ff=64)
    t0 = time.perf_counter()
    res = X.run_live(params)
    wall = time.perf_counter() - t0
    h = res.history
    assert h.stop_reason == "time_limit"
    assert h.step[-1] < h.total_steps // 100  # far before the first of the regular evaluation points
    assert h.elapsed < 1.0 + 3.0 and wall < 1.0 + 12.0  # corpus, model and one evaluation included
    assert len(h.val_loss) == len(h.step) >= 1


def test_on_step_stops_at_that_step_and_exceptions_propagate():
    calls = []

    def stop_at_5():
        calls.append(1)
        return len(calls) >= 5

    params = replace(X.OVERFIT, stories=40, epochs=3)
    h = X.run_live(params, on_step=stop_at_5).history
    assert h.stop_reason == "cancelled" and h.step[-1] == 5 and len(calls) == 5

    class Cancelled(Exception):
        pass

    def boom():
        raise Cancelled

    with pytest.raises(Cancelled):
        X.run_live(params, on_step=boom)


def test_checks_at_every_step_leave_a_seeded_run_unchanged():
    params = replace(X.OVERFIT, stories=40, epochs=4)
    a = X.run_live(params).history
    b = X.run_live(params, on_step=lambda: None).history
    assert a.step == b.step and a.val_loss == b.val_loss and a.train_loss == b.train_loss
