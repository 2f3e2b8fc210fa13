"""Attribution methods checked against independent computations: analytic answers on a linear model,
completeness of IG, manual leave-one-out, linearity of contrastive targets, attention from the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.explain.attribution import METHODS, Attribution, attribute, spearman_matrix
from llmviz.explain.targets import MAX_TOKENS, Problem, Target, build_problem, resolve_token

TEXT = "the doctor said that"


def linear_problem(seed: int = 0, t: int = 5, d: int = 7) -> tuple[Problem, torch.Tensor, torch.Tensor, float]:
    """f(E) = Σ_t w_t · E_t + c, with token 0 special."""
    g = torch.Generator().manual_seed(seed)
    x, w, c = torch.randn(t, d, generator=g), torch.randn(t, d, generator=g), 0.7
    special = np.zeros(t, dtype=bool)
    special[0] = True
    pad = torch.randn(d, generator=g)
    keep = torch.as_tensor(special)[:, None]
    problem = Problem(
        tokens=[f"t{i}" for i in range(t)],
        embeds=x,
        score=lambda e: (e * w).sum((-1, -2)) + c,
        special_mask=special,
        label="linear",
        position=t - 1,
        target=Target("next_token"),
        baselines={"zero": torch.where(keep, x, torch.zeros_like(x)), "pad": torch.where(keep, x, pad.expand_as(x))},
    )
    return problem, x, w, c


def test_grad_x_input_on_a_linear_model_is_analytic():
    problem, x, w, _ = linear_problem()
    res = attribute(problem, "grad_x_input")
    np.testing.assert_allclose(res.scores, (x * w).sum(-1).numpy(), rtol=1e-5, atol=1e-6)


def test_ig_and_occlusion_on_a_linear_model_are_analytic():
    problem, x, w, _ = linear_problem(seed=1)
    ref = problem.baseline("pad")
    expected = ((x - ref) * w).sum(-1).numpy()  # exact for any number of steps
    ig = attribute(problem, "integrated_gradients", steps=3, baseline="pad")
    np.testing.assert_allclose(ig.scores, expected, rtol=1e-5, atol=1e-6)
    assert ig.completeness_gap < 1e-5
    occ = attribute(problem, "occlusion", baseline="pad")
    np.testing.assert_allclose(occ.scores, expected, rtol=1e-5, atol=1e-6)
    assert occ.scores[0] == 0.0  # the special token is never occluded


def test_ig_completeness_on_a_tiny_transformer(tiny_llama):
    problem = build_problem(tiny_llama, TEXT, Target("next_token", token="he"))
    gaps = [attribute(problem, "integrated_gradients", steps=s).completeness_gap for s in (8, 16, 64)]
    assert gaps[-1] < 0.01, gaps  # default rule (Gauss–Legendre) at 64 steps
    assert gaps[0] > gaps[1] > gaps[2], gaps
    # the midpoint Riemann sum converges more slowly, but also shrinks the gap as steps grow
    mid = [
        attribute(problem, "integrated_gradients", steps=s, rule="riemann_midpoint").completeness_gap
        for s in (8, 32, 128)
    ]
    assert mid[0] > mid[1] > mid[2], mid
    res = attribute(problem, "integrated_gradients", steps=64)
    # the gap is computed from independent forward passes at the input and at the baseline
    with torch.no_grad():
        ids = torch.tensor([problem.token_ids])
        f_x = float(tiny_llama.model(input_ids=ids).logits[0, -1, problem.target_id])
    assert res.f_x == pytest.approx(f_x, abs=1e-5)
    assert abs(res.scores.sum() - (res.f_x - res.f_baseline)) <= 0.01 * abs(res.f_x - res.f_baseline)


def test_ig_completeness_on_minilm_similarity(minilm):
    problem = build_problem(minilm, "A man plays a guitar.", Target("similarity", text_b="Someone makes music."))
    res = attribute(problem, "integrated_gradients", steps=64)
    assert res.completeness_gap < 0.01
    coarse = attribute(problem, "integrated_gradients", steps=16)
    assert coarse.completeness_gap > res.completeness_gap
    # f(x) is the cosine of sentence-transformers mean pooling, recomputed here from the model's outputs
    tok = minilm.tokenizer
    with torch.no_grad():
        pooled = []
        for s in ("A man plays a guitar.", "Someone makes music."):
            enc = tok(s, return_tensors="pt")
            h = minilm.model(**enc).last_hidden_state[0]
            pooled.append(h.mean(0))
        cos = float(torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0))
    assert res.f_x == pytest.approx(cos, abs=1e-5)


def test_ig_batched_equals_unbatched(tiny_llama):
    problem = build_problem(tiny_llama, TEXT, Target("next_token"))
    a = attribute(problem, "integrated_gradients", steps=8, batch_size=8)
    b = attribute(problem, "integrated_gradients", steps=8, batch_size=1)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-6)


def test_ig_fast_mode_reports_its_deviation_against_float32(tiny_llama):
    from llmviz.precision import bf16_support

    if not bf16_support()[0]:
        pytest.skip(bf16_support()[1])
    problem = build_problem(tiny_llama, "the cat sat on the mat and the dog", Target("next_token"))
    exact = attribute(problem, "integrated_gradients", steps=8, batch_size=4)
    fast = attribute(problem, "integrated_gradients", steps=8, batch_size=4, precision="bf16")
    assert exact.params["precision"] == "exact" and exact.params["deviation"] is None
    assert fast.params["precision"] == "bf16" and 0 < fast.params["deviation"] < 0.2
    # the whole answer moves by about as much as the first batch did (bfloat16 keeps ~3 significant digits)
    rel = np.abs(fast.scores - exact.scores).max() / np.abs(exact.scores).max()
    assert 0 < rel < 0.2


def _manual_score(loaded, ids: list[int], position: int, target_id: int) -> float:
    with torch.no_grad():
        return float(loaded.model(input_ids=torch.tensor([ids])).logits[0, position, target_id])


def test_occlusion_equals_manual_leave_one_out(tiny_mlm):
    problem = build_problem(tiny_mlm, "the capital of france is [MASK] .", Target("masked_token"))
    res = attribute(problem, "occlusion", window=1, baseline="pad")
    pad = tiny_mlm.tokenizer.pad_token_id
    ids, pos, tid = problem.token_ids, problem.position, problem.target_id
    full = _manual_score(tiny_mlm, ids, pos, tid)
    for t in range(len(ids)):
        if problem.special_mask[t]:
            assert res.scores[t] == 0.0
            continue
        cut = list(ids)
        cut[t] = pad
        assert res.scores[t] == pytest.approx(full - _manual_score(tiny_mlm, cut, pos, tid), abs=1e-5)


def test_sliding_window_occlusion_equals_manual_average(tiny_llama):
    problem = build_problem(tiny_llama, TEXT, Target("next_token"))
    res = attribute(problem, "occlusion", window=2, baseline="pad")
    pad, ids, tid = tiny_llama.tokenizer.pad_token_id, problem.token_ids, problem.target_id
    pos = len(ids) - 1
    full = _manual_score(tiny_llama, ids, pos, tid)
    free = [i for i in range(len(ids)) if not problem.special_mask[i]]
    drops = {}
    for s in range(len(free) - 1):
        cut = list(ids)
        for i in free[s : s + 2]:
            cut[i] = pad
        drops[(free[s], free[s + 1])] = full - _manual_score(tiny_llama, cut, pos, tid)
    for t in free:
        covering = [d for span, d in drops.items() if t in span]
        assert res.scores[t] == pytest.approx(np.mean(covering), abs=1e-5)


@pytest.mark.parametrize(
    "method,params", [("grad_x_input", {}), ("integrated_gradients", {"steps": 16}), ("occlusion", {"window": 2})]
)
def test_contrastive_equals_difference_for_linear_methods(tiny_llama, method, params):
    assert METHODS[method].linear
    a = attribute(build_problem(tiny_llama, TEXT, Target("next_token", token="he")), method, **params)
    b = attribute(build_problem(tiny_llama, TEXT, Target("next_token", token="she")), method, **params)
    ab = attribute(build_problem(tiny_llama, TEXT, Target("next_token", token="he", contrast="she")), method, **params)
    np.testing.assert_allclose(ab.scores, a.scores - b.scores, rtol=1e-4, atol=1e-5)
    assert "−" in ab.label


def test_last_layer_attention_and_rollout_come_from_the_model(tiny_llama):
    from llmviz.attention.extract import rollout

    problem = build_problem(tiny_llama, TEXT, Target("next_token"))
    with torch.no_grad():
        att = tiny_llama.model(input_ids=torch.tensor([problem.token_ids]), output_attentions=True).attentions
    stack = torch.stack([a[0] for a in att]).numpy()  # [L, H, T, T]
    last = attribute(problem, "last_layer_attention")
    np.testing.assert_allclose(last.scores, stack[-1].mean(0)[-1], atol=1e-6)
    roll = attribute(problem, "attention_rollout")
    np.testing.assert_allclose(roll.scores, rollout(stack)[-1], atol=1e-6)
    assert not METHODS["attention_rollout"].target_aware


def test_registry_rejects_unknown_names_and_bounds_steps():
    problem, *_ = linear_problem()
    with pytest.raises(InputError, match="grad_x_input"):
        attribute(problem, "lime")
    with pytest.raises(InputError, match="no parameter"):
        attribute(problem, "grad_x_input", steps=3)
    with pytest.raises(InputError, match="between 1 and"):
        attribute(problem, "integrated_gradients", steps=10_000)
    with pytest.raises(InputError, match="Baseline"):
        attribute(problem, "integrated_gradients", baseline="mask")
    with pytest.raises(UnsupportedModelError):
        attribute(problem, "attention_rollout")  # a hand-built problem has no model


def test_spearman_matrix_matches_rank_identities():
    toks, special = ["a", "b", "c", "d", "e"], np.array([True, False, False, False, False])
    mk = lambda s: Attribution("grad_x_input", toks, np.array(s, float), special, "x", {})  # noqa: E731
    rho = spearman_matrix([mk([9, 1, 2, 3, 4]), mk([-9, 10, 20, 30, 40]), mk([0, 4, 3, 2, 1]), mk([0, 1, 1, 1, 1])])
    assert rho[0, 1] == pytest.approx(1.0)  # the special token (position 0) is ignored
    assert rho[0, 2] == pytest.approx(-1.0)
    assert np.isnan(rho[0, 3])


def test_bad_inputs_give_clear_errors(tiny_llama, tiny_mlm, minilm):
    with pytest.raises(InputError, match="empty"):
        build_problem(tiny_llama, "   ", Target("next_token"))
    with pytest.raises(InputError, match="exactly one"):
        build_problem(tiny_mlm, "no mask here", Target("masked_token"))
    with pytest.raises(InputError, match="second sentence"):
        build_problem(minilm, "one sentence", Target("similarity"))
    with pytest.raises(UnsupportedModelError, match="similarity"):
        build_problem(minilm, "text", Target("next_token"))
    with pytest.raises(InputError, match="same token"):
        build_problem(tiny_llama, TEXT, Target("next_token", token="he", contrast="he"))


def test_long_emoji_rtl_and_html_inputs(tiny_llama):
    long = build_problem(tiny_llama, "word " * 5000, Target("next_token"))
    assert long.truncated and long.n_tokens == MAX_TOKENS and long.n_tokens_original > 5000
    odd = build_problem(tiny_llama, "</script><b>x</b> 🙂 مرحبا שלום", Target("next_token"))
    res = attribute(odd, "grad_x_input")
    assert np.isfinite(res.scores).all() and len(res.scores) == odd.n_tokens


def test_resolve_token_prefers_word_start_and_reports_splits(smollm2):
    tid, note = resolve_token(smollm2, "he", "The doctor said that")
    assert smollm2.tokenizer.convert_ids_to_tokens(tid) == "Ġhe" and note == ""
    tid, note = resolve_token(smollm2, "antidisestablishmentarianism", "x")
    assert "tokens" in note and tid == smollm2.tokenizer.encode(" antidisestablishmentarianism")[0]
