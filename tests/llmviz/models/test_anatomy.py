"""llmviz.models.anatomy: the parts it names are the parts the model computes with.

Checked by running the models with hooks on the parts the anatomy returns: the heads' outputs (recomputed
from the hooked V and attention weights) are W^O's input, the residual stream adds up as the norm style says,
the unembedding of the final norm's output is the model's logits, and the head layout is the config's.
"""

from __future__ import annotations

import pytest
import torch

from llmviz.errors import UnsupportedModelError
from llmviz.models.anatomy import BERT, GEMMA3, GPT2, LLAMA, POST, PRE, SANDWICH, anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.positional.model import real_qk_available
from llmviz.train import experiments as X
from llmviz.train import tiny as T

TEXT = "the cat sat on the mat because it was tired"


@pytest.fixture(scope="module")
def trained():
    """The training lab's two architectures, freshly built: a tiny BERT MLM and a tiny GPT-2."""
    out = {}
    for obj in (T.MLM, T.CAUSAL):
        tok = X.tokenizer_for(obj)
        out[obj] = (T.build_model(T.TinyConfig(obj, "learned", 2, 32, 4, 64), tok, seed=1).eval(), tok)
    return out


def _models(request, which):
    """(model, input_ids [1, T]) for a fixture name or a trained objective."""
    if which in (T.MLM, T.CAUSAL):
        model, tok = request.getfixturevalue("trained")[which]
    else:
        loaded = request.getfixturevalue(which)
        model, tok = loaded.model, loaded.tokenizer
    return model, tok(TEXT, return_tensors="pt")["input_ids"]


CASES = [
    # fixture / objective, family, norm style, rotary, learned table
    ("tiny_mlm", BERT, POST, False, True),
    ("tiny_llama", LLAMA, PRE, True, False),
    ("tiny_gemma3", GEMMA3, SANDWICH, True, False),
    (T.MLM, BERT, POST, False, True),
    (T.CAUSAL, GPT2, PRE, False, True),
]


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


@pytest.mark.parametrize("which, family, style, rotary, learned", CASES)
def test_layout_is_the_configs(request, which, family, style, rotary, learned):
    model, _ = _models(request, which)
    a, cfg = anatomy(model), model.config
    assert a.family == family and a.norm_style == style
    assert a.n_layers == (getattr(cfg, "num_hidden_layers", None) or cfg.n_layer)
    assert a.n_heads == (getattr(cfg, "num_attention_heads", None) or cfg.n_head)
    assert a.n_kv_heads == (getattr(cfg, "num_key_value_heads", None) or a.n_heads)
    assert a.head_dim == (getattr(cfg, "head_dim", None) or a.hidden_size // a.n_heads)
    for layer in range(a.n_layers):
        att = a.attn(layer)
        assert (att.n_heads, att.n_kv_heads, att.head_dim) == (a.n_heads, a.n_kv_heads, a.head_dim)
        assert att.o is a.o_proj(layer) and att.q is a.q_proj(layer)
        assert att.fused_qkv == (family == GPT2)
    assert (a.rotary is not None) == rotary and (a.position_embeddings is not None) == learned
    if learned:
        assert tuple(a.position_embeddings.weight.shape)[1] == a.hidden_size
        assert a.position_embeddings_name.split(".")[-1] in ("position_embeddings", "wpe")
    if rotary:
        assert a.rotary_name.endswith("rotary_emb")
    assert a.embed is model.get_input_embeddings() and a.unembed is model.get_output_embeddings()
    assert a.qk_norm == (family == GEMMA3)


def test_gqa_and_gemma_details(tiny_llama, tiny_gemma3):
    llama, gemma = anatomy(tiny_llama.model), anatomy(tiny_gemma3.model)
    assert (llama.n_heads, llama.n_kv_heads) == (4, 2)
    assert (gemma.n_heads, gemma.n_kv_heads, gemma.head_dim) == (4, 1, 8)
    assert [gemma.attn(i).sliding_window for i in range(3)] == [4, 4, None]
    assert gemma.rope_layer_types == ("full_attention", "sliding_attention")
    assert llama.rope_layer_types == (None,)
    assert gemma.attn(0).q_norm is not None and llama.attn(0).q_norm is None
    assert gemma.sandwich_norms(1) == (gemma.norms(1).post_attn, gemma.norms(1).post_mlp)
    assert llama.sandwich_norms(1) == (None, None)


def _kv_of(a, h):
    return h // (a.n_heads // a.n_kv_heads)


@pytest.mark.parametrize("which", [c[0] for c in CASES])
def test_o_proj_input_is_the_heads_concatenated(request, which, one_thread):
    """W^O's hooked input equals softmax weights @ V per head (V hooked from the anatomy's v projection),
    concatenated head-major: the anatomy's o, v and head layout are the ones the model uses."""
    model, ids = _models(request, which)
    a = anatomy(model)
    seen = {}

    def grab(key):
        return lambda _m, _a, out: seen.__setitem__(key, _first(out).detach())

    def grab_in(key):
        return lambda _m, args: seen.__setitem__(key, args[0].detach())

    posts = [(a.v_proj(layer), grab(("v", layer))) for layer in range(a.n_layers)]
    pres = [(a.o_proj(layer), grab_in(("o", layer))) for layer in range(a.n_layers)]
    with scoped_hooks(pre=pres, post=posts), torch.inference_mode():
        out = model(input_ids=ids, output_attentions=True)
    t, d = ids.shape[1], a.head_dim
    for layer in range(a.n_layers):
        v = seen[("v", layer)][0]  # [T, H_kv * d] (GPT-2: [T, 3 * H * d], V last)
        if a.attn(layer).fused_qkv:
            v = v[:, 2 * a.n_heads * d :]
        v = v.view(t, a.n_kv_heads, d)
        weights = out.attentions[layer][0]  # [H, T, T]
        heads = [weights[h] @ v[:, _kv_of(a, h)] for h in range(a.n_heads)]  # each [T, d]
        torch.testing.assert_close(seen[("o", layer)][0], torch.cat(heads, dim=-1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("which", [c[0] for c in CASES])
def test_residual_stream_adds_up_as_the_norm_style_says(request, which, one_thread):
    """With hooks on the anatomy's blocks, W^O/attention block, MLP and norms: pre-norm blocks compute
    ``x + attn(norm(x)) + mlp(norm(...))``, sandwich blocks normalise each sublayer's output before adding it,
    post-norm blocks (BERT) normalise ``x + sublayer``."""
    model, ids = _models(request, which)
    a = anatomy(model)
    seen = {}

    def post(key):
        return lambda _m, _a, out: seen.__setitem__(key, _first(out).detach())

    def pre(key):
        return lambda _m, args: seen.__setitem__(key, args[0].detach())

    n = a.n_layers
    posts = [(a.layers[i], post(("out", i))) for i in range(n)]
    posts += [(a.attn(i).block, post(("attn", i))) for i in range(n)]
    posts += [(a.mlp(i), post(("mlp", i))) for i in range(n)]
    pres = [(a.layers[i], pre(("in", i))) for i in range(n)] + [(a.mlp(i), pre(("mlp_in", i))) for i in range(n)]

    def attn_in(i):  # the attention module gets its hidden states by keyword (transformers 5) or position
        def hook(_m, args, kwargs):
            seen[("attn_in", i)] = (args[0] if args else kwargs["hidden_states"]).detach()

        return hook

    handles = [a.attn(i).module.register_forward_pre_hook(attn_in(i), with_kwargs=True) for i in range(n)]
    try:
        with scoped_hooks(pre=pres, post=posts), torch.inference_mode():
            model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    with torch.inference_mode():
        for i in range(n):
            _check_block(a, i, seen)


def _check_block(a, i, seen):
    close = dict(atol=1e-5, rtol=1e-4)
    x, attn, mlp, out, norms = seen[("in", i)], seen[("attn", i)], seen[("mlp", i)], seen[("out", i)], a.norms(i)
    if a.norm_style == POST:
        torch.testing.assert_close(out, norms.post_mlp(mlp + attn), **close)
        return
    torch.testing.assert_close(seen[("attn_in", i)], norms.pre_attn(x), **close)
    if a.norm_style == SANDWICH:
        mid = x + norms.post_attn(attn)
        torch.testing.assert_close(seen[("mlp_in", i)], norms.pre_mlp(mid), **close)
        torch.testing.assert_close(out, mid + norms.post_mlp(mlp), **close)
    else:
        torch.testing.assert_close(seen[("mlp_in", i)], norms.pre_mlp(x + attn), **close)
        torch.testing.assert_close(out, x + attn + mlp, **close)


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_gemma3", T.CAUSAL])
def test_unembedding_of_the_final_norm_is_the_logits(request, which, one_thread):
    model, ids = _models(request, which)
    a = anatomy(model)
    seen = {}
    with scoped_hooks(post=[(a.final_norm, lambda _m, _a, out: seen.__setitem__("h", out.detach()))]):
        with torch.inference_mode():
            logits = model(input_ids=ids).logits
            torch.testing.assert_close(a.unembed(seen["h"]), logits, atol=1e-4, rtol=1e-4)


def test_encoder_without_head_and_other_families(tiny_encoder_dir):
    from transformers import AutoModel, GPTNeoXConfig, GPTNeoXModel

    enc = anatomy(AutoModel.from_pretrained(tiny_encoder_dir))
    assert enc.family == BERT and enc.unembed is None and enc.n_layers == 2
    with pytest.raises(UnsupportedModelError, match="final norm"):
        _ = enc.final_norm
    neox = anatomy(
        GPTNeoXModel(
            GPTNeoXConfig(
                num_hidden_layers=1, num_attention_heads=2, hidden_size=8, intermediate_size=16, vocab_size=16
            )
        )
    )
    assert neox.family is None and neox.n_layers == 1 and neox.o_proj(0) is neox.layers[0].attention.dense
    with pytest.raises(UnsupportedModelError):
        neox.attn(0)
    with pytest.raises(UnsupportedModelError, match="layers"):
        _ = anatomy(torch.nn.Linear(2, 2)).layers


def test_real_qk_available(tiny_mlm, tiny_llama, tiny_gemma3):
    assert real_qk_available(tiny_llama) and real_qk_available(tiny_gemma3)
    assert not real_qk_available(tiny_mlm)


@pytest.mark.slow
def test_bundled_models(minilm, smollm2, one_thread):
    """The bundled models' anatomy against the design's table; smollm2's unembedding of its final norm
    gives its logits."""
    m, s = anatomy(minilm.model), anatomy(smollm2.model)
    assert (m.family, m.norm_style, m.n_layers, m.n_heads, m.hidden_size) == (BERT, POST, 6, 12, 384)
    assert m.position_embeddings is not None and m.rotary is None
    assert (s.family, s.norm_style, s.n_layers, s.n_heads, s.n_kv_heads) == (LLAMA, PRE, 30, 9, 3)
    assert s.rotary is not None and s.position_embeddings is None
    ids = smollm2.tokenizer(TEXT, return_tensors="pt")["input_ids"].to(smollm2.device)
    seen = {}
    with scoped_hooks(post=[(s.final_norm, lambda _m, _a, out: seen.__setitem__("h", out.detach()))]):
        with torch.inference_mode():
            logits = smollm2.model(input_ids=ids).logits
            torch.testing.assert_close(s.unembed(seen["h"]).float(), logits.float(), atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_bundled_gemma3(gemma3):
    g = anatomy(gemma3.model)
    assert (g.family, g.norm_style, g.n_layers, g.n_heads, g.n_kv_heads) == (GEMMA3, SANDWICH, 18, 4, 1)
    assert g.rope_layer_types == ("full_attention", "sliding_attention") and g.qk_norm
    windows = {g.attn(i).sliding_window for i in range(g.n_layers)}
    assert windows == {512, None}


def test_cache_keyword_is_read_from_the_forward_signature(tiny_llama):
    """One place says how a model takes its KV cache (generation and the patching suffix both ask it)."""
    import inspect

    from llmviz.models.anatomy import cache_keyword

    params = inspect.signature(type(tiny_llama.model).forward).parameters
    want = "cache" if "cache" in params else "past_key_values"
    assert want in params and cache_keyword(tiny_llama.model) == want

    class Old(torch.nn.Module):
        def forward(self, input_ids, past_key_values=None):
            return input_ids

    class NoCache(torch.nn.Module):
        def forward(self, input_ids):
            return input_ids

    assert cache_keyword(Old()) == "past_key_values" and cache_keyword(NoCache()) is None
