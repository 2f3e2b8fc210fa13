"""Interventions: activation patching, direct logit attribution, steering — checked on tiny models
against independent reference computations (and on SmolLM2 in a slow test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.generation.generate import SamplingParams, build_prompt, generate
from llmviz.interventions import dla as dla_mod
from llmviz.interventions import patching as P
from llmviz.interventions import steering as S
from llmviz.interventions.sites import ATTN, HEAD, MLP, RESID, Site
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import load_model
from tests.fixtures import tiny

CLEAN, CORRUPT = "the cat sat on the mat", "the dog sat on the mat"


def _tiny_llama_big(folder):
    """Tiny Llama with a large init, so the logit differences (the metric's scale) are O(1)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = tiny.minilm_tokenizer()
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.3,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        architectures=["LlamaForCausalLM"],
    )
    return tiny._save(LlamaForCausalLM(cfg).eval(), tok, folder)


def _tiny_gpt2(folder):
    """A training-lab style GPT-2 (LayerNorm, Conv1D projections, learned positions), biases non-zero."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    tok = tiny.minilm_tokenizer()
    cfg = GPT2Config(
        vocab_size=tok.vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        initializer_range=0.3,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        architectures=["GPT2LMHeadModel"],
    )
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return tiny._save(model, tok, folder)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return load_model(str(_tiny_llama_big(tmp_path_factory.mktemp("iv_llama"))))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return load_model(str(_tiny_gpt2(tmp_path_factory.mktemp("iv_gpt2"))))


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir))


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    return load_model(str(tiny_encoder_dir))


@pytest.fixture(scope="module")
def setups(llama, gpt2, mlm, encoder, tiny_gemma3):
    return {
        "llama": P.prepare(llama, CLEAN, CORRUPT),
        "gpt2": P.prepare(gpt2, CLEAN, CORRUPT),
        "gemma3": P.prepare(tiny_gemma3, CLEAN, CORRUPT),
        "mlm": P.prepare(mlm, "the cat sat on the [MASK] .", "the dog sat on the [MASK] ."),
        "similarity": P.prepare(
            encoder,
            "the cat sat on the mat .",
            "the dog sat on the mat .",
            kind="similarity",
            text_b="a cat is sitting on a rug",
        ),
    }


# ---------------------------------------------------------------- patching
@pytest.mark.parametrize("name", ["llama", "gpt2", "mlm", "similarity"])
def test_full_residual_at_first_layer_is_clean_and_nothing_is_zero(setups, name):
    s = setups[name]
    raw, _ = P.run_sites(s, [Site(RESID, 0, None)], 1)
    assert abs(float(s.normalise(raw[0])) - 1.0) < 1e-5
    assert abs(float(s.normalise(P.run_null(s)))) < 1e-5
    res = P.patching_sweep(s, kinds=(RESID,), batch_size=8)
    assert np.all(np.abs(res.full_resid - 1.0) < 1e-5)
    assert abs(res.null) < 1e-5
    # at layer 0 only the differing positions matter: every other position gives exactly 0
    same = [i for i in range(s.n_tokens) if i not in s.diff_positions]
    assert np.all(np.abs(res.scores[RESID][0, same]) < 1e-5)


@pytest.mark.parametrize("name", ["llama", "gpt2", "mlm"])
def test_batched_sites_equal_one_at_a_time(setups, name):
    s = setups[name]
    L, T, H = len(s.modules.layers), s.n_tokens, s.modules.n_heads
    sites = P.sweep_sites(L, T, H, (RESID, ATTN, MLP, HEAD))
    batched, _ = P.run_sites(s, sites, 16)
    single, _ = P.run_sites(s, sites, 1)
    # equal to float32 rounding of the metric itself (a batch sums in another order): normalising divides
    # by clean - corrupt, which for the tiny MLM is only ~3e-4, so compare the raw metric and the
    # normalised one with the gap's own scale
    raw_tol = max(1e-7, 1e-5 * float(np.max(np.abs(single))))  # relative to the metric's size
    assert np.max(np.abs(np.asarray(batched) - np.asarray(single))) < raw_tol
    gap = abs(float(s.m_clean) - float(s.m_corrupt))
    assert np.max(np.abs(s.normalise(batched) - s.normalise(single))) < max(1e-5, raw_tol / gap)


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma3", "mlm", "similarity"])
def test_shared_prefix_equals_full_batch(setups, name):
    """Layers before a chunk's first patched layer run once at batch 1 and, for causal LMs, positions before
    a site's first changed position come from the corrupted run's cache: same values as the full batch."""
    s = setups[name]
    L, T, H = len(s.modules.layers), s.n_tokens, s.modules.n_heads
    sites = P.sweep_sites(L, T, H, (RESID, ATTN, MLP, HEAD))[::3] + [Site(RESID, L - 1, None)]
    seen = []
    shared, _ = P.run_sites(s, sites, 8, progress=lambda d, n, v: seen.append((d, n, int(np.isnan(v).sum()))))
    full, _ = P.run_sites(s, sites, 8, share_prefix=False)
    raw_tol = max(1e-7, 1e-5 * float(np.max(np.abs(full))))
    assert np.max(np.abs(shared - full)) < raw_tol
    assert (P._suffix_state(s) is not None) == (name in ("llama", "gpt2", "gemma3"))
    # progress hands the values so far: done + NaN = all, ending complete
    assert all(d + nan == n == len(sites) for d, n, nan in seen) and seen[-1][0] == len(sites)


def _reference_patch(s, site):
    """Independent one-site run: clean activations from output_hidden_states / a plain hook, patched by a
    hand-written hook (no code shared with llmviz.interventions)."""
    model = s.loaded.model
    layer = anatomy(model).layers[site.layer]
    seen = {}
    if site.kind == RESID:
        mod = layer
    elif site.kind in (ATTN, HEAD):
        mod = anatomy(model).o_proj(site.layer)
    else:
        mod = layer.mlp if hasattr(layer, "mlp") else layer.output.dense

    def grab_pre(_m, args):
        seen["x"] = args[0].clone()

    def grab_post(_m, _a, out):
        seen["x"] = (out[0] if isinstance(out, tuple) else out).clone()

    pre = site.kind in (RESID, HEAD)
    h = mod.register_forward_pre_hook(grab_pre) if pre else mod.register_forward_hook(grab_post)
    with torch.no_grad():
        s.forward(s.clean.embeds[None])
    h.remove()
    clean = seen["x"][0]

    def patch(x):
        x = x.clone()
        if site.kind == HEAD:
            hd = x.shape[-1] // s.modules.n_heads
            x[0, :, site.index * hd : (site.index + 1) * hd] = clean[:, site.index * hd : (site.index + 1) * hd]
        else:
            x[0, site.index] = clean[site.index]
        return x

    if pre:
        h = mod.register_forward_pre_hook(lambda _m, args: (patch(args[0]), *args[1:]))
    else:
        h = mod.register_forward_hook(
            lambda _m, _a, out: (patch(out[0]), *out[1:]) if isinstance(out, tuple) else patch(out)
        )
    try:
        with torch.no_grad():
            m, _ = s.forward(s.corrupt.embeds[None])
    finally:
        h.remove()
    return float(s.normalise(float(m[0])))


@pytest.mark.parametrize("name", ["llama", "gpt2", "mlm"])
def test_sweep_matches_an_independent_reference(setups, name):
    s = setups[name]
    res = P.patching_sweep(s, batch_size=32)
    L, T = res.scores[RESID].shape
    for site in (
        Site(RESID, L - 1, T - 1),
        Site(RESID, 1, 2),
        Site(ATTN, 0, 2),
        Site(ATTN, L - 1, T - 1),
        Site(MLP, 1, 3),
        Site(MLP, 0, 2),
        Site(HEAD, 1, 0),
        Site(HEAD, L - 1, 3),
    ):
        ref = _reference_patch(s, site)
        assert abs(res.scores[site.kind][site.layer, site.index] - ref) < 1e-5, site


def test_patching_is_symmetric_at_full_residual_sites(llama, setups):
    s = setups["llama"]
    swapped = P.prepare(llama, CORRUPT, CLEAN, correct_id=s.correct_id, wrong_id=s.wrong_id)
    assert abs(swapped.m_clean - s.m_corrupt) < 1e-5 and abs(swapped.m_corrupt - s.m_clean) < 1e-5
    L = len(s.modules.layers)
    sites = [Site(RESID, layer, None) for layer in range(L)]
    fwd, _ = P.run_sites(s, sites, 8)
    back, _ = P.run_sites(swapped, sites, 8)
    # corrupted activations pasted into the clean run, measured on the original scale: 1 − forward metric
    assert np.allclose(s.normalise(back), 1 - s.normalise(fwd), atol=1e-5)


def test_stop_leaves_nan_and_progress_counts(setups):
    s = setups["llama"]
    calls = []
    res = P.patching_sweep(
        s, kinds=(RESID,), batch_size=4, progress=lambda d, n, *_: calls.append((d, n)), stop=lambda: len(calls) >= 2
    )
    assert res.stopped and np.isnan(res.scores[RESID]).any() and not np.isnan(res.scores[RESID].flat[0])
    assert calls[0][1] == s.n_tokens * len(s.modules.layers)


def test_patched_predictions_are_the_patched_runs_top_tokens(setups):
    s = setups["llama"]
    value, preds = P.patched_predictions(s, Site(RESID, 0, None), k=3)
    assert abs(value - 1) < 1e-5
    with torch.no_grad():
        _, logits = s.forward(s.clean.embeds[None])
    top = torch.softmax(logits[0], -1).topk(3)
    assert [p for _, p in preds] == pytest.approx(top.values.tolist(), abs=1e-6)


def test_input_errors(llama):
    with pytest.raises(InputError, match="tokens"):
        P.prepare(llama, "the cat sat", "the cat sat on the mat")
    with pytest.raises(InputError, match="same tokens"):
        P.prepare(llama, CLEAN, CLEAN)
    assert P.replace_word("the cat sat on the cat mat", "cat", "dog") == "the dog sat on the dog mat"
    assert P.replace_word("concatenate cat", "cat", "dog") == "concatenate dog"
    with pytest.raises(InputError):
        P.replace_word("the cat", "mouse", "dog")


# ---------------------------------------------------------------- direct logit attribution
@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_dla_terms_sum_and_frozen_scale_equals_real(setups, name):
    s = setups[name]
    d = dla_mod.direct_logit_attribution(s)
    assert d.sum_error < 1e-4 and abs(d.terms.sum() - d.frozen_logit_diff) < 1e-4
    assert d.frozen_error < 1e-4 and abs(d.real - s.m_clean) < 1e-5
    # independent: hand-computed logit difference from the captured final residual
    assert len(d.terms) == 1 + 2 * len(s.modules.layers) + (1 if abs(d.constant) > 0 else 0)
    bias_per_layer = d.attn - d.heads.sum(1)
    if name == "llama":
        assert np.allclose(bias_per_layer, 0, atol=1e-5)  # no o_proj bias: heads add up to the layer
    else:
        assert d.norm_kind == "LayerNorm" and abs(d.constant) > 0
    cmp = dla_mod.compare_with_patching(d, P.patching_sweep(s, batch_size=32))
    assert set(cmp) == {"heads_r", "attn_last_r", "mlp_last_r"}


def test_dla_rmsnorm_frozen_by_hand(setups):
    """RMSNorm by hand: logit diff = ((g ⊙ x / rms(x)) · (U_a − U_b)) for the real final residual."""
    s = setups["llama"]
    d = dla_mod.direct_logit_attribution(s)
    model = s.loaded.model
    norm = model.model.norm
    seen = {}

    def grab(_m, args):
        seen["x"] = args[0][0, -1].double()

    h = norm.register_forward_pre_hook(grab)
    with torch.no_grad():
        logits = model(inputs_embeds=s.clean.embeds[None], use_cache=False).logits[0, -1]
    h.remove()
    x = seen["x"]
    y = norm.weight.double() * x / torch.sqrt((x**2).mean() + norm.variance_epsilon)
    u = (model.lm_head.weight[s.correct_id] - model.lm_head.weight[s.wrong_id]).double()
    assert abs(float(y @ u) - d.frozen_logit_diff) < 1e-4
    assert abs(float(logits[s.correct_id] - logits[s.wrong_id]) - d.real) < 1e-5


def test_dla_refuses_encoders(setups):
    with pytest.raises(UnsupportedModelError):
        dla_mod.direct_logit_attribution(setups["mlm"])


# ---------------------------------------------------------------- steering
@pytest.fixture(scope="module")
def vec(llama):
    a, b = S.DEFAULT_SETS["he_she"]
    return S.steering_vector(llama, a[:3], b[:3], 1)


def test_steering_vector_is_the_mean_difference(llama, vec):
    a, b = S.DEFAULT_SETS["he_she"]
    want = []
    for group in (a[:3], b[:3]):
        rows = []
        for text in group:
            ids = S._ids(llama, text)
            with torch.no_grad():
                hs = llama.model(input_ids=torch.tensor([ids]), output_hidden_states=True, use_cache=False)
            rows.append(hs.hidden_states[1][0].mean(0).numpy())  # input of layer 1 = output of layer 0
        want.append(np.mean(rows, 0))
    assert np.allclose(vec.vector, want[0] - want[1], atol=1e-5)


def test_alpha_zero_gives_plain_generation(llama, vec):
    p = build_prompt(llama, "the doctor said that", use_chat_template=False)
    for params in (SamplingParams(max_new_tokens=10, seed=4), SamplingParams(greedy=True, max_new_tokens=10)):
        plain = generate(llama, p, params)
        assert S.steered_generate(llama, p, params, vec.vector, 1, 0.0).token_ids == plain.token_ids
    big = S.steered_generate(llama, p, SamplingParams(greedy=True, max_new_tokens=10), vec.vector, 1, 50.0)
    assert big.token_ids != generate(llama, p, SamplingParams(greedy=True, max_new_tokens=10)).token_ids


def test_hook_removed_after_an_exception(llama, vec):
    p = build_prompt(llama, "the doctor said that", use_chat_template=False)
    params = SamplingParams(greedy=True, max_new_tokens=6)
    plain = generate(llama, p, params)
    block = anatomy(llama.model).layers[1]
    n_hooks = len(block._forward_pre_hooks)

    calls = []

    def fail_on_third_step():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted mid-generation")
        return False

    with pytest.raises(RuntimeError, match="interrupted"):
        S.steered_generate(llama, p, params, vec.vector, 1, 50.0, stop=fail_on_third_step)
    assert len(block._forward_pre_hooks) == n_hooks
    assert generate(llama, p, params).token_ids == plain.token_ids


def test_steered_generation_in_the_int8_mode(llama, vec):
    """The fast generation mode steers the int8 twin at the same layer (a large α changes its tokens, α = 0
    gives the plain int8 run), and its deviation is measured against float32 steered the same way: here the
    float32 side is recomputed by hand (the run's tokens through the steered float32 model, no cache)."""
    from llmviz.generation.deviation import next_token_logprobs
    from llmviz.generation.quantize import int8_twin
    from llmviz.precision import int8_support

    if not int8_support()[0]:
        pytest.skip(int8_support()[1])
    p = build_prompt(llama, "the doctor said that", use_chat_template=False)
    params = SamplingParams(greedy=True, max_new_tokens=10)
    plain = generate(llama, p, params, precision="int8")
    zero = S.steered_generate(llama, p, params, vec.vector, 1, 0.0, precision="int8")
    assert zero.precision == "int8" and zero.token_ids == plain.token_ids
    big = S.steered_generate(llama, p, params, vec.vector, 1, 50.0, precision="int8")
    assert big.token_ids != plain.token_ids
    ids = list(p.ids) + big.token_ids
    with S.steering(llama, vec.vector, 1, 50.0):
        exact_lp = next_token_logprobs(llama.model, ids, len(big.token_ids))
    dev = big.deviation
    assert dev.total == len(big.token_ids) and dev.presets is None
    assert dev.agree == int((exact_lp.argmax(-1).numpy() == np.array(big.token_ids)).sum())
    assert dev.agree >= 0.8 * dev.total  # int8 weights keep the steered run close to float32
    twin = int8_twin(llama.model)
    assert all(len(b._forward_pre_hooks) == 0 for b in anatomy(twin).layers)  # hooks gone afterwards
    side = S.generations_by_alpha(llama, "the doctor said that", vec, [0.0, 50.0], params, precision="int8")
    assert side.precision == "int8" and [g.token_ids for g in side.generations] == [zero.token_ids, big.token_ids]


def test_steering_changes_nothing_before_its_layer(llama, vec):
    ids = torch.tensor([S._ids(llama, "the doctor said that she")])
    with torch.no_grad():
        plain = llama.model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
        with S.steering(llama, vec.vector, 2, 5.0):
            steered = llama.model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    for i in range(3):  # hidden_states[i] = input of layer i; layers 0, 1 run before the hook at layer 2
        assert torch.allclose(plain[i], steered[i], atol=1e-6)
    assert not torch.allclose(plain[3], steered[3], atol=1e-3)


def test_steering_from_position_k(llama, vec):
    ids = torch.tensor([S._ids(llama, "the doctor said that she")])
    with torch.no_grad():
        plain = llama.model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
        with S.steering(llama, vec.vector, 1, 5.0, from_pos=3):
            steered = llama.model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    assert torch.allclose(plain[2][0, :3], steered[2][0, :3], atol=1e-6)  # causal: earlier positions untouched
    assert not torch.allclose(plain[2][0, 3:], steered[2][0, 3:], atol=1e-3)


def test_logprob_curve_batched_rows_and_alpha_zero(llama, mlm, vec):
    c = S.logprob_curve(llama, "the doctor said that", ["he", "she"], vec, [-3.0, 0.0, 3.0])
    ids = torch.tensor([S._ids(llama, "the doctor said that")])
    with torch.no_grad():
        lp = torch.log_softmax(llama.model(input_ids=ids, use_cache=False).logits[0, -1], -1)
    he, she = [S.resolve_token(llama, t, "the doctor said that")[0] for t in ("he", "she")]
    assert np.allclose(c.logprobs[1], [float(lp[he]), float(lp[she])], atol=1e-5)
    one = S.logprob_curve(llama, "the doctor said that", ["he", "she"], vec, [3.0])
    assert np.allclose(one.logprobs[0], c.logprobs[2], atol=1e-5)
    a, b = S.DEFAULT_SETS["he_she"]
    mv = S.steering_vector(mlm, a[:2], b[:2], 1)
    cm = S.logprob_curve(mlm, "the doctor said that [MASK] was tired .", ["he", "she"], mv, [0.0, 5.0])
    assert cm.logprobs.shape == (2, 2) and not np.allclose(cm.logprobs[0], cm.logprobs[1])


def test_steered_probes_at_alpha_zero_equal_the_plain_probe(llama, vec):
    import pandas as pd

    r = S.steered_template_probe(
        llama, "The {group} worked as a {target}.", ["man", "woman"], ["nurse", "doctor", "pilot"], vec, 0.0
    )
    assert r.before == r.after
    r = S.steered_template_probe(
        llama, "The {group} worked as a {target}.", ["man", "woman"], ["nurse", "doctor", "pilot"], vec, 8.0
    )
    assert r.before["value"] != r.after["value"] and len(r.before["ci95"]) == 2
    frame = pd.DataFrame(
        {
            "sent_more": ["He is strong.", "She cooks."],
            "sent_less": ["She is strong.", "He cooks."],
            "stereo_antistereo": ["stereo", "stereo"],
            "bias_type": ["gender", "gender"],
        }
    )
    r = S.steered_pairs_probe(llama, frame, vec, 0.0)
    assert r.before == r.after and r.before["n"] == 2


def test_parse_prompts_and_layer_bounds(llama, vec):
    assert S.parse_prompts(" a \n\n b ") == ["a", "b"]
    with pytest.raises(InputError):
        S.parse_prompts("  \n ")
    with pytest.raises(InputError):
        S.steering_vector(llama, ["a"], ["b"], 99)


# ---------------------------------------------------------------- the bundled causal LM
@pytest.mark.slow
def test_smollm2_patching_and_dla(smollm2):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    s = P.prepare(smollm2, "The Eiffel Tower is in the city of", "The Colosseum is in the city of")
    L = len(s.modules.layers)
    sites = [Site(RESID, layer, p) for layer in (L // 2, L - 1) for p in range(s.n_tokens)]
    batched, _ = P.run_sites(s, sites, 32)
    single, _ = P.run_sites(s, sites[::5], 1)
    assert np.max(np.abs(s.normalise(batched[::5]) - s.normalise(single))) < 1e-4
    raw, _ = P.run_sites(s, [Site(RESID, 0, None)], 1)
    assert abs(float(s.normalise(raw[0])) - 1) < 1e-4
    d = dla_mod.direct_logit_attribution(s)
    assert d.sum_error < 1e-4 and d.frozen_error < 1e-3


# ---------------------------------------------------------------- DLA with Gemma 3's sandwich norms
@pytest.fixture(scope="module")
def gemma_setup(tmp_path_factory):
    from tests.fixtures.tiny_gemma import build_tiny_gemma3

    return P.prepare(load_model(str(build_tiny_gemma3(tmp_path_factory.mktemp("iv_gemma")))), CLEAN, CORRUPT)


def test_dla_gemma3_sandwich_norms_add_up(gemma_setup):
    """Gemma 3 normalises each sublayer's output before adding it to the residual stream
    (post_attention_layernorm, post_feedforward_layernorm): the terms are those normalised outputs, and each
    head's share is the head's slice through the post-attention norm at its frozen clean scale, so the heads
    add up to their layer exactly and the terms to the model's own logit difference (was: refused)."""
    s = gemma_setup
    model = s.loaded.model
    d = dla_mod.direct_logit_attribution(s)
    assert d.sum_error < 1e-4 and d.frozen_error < 1e-4 and abs(d.real - s.m_clean) < 1e-5
    assert np.allclose(d.attn, d.heads.sum(1), atol=1e-5)  # heads add up through the frozen post-norm
    # independent: each layer's residual contribution by hand, from the hooked sublayer outputs
    outs = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.self_attn.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(("a", i), o[0])))
        hooks.append(layer.mlp.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(("m", i), o)))
    seen = {}
    hooks.append(model.model.norm.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0][0, -1])))
    with torch.no_grad():
        model(inputs_embeds=s.clean.embeds[None], use_cache=False)
    for h in hooks:
        h.remove()
    x = seen["x"].double()
    norm = model.model.norm
    gain = 1.0 + norm.weight.double()
    scale = 1.0 / torch.sqrt((x**2).mean() + norm.eps)
    u = (model.lm_head.weight[s.correct_id] - model.lm_head.weight[s.wrong_id]).double()
    for i, layer in enumerate(model.model.layers):
        a = layer.post_attention_layernorm(outs[("a", i)])[0, -1].double()
        m = layer.post_feedforward_layernorm(outs[("m", i)])[0, -1].double()
        assert abs(float((gain * a * scale) @ u) - d.attn[i]) < 1e-4
        assert abs(float((gain * m * scale) @ u) - d.mlp[i]) < 1e-4


@pytest.mark.slow
def test_gemma3_dla_adds_up_on_the_real_model():
    """The bundled Gemma 3 270M (18 sandwich-norm blocks, tied, scaled embedding): DLA terms add up to the
    model's own logit difference and each layer's heads to their layer."""
    s = P.prepare(load_model("gemma3"), "The Eiffel Tower is in the city of", "The Colosseum is in the city of")
    d = dla_mod.direct_logit_attribution(s)
    assert d.sum_error < 1e-3 and d.frozen_error < 1e-3 and abs(d.real - s.m_clean) < 1e-4
    assert np.allclose(d.attn, d.heads.sum(1), atol=1e-3)
    assert d.heads.shape == (18, 4)


def test_bf16_sweep_records_its_deviation(setups, monkeypatch):
    """The fast mode runs the sweep under bf16 autocast and measures itself against float32 on the first batch."""
    from llmviz import precision

    monkeypatch.setattr(precision, "bf16_support", lambda: (True, "test"))
    s = setups["llama"]
    exact = P.patching_sweep(s, kinds=(RESID,), batch_size=8)
    fast = P.patching_sweep(s, kinds=(RESID,), batch_size=8, precision="bf16")
    assert exact.precision == "exact" and exact.deviation is None
    assert fast.precision == "bf16" and fast.params()["deviation"] == fast.deviation
    first = exact.raw[RESID].reshape(-1)[:8]
    assert fast.deviation == pytest.approx(np.max(np.abs(fast.raw[RESID].reshape(-1)[:8] - first)), abs=1e-6)
    assert fast.deviation < 0.1 * max(1.0, float(np.max(np.abs(first))))


@pytest.mark.parametrize("name", ["llama", "gemma3", "mlm"])
def test_sites_work_counts_what_the_layers_see(setups, name):
    """The estimate's work equals the rows × positions every layer actually processes (counted by hooks)."""
    s = setups[name]
    L, T, H = len(s.modules.layers), s.n_tokens, s.modules.n_heads
    sites = P.sweep_sites(L, T, H, (RESID, MLP, HEAD))
    seen = {"tokens": 0, "calls": 0}

    def count(_m, _args, output):  # after the layer: the rows it processed (joins happen in pre-hooks)
        out = output[0] if isinstance(output, (tuple, list)) else output
        seen["tokens"] += out.shape[0] * out.shape[1]

    def call(_m, _args):
        seen["calls"] += 1

    top = s.loaded.model
    work = P.sites_work(s, sites, 8)  # first: the corrupted run's cache (shared suffix) is made once, here
    with scoped_hooks(pre=[(top, call)], post=[(layer, count) for layer in s.modules.layers]):
        P.run_sites(s, sites, 8)
    assert work.calls == seen["calls"] == P.n_passes(s, (RESID, MLP, HEAD), 8)
    assert work.tokens == pytest.approx(seen["tokens"] / L)


@pytest.mark.parametrize("name", ["llama", "gemma3"])
def test_merged_positions_equal_the_full_batch(setups, name):
    """The fast mode's passes span several positions (run from the smallest; the others' earlier positions are
    recomputed as the corrupted run): in float32 the values equal the full batch."""
    s = setups[name]
    L, T, H = len(s.modules.layers), s.n_tokens, s.modules.n_heads
    sites = P.sweep_sites(L, T, H, (RESID, ATTN, MLP))
    full, _ = P.run_sites(s, sites, 8, share_prefix=False)
    merged = np.full(len(sites), np.nan)
    assert P._suffix_state(s) is not None
    chunks = P._chunks(sites, 7, True, merge=True)
    assert any(len({P._first_position(sites[i]) for i in idx}) > 1 for idx in chunks)
    with torch.inference_mode():
        for idx in chunks:
            merged[idx] = P._run_suffix(s, [sites[i] for i in idx])[0].double().numpy()
    assert np.max(np.abs(merged - full)) < max(1e-7, 1e-5 * float(np.max(np.abs(full))))


def test_bf16_sweep_runs_on_a_bfloat16_copy_and_leaves_the_model_alone(setups):
    from llmviz.precision import bf16_support, bf16_twin

    if not bf16_support()[0]:
        pytest.skip(bf16_support()[1])
    s = setups["llama"]
    before = {k: v.clone() for k, v in s.loaded.model.state_dict().items()}
    L, T = len(s.modules.layers), s.n_tokens
    sites = P.sweep_sites(L, T, s.modules.n_heads, (RESID,))
    exact, _ = P.run_sites(s, sites, 8)
    fast, _ = P.run_sites(s, sites, 8, precision="bf16")
    twin = bf16_twin(s.loaded.model)
    assert twin is bf16_twin(s.loaded.model)
    # every linear layer multiplies in bfloat16 with its weight cast once; norms and embeddings are the model's
    # own float32 tensors (shared, not copied)
    linears = [m for m in twin.modules() if type(m).__name__ == "Bf16Linear"]
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in s.loaded.model.modules())
    assert len(linears) == n_linear > 0 and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert not any(isinstance(m, torch.nn.Linear) for m in twin.modules())
    ours = {id(t) for t in s.loaded.model.parameters()}
    assert ours and all(id(t) in ours for t in twin.parameters())  # no float32 copy of the model
    assert all(torch.equal(v, s.loaded.model.state_dict()[k]) for k, v in before.items())
    assert next(s.loaded.model.parameters()).dtype == torch.float32
    # bfloat16 keeps ~3 significant digits: close to float32, not equal
    gap = abs(s.m_clean - s.m_corrupt)
    assert 0 < np.max(np.abs(fast - exact)) < 0.1 * max(gap, float(np.max(np.abs(exact))))
    res = P.patching_sweep(s, kinds=(RESID,), batch_size=8, precision="bf16")
    assert res.precision == "bf16" and res.deviation == pytest.approx(np.max(np.abs(fast[:8] - exact[:8])), rel=1e-3)
