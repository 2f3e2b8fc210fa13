"""The formula recomputed from the model's weights equals what the model returns (BERT, Llama+RoPE+GQA)."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz.attention.extract import extract_attention
from llmviz.attention.steps import attention_sites, formula_steps, neuron_view, softmax_rows
from llmviz.errors import InputError, UnsupportedModelError

TEXT = "The quick brown fox jumps over the lazy dog."


def _check_layer(loaded, layer, head, reference=None):
    s = formula_steps(loaded, TEXT, layer, head)
    # recomputed attention == the attention weights the model returned, for every head of the layer
    assert s.model_weights.shape == (loaded.facts.n_heads, len(s.tokens), len(s.tokens))
    assert s.attention_max_abs_diff <= 1e-5
    if reference is not None:  # and == what extract_attention returns (output_attentions)
        assert np.abs(s.all_weights - reference.attention[layer]).max() <= 1e-5
        np.testing.assert_allclose(s.weights, reference.attention[layer, head], atol=1e-5)
        assert s.tokens == reference.tokens
    # Concat(heads) W^O (+ b) == the output projection's output; block output == the module's output
    scale = max(1.0, float(np.abs(s.model_block_output).max()))
    assert np.abs(s.projected - s.model_projected).max() <= 1e-5 * scale
    assert s.block_max_abs_diff <= 1e-5 * scale
    return s


@pytest.mark.parametrize("name", ["tiny_mlm", "tiny_llama"])
def test_every_layer_of_tiny_models(name, request):
    loaded = request.getfixturevalue(name)
    ref = extract_attention(loaded, TEXT)
    for layer in range(loaded.facts.n_layers):  # every head of the layer is compared inside
        _check_layer(loaded, layer, loaded.facts.n_heads - 1, ref)


@pytest.mark.slow
def test_minilm_steps(minilm):
    ref = extract_attention(minilm, TEXT)
    s = _check_layer(minilm, 3, 7, ref)
    assert s.family == "bert" and s.cos is None
    assert s.scaling == pytest.approx(1 / np.sqrt(minilm.facts.head_dim))
    assert s.mask.max() == 0.0  # encoder: nothing masked


@pytest.mark.slow
def test_smollm2_steps_with_rope_and_gqa(smollm2):
    # the last layer: where float error would have accumulated (one forward pass keeps the test short)
    s = _check_layer(smollm2, smollm2.facts.n_layers - 1, 4)
    assert s.family == "llama" and s.cos is not None
    assert s.kv_head == 4 // (smollm2.facts.n_heads // smollm2.facts.n_kv_heads)  # 9 q heads / 3 kv -> 1


def test_gpt2_training_lab_architecture(tmp_path):
    """The training lab's causal models are GPT-2: fused c_attn (Conv1D), pre-norm ln_1, learned positions."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmviz.models.loading import load_model
    from tests.fixtures.tiny import _save, minilm_tokenizer

    torch.manual_seed(0)
    tok = minilm_tokenizer()
    cfg = GPT2Config(
        vocab_size=tok.vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        scale_attn_by_inverse_layer_idx=True,
        architectures=["GPT2LMHeadModel"],
    )
    loaded = load_model(str(_save(GPT2LMHeadModel(cfg).eval(), tok, tmp_path / "gpt2")))
    ref = extract_attention(loaded, TEXT)
    for layer in range(2):
        s = _check_layer(loaded, layer, 1, ref)
        assert s.family == "gpt2" and s.scaling == pytest.approx(1 / np.sqrt(8) / (layer + 1))
        w = loaded.model.transformer.h[layer].attn.c_attn.weight.detach().double().numpy()  # [d, 3d]
        np.testing.assert_allclose(s.w_v, w[:, 64 + 8 : 64 + 16], atol=0)  # V block, head 1


def test_pieces_match_independent_computation(tiny_llama):
    """Q/K slices from the raw weight rows, GQA mapping and RoPE from rope_theta, computed here by hand."""
    f = tiny_llama.facts
    head = 3
    s = formula_steps(tiny_llama, TEXT, 1, head)
    group = f.n_heads // f.n_kv_heads
    assert s.kv_head == head // group
    attn = tiny_llama.model.model.layers[1].self_attn
    d = f.head_dim
    wq = attn.q_proj.weight.detach().double().numpy()[head * d : (head + 1) * d]  # [d_k, d]
    np.testing.assert_allclose(s.q_raw, s.x @ wq.T, atol=1e-10)
    wk = attn.k_proj.weight.detach().double().numpy()[s.kv_head * d : (s.kv_head + 1) * d]
    np.testing.assert_allclose(s.k_raw, s.x @ wk.T, atol=1e-10)
    # RoPE: rotate pairs (i, i + d/2) by angle pos * theta^(-2i/d)
    t = len(s.tokens)
    inv = f.rope_theta ** (-np.arange(0, d, 2) / d)
    ang = np.arange(t)[:, None] * inv[None, :]  # [T, d/2]
    q1, q2 = s.q_raw[:, : d // 2], s.q_raw[:, d // 2 :]
    rotated = np.concatenate([q1 * np.cos(ang) - q2 * np.sin(ang), q2 * np.cos(ang) + q1 * np.sin(ang)], axis=1)
    np.testing.assert_allclose(s.q, rotated, atol=1e-5)
    # causal mask and scaling
    assert np.isneginf(s.mask[0, 1]) and s.mask[1, 0] == 0.0
    np.testing.assert_allclose(s.scaled, s.q @ s.k.T / np.sqrt(d), atol=1e-10)


def test_neuron_view_sums_to_the_scores(tiny_mlm, tiny_llama):
    for loaded in (tiny_mlm, tiny_llama):
        ref = extract_attention(loaded, TEXT)
        s = formula_steps(loaded, TEXT, 1, 2)
        nv = neuron_view(s, 4)
        np.testing.assert_allclose(nv.products, s.q[4][None, :] * s.k, atol=1e-12)
        np.testing.assert_allclose(nv.products.sum(-1) * s.scaling + s.mask[4], nv.scores, atol=1e-10)
        np.testing.assert_allclose(nv.weights, ref.attention[1, 2, 4], atol=1e-5)
        with pytest.raises(InputError):
            neuron_view(s, len(s.tokens))


def test_softmax_rows_with_masked_entries():
    z = np.array([[0.0, np.log(3.0), -np.inf]])
    np.testing.assert_allclose(softmax_rows(z), [[0.25, 0.75, 0.0]], atol=1e-12)


def test_bad_layer_head_and_unsupported_architecture(tiny_mlm):
    with pytest.raises(InputError, match="Layer"):
        formula_steps(tiny_mlm, TEXT, 99, 0)
    with pytest.raises(InputError, match="Head"):
        formula_steps(tiny_mlm, TEXT, 0, 99)
    from transformers import GPTNeoXConfig, GPTNeoXModel

    other = GPTNeoXModel(
        GPTNeoXConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=8, intermediate_size=16, vocab_size=16)
    )
    with pytest.raises(UnsupportedModelError, match="BERT-"):
        attention_sites(other)
