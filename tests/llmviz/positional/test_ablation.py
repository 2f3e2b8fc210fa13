"""The with/without-positions experiment: the properties the page claims, and that the model is restored."""

import threading
from collections import Counter

import numpy as np
import pytest
import torch

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.positional import ablation as PA

SENTENCE = "The dog chased the cat across the garden."


pytestmark = pytest.mark.usefixtures("one_thread")


def _hidden(loaded, ids):
    with torch.inference_mode():
        return loaded.model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()


# ------------------------------------------------------------------ shuffle
def test_shuffle_moves_whole_words_and_keeps_special_tokens(minilm):
    text = "The dog chased the cat 🙂 שלום </script> <b>x</b>"
    sh = PA.shuffle_words(minilm, text, seed=3)
    assert [sh.ids_a[o] for o in sh.order] == sh.ids_b and sh.ids_a != sh.ids_b
    assert Counter(sh.ids_a) == Counter(sh.ids_b)
    assert sh.tokens_b[0] == "[CLS]" and sh.tokens_b[-1] == "[SEP]"
    assert sorted(sh.text_b.split()) == sorted(text.split())  # a permutation of the words
    # BERT tokenizes word by word, so tokenizing the shuffled text gives exactly the shuffled ids.
    assert minilm.tokenizer(sh.text_b)["input_ids"] == sh.ids_b
    assert PA.shuffle_words(minilm, text, seed=3).ids_b == sh.ids_b  # seeded


def test_shuffle_keep_last_and_bpe_tokens(smollm2):
    sh = PA.shuffle_words(smollm2, SENTENCE, seed=1, keep_last=True)
    assert sh.text_b.split()[-1] == "garden." and sh.ids_b[-2:] == sh.ids_a[-2:]
    assert Counter(sh.ids_a) == Counter(sh.ids_b) and sh.ids_a != sh.ids_b


@pytest.mark.parametrize(
    "text, msg",
    [("", "Type a sentence"), ("   ", "Type a sentence"), ("hello", "at least 2 words"), ("the the the", "same")],
)
def test_shuffle_bad_input(minilm, text, msg):
    with pytest.raises(InputError, match=msg):
        PA.shuffle_words(minilm, text)


def test_long_input_is_cut(minilm):
    sh = PA.shuffle_words(minilm, " ".join(f"word{i}" for i in range(5000)))
    assert sh.truncated and len(sh.ids_a) == PA.MAX_ABLATION_TOKENS
    assert not PA.shuffle_words(minilm, SENTENCE).truncated


# ------------------------------------------------------------------ learned positions (minilm)
@pytest.mark.parametrize("mode", ["zero", "same"])
def test_minilm_bag_of_words_without_positions(minilm, mode):
    before = _hidden(minilm, minilm.tokenizer(SENTENCE)["input_ids"])
    res = PA.encoder_ablation(minilm, SENTENCE, seed=0, mode=mode)
    assert res.cos_with < 0.99  # with positions the shuffle changes the sentence embedding
    assert res.cos_without > 0.999  # without, the model sees a bag of words
    # Independent recomputation of the pooled embedding with positions.
    emb_a = _hidden(minilm, res.shuffle.ids_a).mean(0)
    emb_b = _hidden(minilm, res.shuffle.ids_b).mean(0)
    assert res.cos_with == pytest.approx(emb_a @ emb_b / np.linalg.norm(emb_a) / np.linalg.norm(emb_b), abs=1e-5)
    # Attention without positions is the original map, permuted; with positions it is not.
    assert res.attn_diff_without < 1e-4 < 0.05 < res.attn_diff_with
    # The shared model is restored: no hook left, same outputs as before.
    assert not minilm.model.embeddings.position_embeddings._forward_hooks
    assert np.allclose(_hidden(minilm, minilm.tokenizer(SENTENCE)["input_ids"]), before, atol=1e-6)


def test_hook_is_scoped_to_the_calling_thread_and_removed_on_error(minilm):
    ids = minilm.tokenizer(SENTENCE)["input_ids"]
    normal = _hidden(minilm, ids)
    seen = {}
    with PA.positions_removed(minilm, "zero"):
        inside = _hidden(minilm, ids)
        worker = threading.Thread(target=lambda: seen.setdefault("h", _hidden(minilm, ids)))
        worker.start()
        worker.join()
    assert np.abs(inside - normal).max() > 0.1  # this thread sees the ablated model
    assert np.allclose(seen["h"], normal, atol=1e-6)  # another session's thread does not
    with pytest.raises(RuntimeError):
        with PA.positions_removed(minilm, "same"):
            raise RuntimeError("boom")
    assert not minilm.model.embeddings.position_embeddings._forward_hooks
    with pytest.raises(InputError):
        with PA.positions_removed(minilm, "nope"):
            pass


def test_wrong_scheme_is_explained(minilm, tiny_llama):
    with pytest.raises(UnsupportedModelError, match="learned position"):
        PA.encoder_ablation(tiny_llama, SENTENCE)
    with pytest.raises(UnsupportedModelError, match="rotary"):
        PA.rope_ablation(minilm, SENTENCE)


# ------------------------------------------------------------------ RoPE (smollm2)
def test_smollm2_without_rope(smollm2):
    ids = smollm2.tokenizer(SENTENCE)["input_ids"]
    with torch.inference_mode():
        before = smollm2.model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    res = PA.rope_ablation(smollm2, SENTENCE, seed=0)
    for p in res.probs.values():
        assert p.sum() == pytest.approx(1.0)
    # The first layer at the last token is order-blind without RoPE, order-aware with it.
    assert res.layer1_diff_without < 1e-3 < 1e-2 < res.layer1_diff_with
    # Disabling RoPE changes the next-token distribution; shuffling changes it in both settings.
    assert res.kl_rope_off > 0.05 and res.js_with > 0.01 and res.js_without > 0.01
    assert res.js_with == pytest.approx(PA.js_bits(res.probs["with_b"], res.probs["with_a"]))
    # The RoPE-off run equals the model with every position at 0 (cos = 1, sin = 0) and an explicit mask.
    x = torch.tensor([res.shuffle.ids_a])
    with torch.inference_mode():
        zero_pos = (
            smollm2.model(input_ids=x, attention_mask=torch.ones_like(x), position_ids=torch.zeros_like(x))
            .logits[0, -1]
            .double()
            .softmax(-1)
            .numpy()
        )
        after = smollm2.model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(zero_pos - res.probs["without_a"]).max() < 1e-4
    assert not smollm2.model.model.rotary_emb._forward_hooks
    assert np.allclose(after, before, atol=1e-4)  # model restored
    top = res.top_table(smollm2.tokenizer, 3)
    assert top[0]["with_a"] == pytest.approx(res.probs["with_a"].max())


def test_any_bert_like_masked_lm(tiny_mlm):
    res = PA.encoder_ablation(tiny_mlm, SENTENCE, seed=2, mode="same")
    assert res.cos_without > 0.999 and res.attn_diff_without < 1e-4
    assert res.attention["with_a"].shape[:2] == (2, 4)
