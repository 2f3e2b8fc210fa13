"""llmviz.attention.extract: extraction on every model kind, hand-checked statistics, rollout and hiding."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz import tokens as T
from llmviz.attention import extract as A
from llmviz.errors import InputError
from llmviz.models.loading import load_model

TEXT = "The cat sat on the mat because it was tired."


@pytest.fixture(scope="module")
def tiny_encoder(tiny_encoder_dir):
    return load_model(str(tiny_encoder_dir))


@pytest.mark.parametrize("name", ["tiny_mlm", "tiny_llama", "tiny_encoder"])
def test_shapes_rows_and_causal_mask(name, request):
    loaded = request.getfixturevalue(name)
    r = A.extract_attention(loaded, TEXT)
    f = loaded.facts
    t = len(r.tokens)
    assert r.attention.dtype == np.float32
    assert r.attention.shape == (f.n_layers, f.n_heads, t, t)
    assert r.special_mask.shape == (t,) and r.special_mask.dtype == bool
    np.testing.assert_allclose(r.attention.sum(-1), 1.0, atol=1e-5)
    assert not r.truncated and r.n_tokens_original == t
    ids = loaded.tokenizer(TEXT)["input_ids"]
    assert r.token_ids == ids
    if f.kind == "causal_lm":
        assert np.triu(r.attention, k=1).max() == 0.0
        assert r.attention[:, :, 0, 0].min() == pytest.approx(1.0)  # the first token sees only itself
    else:
        assert r.special_mask[0] and r.special_mask[-1] and not r.special_mask[1:-1].any()
        assert np.triu(r.attention, k=1).max() > 0.0  # bidirectional


def test_gqa_has_one_matrix_per_query_head(tiny_llama):
    f = tiny_llama.facts
    assert f.n_kv_heads < f.n_heads  # the tiny Llama shares 2 kv heads among 4 query heads
    r = A.extract_attention(tiny_llama, TEXT)
    assert r.attention.shape[1] == f.n_heads
    # Heads sharing a kv head still differ (their queries differ).
    assert np.abs(r.attention[:, 0] - r.attention[:, 1]).max() > 1e-4


def test_pair_segments_and_special_tokens(tiny_mlm):
    r = A.extract_attention(tiny_mlm, "A man walks.", "He is tired.")
    assert r.segment is not None and r.segment[0] == 0 and r.segment[-1] == 1
    assert r.special_mask.sum() == 3  # [CLS] ... [SEP] ... [SEP]
    assert r.tokens[0] == "[CLS]" and r.tokens[-1] == "[SEP]"


def test_input_errors(tiny_mlm, tiny_llama):
    with pytest.raises(InputError, match="empty"):
        A.extract_attention(tiny_mlm, "   ")
    with pytest.raises(InputError, match="pair"):
        A.extract_attention(tiny_llama, "one", "two")


def test_long_input_is_cut_to_the_model_limit(tiny_mlm):
    text = " ".join(["word"] * 5000)
    r = A.extract_attention(tiny_mlm, text)
    limit = min(A.MAX_TOKENS, tiny_mlm.facts.max_positions)  # the tiny model has 128 positions
    assert len(r.tokens) == limit and r.attention.shape[-1] == limit
    assert r.truncated and r.n_tokens_original == 5002
    r2 = A.extract_attention(tiny_mlm, text, max_tokens=20)
    assert len(r2.tokens) == 20 and r2.tokens[-1] == "[SEP]"


def test_emoji_rtl_and_html_tokens_survive(tiny_llama):
    text = 'Hi 🙂 שלום </script><img src=x onerror=alert(1)> "q" \\'
    r = A.extract_attention(tiny_llama, text)
    assert all(isinstance(tok, str) and tok for tok in r.tokens)
    np.testing.assert_allclose(r.attention.sum(-1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- pure numpy parts, hand examples
def test_head_statistics_against_hand_values():
    a = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=np.float32)
    att = a[None, None]  # [1, 1, 3, 3]
    special = np.array([False, False, True])
    s = A.head_statistics(att, special)
    ent_rows = [0.0, -2 * 0.5 * np.log(0.5), -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))]
    assert s["entropy"][0, 0] == pytest.approx(np.mean(ent_rows), abs=1e-6)
    # sink = mass on key 0 plus special key 2: rows give 1.0, 0.5, 0.7
    assert s["sink"][0, 0] == pytest.approx((1.0 + 0.5 + 0.7) / 3, abs=1e-6)
    # previous token: A[1,0] = 0.5, A[2,1] = 0.3
    assert s["prev_token"][0, 0] == pytest.approx(0.4, abs=1e-6)
    assert s["diagonal"][0, 0] == pytest.approx((1.0 + 0.5 + 0.5) / 3, abs=1e-6)
    assert set(s) == set(A.STATISTICS)


def test_top_heads_orders_by_value():
    stats = {"sink": np.array([[0.1, 0.9], [0.5, 0.2]], dtype=np.float32)}
    assert [(l, h) for l, h, _ in A.top_heads(stats, "sink", k=2)] == [(0, 1), (1, 0)]
    assert A.top_heads(stats, "sink", k=1, largest=False)[0][:2] == (0, 0)
    with pytest.raises(InputError):
        A.top_heads(stats, "nope")


def test_rollout_hand_example_and_layer_order():
    h1 = np.array([[1.0, 0.0], [0.5, 0.5]])
    h2 = np.array([[0.5, 0.5], [0.0, 1.0]])
    layer = np.stack([h1, h2])  # mean = [[.75,.25],[.25,.75]]
    r = A.rollout(np.stack([layer, layer]))
    # per layer: 0.5*mean + 0.5*I = [[.875,.125],[.125,.875]]; two layers: its square
    np.testing.assert_allclose(r, [[0.78125, 0.21875], [0.21875, 0.78125]], atol=1e-6)
    # Order: R = A_2 @ A_1. Layer 1 sends everything to token 0, layer 2 everything to token 1.
    first = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    second = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    r2 = A.rollout(np.stack([first, second]), add_residual=False)
    np.testing.assert_allclose(r2, [[1.0, 0.0], [1.0, 0.0]], atol=1e-6)
    with pytest.raises(InputError):
        A.rollout(np.ones((2, 2)))


def test_rollout_rows_sum_to_one_on_a_model(tiny_mlm):
    r = A.extract_attention(tiny_mlm, TEXT)
    np.testing.assert_allclose(A.rollout(r.attention).sum(-1), 1.0, atol=1e-5)


def test_hide_special_renormalises():
    a = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]], dtype=np.float32)[None, None]
    sub, keep = A.hide_special(a, np.array([True, False, False]))
    assert keep.tolist() == [1, 2]
    # row 1 [.2 .2 .6] -> [.2 .6] / .8; row 2 had all its mass on the special token -> zeros
    np.testing.assert_allclose(sub[0, 0], [[0.25, 0.75], [0.0, 0.0]], atol=1e-6)
    sub2, _ = A.hide_special(a, np.array([False, True, True]))
    np.testing.assert_allclose(sub2[0, 0], [[1.0]], atol=1e-6)
    with pytest.raises(InputError):
        A.hide_special(a, np.array([True, True, True]))


def test_without_special_on_model(tiny_mlm):
    r = A.extract_attention(tiny_mlm, TEXT)
    s = A.without_special(r)
    assert s.tokens == r.tokens[1:-1]
    np.testing.assert_allclose(s.attention.sum(-1), 1.0, atol=1e-5)
    # proportional to the original weights within each row
    ratio = s.attention[0, 0, 0] / r.attention[0, 0, 1, 1:-1]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)


def test_partial_utf8_byte_tokens_are_shown_as_bytes():
    # GPT-2 byte-level alphabet: 'Ġ' is the space byte, '×' stands for byte 0xD7 (first byte of Hebrew ש)
    assert T._partial_bytes("Ġ×") == "▁⟨D7⟩"
    assert T._partial_bytes("<0xE2>") == "<0xE2>"  # SentencePiece byte fallback kept as is
    assert T._partial_bytes("") is None
