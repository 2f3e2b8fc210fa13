"""Information flow and QK attribution against independent computations: the model's own block outputs and
scores captured by hooks written here (at each family's module paths), and head terms from the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.errors import InputError
from llmviz.explain.decompose import attention_update, capture_run, components, mlp_update
from llmviz.explain.flow import FlowGraph, build_graph, information_flow, node_lens, top_heads
from llmviz.explain.qk_attribution import _side, qk_attribution
from llmviz.models.loading import load_model

TEXT = "the doctor said that the nurse was late"
TOL = 1e-4

# where each family keeps the residual after attention (module, "in" = its input / "out" = its output)
MID = {
    "llama": lambda m, l: (m.model.layers[l].post_attention_layernorm, "in"),
    "gemma3": lambda m, l: (m.model.layers[l].pre_feedforward_layernorm, "in"),
    "gpt2": lambda m, l: (m.transformer.h[l].ln_2, "in"),
    "bert": lambda m, l: (m.bert.encoder.layer[l].attention, "out"),
}
LAYERS = {
    "llama": lambda m: m.model.layers,
    "gemma3": lambda m: m.model.layers,
    "gpt2": lambda m: m.transformer.h,
    "bert": lambda m: m.bert.encoder.layer,
}


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.fixtures.tiny_bpe import _save, bpe_tokenizer

    torch.manual_seed(0)
    tok = bpe_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return load_model(str(_save(GPT2LMHeadModel(cfg).eval(), tok, tmp_path_factory.mktemp("tiny_gpt2"))))


@pytest.fixture
def family_model(request):
    return request.getfixturevalue(request.param)


def _hooked(model, family, text_ids):
    """The residual after attention and after every layer, captured by hooks written here."""
    layers = LAYERS[family](model)
    mids, outs, handles = {}, {}, []
    for i, layer in enumerate(layers):
        mod, side = MID[family](model, i)
        if side == "in":
            handles.append(mod.register_forward_pre_hook(lambda _m, a, i=i: mids.__setitem__(i, a[0][0].clone())))
        else:
            handles.append(mod.register_forward_hook(lambda _m, _a, o, i=i: mids.__setitem__(i, _batch0(o))))
        handles.append(layer.register_forward_hook(lambda _m, _a, o, i=i: outs.__setitem__(i, _batch0(o))))
    try:
        with torch.no_grad():
            model(input_ids=text_ids)
    finally:
        for h in handles:
            h.remove()
    return [mids[i] for i in range(len(layers))], [outs[i] for i in range(len(layers))]


def _batch0(o):
    return (o[0] if isinstance(o, tuple) else o)[0].clone()


def _rel(a, b) -> float:
    return float(((a - b).abs().amax(-1) / b.abs().amax(-1).clamp_min(1e-12)).max())


@pytest.mark.parametrize(
    "family_model,family",
    [("tiny_llama", "llama"), ("tiny_gpt2", "gpt2"), ("tiny_gemma3", "gemma3"), ("tiny_mlm", "bert")],
    indirect=["family_model"],
)
def test_terms_sum_to_the_hooked_block_outputs(family_model, family):
    cap = capture_run(family_model, TEXT)
    ids = torch.tensor([cap.ids])
    mids, outs = _hooked(family_model.model, family, ids)
    for layer in range(cap.n_layers):
        assert _rel(attention_update(cap, layer).total(), mids[layer]) < TOL
        assert _rel(mlp_update(cap, layer).total(), outs[layer]) < TOL
    res = information_flow(family_model, TEXT)
    assert res.max_rel_error < TOL
    for name in ("attn_edge", "attn_resid", "attn_bias", "mlp_term", "mlp_resid", "head_imp"):
        arr = getattr(res, name)
        assert arr.min() >= 0 and arr.max() <= 1 + 1e-6, name
    np.testing.assert_allclose(res.attn_resid + res.attn_edge.sum(-1) + res.attn_bias, 1, atol=1e-5)
    np.testing.assert_allclose(res.mlp_resid + res.mlp_term + res.mlp_bias, 1, atol=1e-5)
    assert (res.head_imp.sum((1, 3)) <= 1 + 1e-5).all()
    if family in ("llama", "gpt2", "gemma3"):  # causal: a later token never feeds an earlier one
        assert np.triu(res.attn_edge, 1).max() == 0
    if family == "gemma3":  # window 4 in the sliding layers: nothing from 4 or more tokens back
        far = np.tril(np.ones((len(res.tokens),) * 2, bool), -4)
        assert res.attn_edge[0][far].max() == 0 and res.attn_edge[2][far].max() > 0


@pytest.mark.parametrize("family_model", ["tiny_llama", "tiny_gpt2"], indirect=True)
def test_head_terms_equal_attention_times_values_times_w_o(family_model):
    m = family_model.model
    cap = capture_run(family_model, TEXT)
    layer = 1
    with torch.no_grad():
        out = m(input_ids=torch.tensor([cap.ids]), output_attentions=True, output_hidden_states=True)
        x = out.hidden_states[layer][0]
        A = out.attentions[layer][0]  # [H, T, T]
        if hasattr(m, "transformer"):  # GPT-2: Conv1D [in, out], fused c_attn
            blk = m.transformer.h[layer]
            D = x.shape[-1]
            v = (blk.ln_1(x) @ blk.attn.c_attn.weight[:, 2 * D :] + blk.attn.c_attn.bias[2 * D :]).view(-1, 4, 8)
            w_o, group = blk.attn.c_proj.weight.T, 1  # [D, H * d]
        else:
            blk = m.model.layers[layer]
            v = blk.self_attn.v_proj(blk.input_layernorm(x)).view(-1, 2, 8)  # [T, kv heads, d]
            w_o, group = blk.self_attn.o_proj.weight, 2
        shares = attention_update(cap, layer).dense()  # [H, T_j, T_i, D]
        T = x.shape[0]
        for h in range(4):
            for i in range(T):
                for j in range(T):
                    want = A[h, i, j] * (v[j, h // group] @ w_o[:, h * 8 : (h + 1) * 8].T)
                    torch.testing.assert_close(shares[h, j, i], want, atol=1e-5, rtol=1e-4)


def _own_score(loaded, family, layer, head, i, j):
    """The model's pre-softmax score from q/k captured by hooks, RoPE applied with transformers' own function."""
    m = loaded.model
    got = {}
    if family == "gpt2":
        attn = m.transformer.h[layer].attn
        mods = {"qkv": attn.c_attn}
    elif family == "bert":
        attn = m.bert.encoder.layer[layer].attention.self
        mods = {"q": attn.query, "k": attn.key}
    else:
        attn = m.model.layers[layer].self_attn
        mods = {"q": attn.q_norm, "k": attn.k_norm} if family == "gemma3" else {"q": attn.q_proj, "k": attn.k_proj}
    handles = [mod.register_forward_hook(lambda _m, _a, o, n=n: got.__setitem__(n, o[0])) for n, mod in mods.items()]
    ids = torch.tensor([capture_run(loaded, TEXT).ids])
    try:
        with torch.no_grad():
            m(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    d = 8
    if family == "gpt2":
        D = got["qkv"].shape[-1] // 3
        q, k = got["qkv"][:, :D].view(-1, 4, d), got["qkv"][:, D : 2 * D].view(-1, 4, d)
    else:
        q, k = got["q"], got["k"]
        if family == "gemma3":  # q_norm/k_norm see [heads, T, d]
            q, k = q.transpose(0, 1), k.transpose(0, 1)
        q, k = q.reshape(ids.shape[1], -1, d), k.reshape(ids.shape[1], -1, d)
    kv = head // (q.shape[1] // k.shape[1])
    qh, kh = q[:, head], k[:, kv]  # [T, d]
    if family in ("llama", "gemma3"):
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        pos = torch.arange(ids.shape[1])[None]
        rot = m.model.rotary_emb
        with torch.no_grad():
            cos, sin = rot(qh[None], pos, attn.layer_type) if family == "gemma3" else rot(qh[None], pos)
        qh, kh = apply_rotary_pos_emb(qh[None, None], kh[None, None], cos, sin)
        qh, kh = qh[0, 0], kh[0, 0]
    return float(attn.scaling * qh[i] @ kh[j])


@pytest.mark.parametrize(
    "family_model,family",
    [("tiny_llama", "llama"), ("tiny_gpt2", "gpt2"), ("tiny_gemma3", "gemma3"), ("tiny_mlm", "bert")],
    indirect=["family_model"],
)
def test_qk_terms_sum_to_the_hooked_score(family_model, family):
    layer = family_model.facts.n_layers - 1
    for per_head in (True, False):
        res = qk_attribution(family_model, TEXT, layer, 1, 6, 4, per_head=per_head)
        own = _own_score(family_model, family, layer, 1, 6, 4)
        assert abs(res.terms.sum() - own) <= TOL * max(1.0, abs(own)), (res.terms.sum(), own)
        assert res.softmax_error < 1e-5
        assert res.names[-1] == "biases" and res.terms.shape == (len(res.names),) * 2
    assert res.rope == (family in ("llama", "gemma3"))
    if not res.rope:
        np.testing.assert_allclose(res.positional, 0, atol=1e-9)


def test_qk_component_order_does_not_change_the_sum(tiny_gemma3):
    cap = capture_run(tiny_gemma3, TEXT)
    anat, layer, i = cap.anat, 2, 5
    names, comps = components(cap, layer, [i])
    rows = comps[:, 0]
    rng = np.random.default_rng(0)
    perm = list(rng.permutation(len(names) - 1)) + [len(names) - 1]  # the biases row stays last (constants)
    x = cap.x[layer][i : i + 1]
    with torch.no_grad():
        a = _side(anat, layer, slice(0, 8), "q", rows, x)
        b = _side(anat, layer, slice(0, 8), "q", rows[perm], x)
    torch.testing.assert_close(a.sum(0), b.sum(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rows.sum(0), x[0], atol=1e-5, rtol=1e-4)  # the components sum to the stream


def test_a_score_built_from_one_component_is_carried_by_it(tmp_path):
    """Layer 1 reads queries and keys only from dims 0-7, which only layer 0's MLP writes: that (query, key)
    pair of components carries the whole score."""
    from tests.fixtures.tiny import build_tiny_llama

    loaded = load_model(str(build_tiny_llama(tmp_path / "one", seed=3)))
    m = loaded.model
    with torch.no_grad():
        m.model.embed_tokens.weight[:, :8] = 0
        m.model.layers[0].self_attn.o_proj.weight[:8] = 0
        m.model.layers[0].mlp.down_proj.weight[8:] = 0
        m.model.layers[0].mlp.down_proj.weight[:8] *= 20
        for proj in (m.model.layers[1].self_attn.q_proj, m.model.layers[1].self_attn.k_proj):
            proj.weight[:, 8:] = 0
            proj.weight[:, :8] *= 5
    res = qk_attribution(loaded, TEXT, 1, 0, 6, 3, per_head=False)
    k = res.names.index("L0 mlp")
    assert abs(res.score) > 1e-3
    assert res.terms[k, k] == pytest.approx(res.score, rel=1e-4)
    rest = np.abs(res.terms).sum() - abs(res.terms[k, k])
    assert rest < 1e-4 * abs(res.score)


def test_graph_prunes_monotonically_and_round_trips(tiny_llama):
    res = information_flow(tiny_llama, TEXT)
    prev_route = prev_full = None
    for tau in (0.0, 0.01, 0.04, 0.1, 0.3, 0.6):
        route, full = build_graph(res, tau, True), build_graph(res, tau, False)
        r = {(e["source"], e["target"], e["kind"]) for e in route.edges}
        f = {(e["source"], e["target"], e["kind"]) for e in full.edges}
        assert r <= f
        assert route.output == f"x{res.n_layers}_{len(res.tokens) - 1}"
        assert route.output in {n["id"] for n in route.nodes}
        if prev_route is not None:
            assert r <= prev_route and f <= prev_full
        prev_route, prev_full = r, f
    g = build_graph(res, 0.04)
    assert any(e["target"] == g.output for e in g.edges)  # something reaches the prediction
    back = FlowGraph.from_json(g.to_json())
    assert back == g
    heads = top_heads(res, build_graph(res, 0.0))  # a random tiny model's heads stay under τ = 0.04
    assert heads and all(0 <= h["importance"] for h in heads)
    assert [h["importance"] for h in heads] == sorted((h["importance"] for h in heads), reverse=True)
    lens = node_lens(tiny_llama, res, g.output)
    with torch.no_grad():
        own = tiny_llama.model(input_ids=torch.tensor([capture_run(tiny_llama, TEXT).ids])).logits[0, -1]
    assert lens[0][1] == pytest.approx(float(torch.softmax(own, -1).max()), abs=1e-5)


def test_bad_inputs_say_what_to_do(tiny_llama, tiny_gemma3):
    with pytest.raises(InputError, match="empty"):
        information_flow(tiny_llama, "  ")
    with pytest.raises(InputError, match="outside"):
        information_flow(tiny_llama, TEXT, position=99)
    with pytest.raises(InputError, match="cannot attend"):
        qk_attribution(tiny_llama, TEXT, 0, 0, 2, 5)
    with pytest.raises(InputError, match="cannot attend"):  # sliding window of 4 in layer 0
        qk_attribution(tiny_gemma3, TEXT, 0, 0, 8, 2)
    with pytest.raises(InputError, match="Layer"):
        qk_attribution(tiny_llama, TEXT, 7, 0, 2, 1)
    with pytest.raises(InputError, match="between"):
        build_graph(information_flow(tiny_llama, TEXT), 1.5)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_bundled_models_decompose_exactly(fixture, request, one_thread):
    loaded = request.getfixturevalue(fixture)
    text = "The cat sat on the mat because it was"
    res = information_flow(loaded, text)
    assert res.max_rel_error < TOL
    np.testing.assert_allclose(res.attn_resid + res.attn_edge.sum(-1) + res.attn_bias, 1, atol=1e-4)
    qk = qk_attribution(loaded, text, loaded.facts.n_layers // 2, 1, -1, 1)
    assert qk.softmax_error < 1e-4
    assert build_graph(res).output in {n["id"] for n in build_graph(res).nodes}
