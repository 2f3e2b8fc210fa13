"""Integrated-gradients baselines, per-model defaults and the completeness-gap advice (issue 13).

Baselines are checked against the embedding matrix read directly (and, for Gemma's scaled embedding, the
layer's own forward over the whole vocabulary); completeness against the analytic answer on a linear problem
and against steps on a tiny transformer; the advice against every combination of settings.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from llmviz.explain.attribution import MAX_IG_STEPS, attribute
from llmviz.explain.ig_defaults import (
    GAP_WARN,
    IG_DEFAULTS,
    KIND_DEFAULTS,
    RULES,
    Advice,
    IGSettings,
    gap_advice,
    ig_defaults,
)
from llmviz.explain.targets import BASELINES, Problem, Target, available_baselines, build_problem, mean_embedding
from llmviz.models.base import CAUSAL_LM, ENCODER

TEXT = "the doctor said that"


def _check_rows(problem: Problem, name: str, row: np.ndarray) -> None:
    """Every non-special position of baseline ``name`` is ``row``; special positions keep the input."""
    ref = problem.baseline(name).double().numpy()
    x = problem.embeds.double().numpy()
    for t, special in enumerate(problem.special_mask):
        np.testing.assert_allclose(ref[t], x[t] if special else row, rtol=1e-5, atol=1e-6, err_msg=f"{name}@{t}")


def test_baselines_of_smollm2_are_zero_pad_bos_and_mean_rows(smollm2):
    problem = build_problem(smollm2, "The doctor told the nurse that", Target("next_token"))
    tok = smollm2.tokenizer
    w = smollm2.model.get_input_embeddings().weight.detach().double().numpy()  # [V, D]
    assert list(problem.baselines) == available_baselines(tok) == ["zero", "pad", "bos", "mean"]
    assert tok.pad_token_id != tok.bos_token_id  # two different rows, so the test tells them apart
    _check_rows(problem, "zero", np.zeros(w.shape[1]))
    _check_rows(problem, "pad", w[tok.pad_token_id])
    _check_rows(problem, "bos", w[tok.bos_token_id])
    _check_rows(problem, "mean", w.mean(axis=0))  # float64 mean over the 49k rows
    assert not np.allclose(w.mean(axis=0), 0, atol=1e-4)  # the mean baseline is not the zero baseline


def test_baselines_of_a_masked_lm_include_mask_and_keep_special_tokens(tiny_mlm):
    problem = build_problem(tiny_mlm, "the capital of france is [MASK] .", Target("masked_token"))
    tok = tiny_mlm.tokenizer
    w = tiny_mlm.model.get_input_embeddings().weight.detach().double().numpy()
    assert list(problem.baselines) == available_baselines(tok) == ["zero", "pad", "mean", "mask"]  # no BOS token
    assert problem.special_mask[0] and problem.special_mask[-1]  # [CLS] ... [SEP] stay in every baseline
    _check_rows(problem, "mask", w[tok.mask_token_id])
    _check_rows(problem, "mean", w.mean(axis=0))


def test_mean_baseline_of_a_scaled_embedding_is_the_mean_layer_output(tiny_gemma3):
    """Gemma multiplies embeddings by sqrt(hidden) inside the layer: the mean baseline is in that scale."""
    emb = tiny_gemma3.model.get_input_embeddings()
    assert getattr(emb, "embed_scale", None) is not None
    with torch.no_grad():
        direct = emb(torch.arange(emb.weight.shape[0])).double().mean(0).numpy()  # the layer over every id
    np.testing.assert_allclose(mean_embedding(emb).double().numpy(), direct, rtol=1e-5, atol=1e-6)
    assert not np.allclose(direct, emb.weight.detach().double().mean(0).numpy(), atol=1e-3)  # the scale matters
    problem = build_problem(tiny_gemma3, TEXT, Target("next_token"))
    _check_rows(problem, "mean", direct)


def _linear(first_special: bool):
    g = torch.Generator().manual_seed(3)
    x, w, mean = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(6, generator=g)
    special = np.array([first_special, False, False, False])
    keep = torch.as_tensor(special)[:, None]
    problem = Problem(
        tokens=list("abcd"),
        embeds=x,
        score=lambda e: (e * w).sum((-1, -2)),
        special_mask=special,
        baselines={"zero": torch.where(keep, x, 0 * x), "mean": torch.where(keep, x, mean.expand_as(x))},
        label="linear",
        position=3,
        target=Target("next_token"),
    )
    return problem, x, w, mean


def test_keep_first_holds_the_first_token_and_keeps_completeness():
    problem, x, w, mean = _linear(first_special=False)
    held = attribute(problem, "integrated_gradients", steps=2, baseline="mean", keep_first=True)
    ref = mean.expand_as(x).clone()
    ref[0] = x[0]
    np.testing.assert_allclose(held.scores, ((x - ref) * w).sum(-1).numpy(), rtol=1e-5, atol=1e-6)
    assert held.scores[0] == 0.0 and held.params["keep_first"] is True
    assert held.f_baseline == pytest.approx(float((ref * w).sum()), abs=1e-5)  # f at the held baseline
    assert held.completeness_gap < 1e-5
    moved = attribute(problem, "integrated_gradients", steps=2, baseline="mean")
    assert moved.scores[0] != 0.0
    # with a special first token (BOS, [CLS]) holding it changes nothing
    special, *_ = _linear(first_special=True)
    a = attribute(special, "integrated_gradients", steps=2, baseline="mean", keep_first=True)
    b = attribute(special, "integrated_gradients", steps=2, baseline="mean")
    np.testing.assert_allclose(a.scores, b.scores)


@pytest.mark.parametrize("baseline", ["zero", "pad", "mean"])
def test_completeness_on_a_tiny_transformer_converges_with_steps(tiny_llama, baseline, one_thread):
    problem = build_problem(tiny_llama, TEXT, Target("next_token", token="he"))
    res = {s: attribute(problem, "integrated_gradients", steps=s, baseline=baseline) for s in (4, 16, 64)}
    gaps = [res[s].completeness_gap for s in (4, 16, 64)]
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[2] < 1e-3, gaps
    # f(baseline) is the model's own output at that baseline, recomputed here
    with torch.no_grad():
        ref = problem.baseline(baseline)[None]
        f_b = float(tiny_llama.model(inputs_embeds=ref).logits[0, -1, problem.target_id])
    assert res[64].f_baseline == pytest.approx(f_b, abs=1e-4)


def test_defaults_by_model_id_then_kind():
    class Facts:
        def __init__(self, model_id, kind):
            self.model_id, self.kind = model_id, kind

    assert ig_defaults(Facts("smollm2", CAUSAL_LM)) == IG_DEFAULTS["smollm2"]
    assert ig_defaults(Facts("gemma3", CAUSAL_LM)) == IG_DEFAULTS["gemma3"]
    assert ig_defaults(Facts("/some/folder", ENCODER)) == KIND_DEFAULTS[ENCODER]
    assert ig_defaults(Facts("/some/llama", CAUSAL_LM)) == KIND_DEFAULTS[CAUSAL_LM]
    for s in IG_DEFAULTS.values():  # each default is something the page's widgets can show
        assert s.baseline in BASELINES and s.rule in RULES and 4 <= s.steps <= MAX_IG_STEPS and s.steps % 4 == 0


def _field(s: IGSettings, what: str):
    return {"steps": s.steps, "rule": s.rule, "keep_first": s.keep_first, "baseline": s.baseline}[what]


def test_advice_never_names_the_selected_option():
    baselines = ["zero", "pad", "bos", "mean"]
    preferred = IGSettings("mean", 128, keep_first=True)
    combos = itertools.product(baselines, (4, 32, 128, 255, MAX_IG_STEPS), RULES, (False, True), (False, True))
    n = 0
    for baseline, steps, rule, keep, first_special in combos:
        current = IGSettings(baseline, steps, rule, keep)
        advice = gap_advice(1.57, current, baselines, preferred, first_is_special=first_special)
        for a in advice:
            assert a.value != _field(current, a.what), (current, a)
            n += 1
        whats = [a.what for a in advice]
        assert ("rule" in whats) == (rule != "gauss_legendre")  # Gauss–Legendre chosen: never "switch to it"
        assert ("steps" in whats) == (steps < MAX_IG_STEPS)
        assert all(a.value <= MAX_IG_STEPS for a in advice if a.what == "steps")
        assert ("keep_first" in whats) == (not keep and not first_special)
        assert sorted(a.value for a in advice if a.what == "baseline") == sorted(b for b in baselines if b != baseline)
    assert n > 500  # the loop saw advice (guards against a vacuous pass)


def test_advice_order_and_threshold():
    baselines = ["zero", "pad", "bos", "mean"]
    preferred = IGSettings("mean", 128, keep_first=True)
    # the reported case: Gauss–Legendre already selected, zero baseline, 32 steps, gap 157 %
    advice = gap_advice(1.57, IGSettings("zero", 32), baselines, preferred)
    assert advice[:3] == [Advice("keep_first", True), Advice("baseline", "mean"), Advice("steps", 64)]
    assert Advice("rule", "gauss_legendre") not in advice
    assert gap_advice(GAP_WARN / 2, IGSettings("zero", 4, "riemann_midpoint"), baselines, preferred) == []
    assert gap_advice(None, IGSettings("zero", 4), baselines) == []
    at_limit = gap_advice(0.2, IGSettings("mean", MAX_IG_STEPS, keep_first=True), ["zero", "mean"], preferred)
    assert at_limit == [Advice("baseline", "zero")]


@pytest.mark.slow
def test_smollm2_defaults_close_the_gap_the_old_default_left_open(smollm2, one_thread):
    """The issue's finding on the tour text, and the measured default (llmviz.explain.ig_defaults)."""
    problem = build_problem(smollm2, "The movie was not good at all.", Target("next_token"))
    old = attribute(problem, "integrated_gradients", steps=32, baseline="zero")  # the previous page default
    assert old.completeness_gap > 0.5
    new = attribute(problem, "integrated_gradients", **IG_DEFAULTS["smollm2"].as_params())
    assert new.completeness_gap < GAP_WARN
    assert new.scores[0] == 0.0  # the held first token
