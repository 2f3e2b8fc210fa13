"""Logit lens against the model's own outputs; head ablation against hand-written hooks and weight surgery."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from llmviz.errors import UnsupportedModelError
from llmviz.explain.ablation import ablate, ablation_problem, head_ablation, top_heads
from llmviz.explain.logit_lens import logit_lens
from llmviz.explain.targets import Target, build_problem
from llmviz.precision import bf16_support

TEXT = "the doctor said that"


@pytest.mark.parametrize("fixture", ["tiny_llama", "smollm2"])
def test_logit_lens_last_layer_is_the_model_output(fixture, request):
    loaded = request.getfixturevalue(fixture)
    text = "The doctor said that"
    res = logit_lens(loaded, text, "he")
    enc = loaded.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = loaded.model(**enc, output_hidden_states=True)
    probs = torch.softmax(out.logits[0], -1).numpy()  # [T, V]
    assert len(res.layer_names) == loaded.facts.n_layers + 1
    np.testing.assert_allclose(res.last_probs[-1], probs[-1], atol=1e-5)
    np.testing.assert_allclose(res.top_probs[-1], probs.max(-1), atol=1e-5)
    assert list(res.top_ids[-1]) == list(probs.argmax(-1))
    assert res.output_max_diff < 1e-5
    # an intermediate layer: HF's own hidden state after layer 1, through the final norm and the unembedding
    m = loaded.model
    mid = torch.softmax(m.lm_head(m.model.norm(out.hidden_states[1][0])), -1).detach().numpy()
    np.testing.assert_allclose(res.top_probs[1], mid.max(-1), atol=1e-5)
    # rank 1 exactly where the target is the top token
    tid = res.target_id
    np.testing.assert_array_equal(res.target_ranks == 1, res.last_probs.argmax(-1) == tid)
    np.testing.assert_allclose(res.target_probs, res.last_probs[:, tid])


def test_logit_lens_needs_a_causal_lm(tiny_mlm):
    with pytest.raises(UnsupportedModelError, match="causal"):
        logit_lens(tiny_mlm, "the [MASK] .")


def _manual_head_ablation(loaded, ids, layer, heads, target_id, proj_path):
    """Zero heads via our own pre-hook on the output projection; return log p(target) at the last position."""
    n_heads = loaded.facts.n_heads
    proj = proj_path(loaded.model, layer)

    def hook(_m, args):
        x = args[0].clone()
        hd = x.shape[-1] // n_heads
        for h in heads:
            x[..., h * hd : (h + 1) * hd] = 0
        return (x,)

    handle = proj.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            logits = loaded.model(input_ids=torch.tensor([ids])).logits[0]
    finally:
        handle.remove()
    return logits


def test_head_ablation_matches_manual_hooks_with_gqa(tiny_llama):
    assert tiny_llama.facts.n_kv_heads < tiny_llama.facts.n_heads  # grouped-query attention
    problem = ablation_problem(tiny_llama, TEXT, Target("next_token", token="he"))
    res = head_ablation(problem, whole_layers=True, batch_size=3)
    ids, tid = problem.token_ids, problem.target_id
    base = torch.log_softmax(
        _manual_head_ablation(tiny_llama, ids, 0, [], tid, lambda m, i: m.model.layers[i].self_attn.o_proj)[-1], -1
    )[tid]
    assert res.base_score == pytest.approx(float(base), abs=1e-5)
    for layer in range(tiny_llama.facts.n_layers):
        for head in range(tiny_llama.facts.n_heads):
            lp = torch.log_softmax(
                _manual_head_ablation(
                    tiny_llama, ids, layer, [head], tid, lambda m, i: m.model.layers[i].self_attn.o_proj
                )[-1],
                -1,
            )[tid]
            assert res.head_delta[layer, head] == pytest.approx(float(lp - base), abs=1e-5)
        lp = torch.log_softmax(
            _manual_head_ablation(
                tiny_llama,
                ids,
                layer,
                range(tiny_llama.facts.n_heads),
                tid,
                lambda m, i: m.model.layers[i].self_attn.o_proj,
            )[-1],
            -1,
        )[tid]
        assert res.layer_delta[layer] == pytest.approx(float(lp - base), abs=1e-5)
    assert np.abs(res.head_delta).max() > 1e-4  # the check is not vacuous
    l0, h0, d0 = top_heads(res, 1)[0]
    assert abs(d0) == pytest.approx(np.abs(res.head_delta).max())


def test_head_ablation_equals_zeroing_output_projection_columns(tiny_llama):
    problem = ablation_problem(tiny_llama, TEXT, Target("next_token", token="he", contrast="she"))
    res = head_ablation(problem, whole_layers=False, batch_size=32)
    layer, head = 1, 2
    hd = tiny_llama.facts.hidden_size // tiny_llama.facts.n_heads
    surgery = copy.deepcopy(tiny_llama.model)
    with torch.no_grad():
        surgery.model.layers[layer].self_attn.o_proj.weight[:, head * hd : (head + 1) * hd] = 0
        logits = surgery(input_ids=torch.tensor([problem.token_ids])).logits[0, -1]
    diff = float(logits[problem.target_id] - logits[problem.contrast_id])
    assert res.base_score + res.head_delta[layer, head] == pytest.approx(diff, abs=1e-5)


def test_ablating_nothing_changes_nothing(tiny_llama, tiny_mlm):
    for loaded, text, target in (
        (tiny_llama, TEXT, Target("next_token")),
        (tiny_mlm, "the capital is [MASK] .", Target("masked_token")),
    ):
        problem = ablation_problem(loaded, text, target)
        base = head_ablation(problem, whole_layers=False).base_score
        scores = ablate(problem, [(0, ()), (1, ())], loaded.facts.n_heads)
        np.testing.assert_allclose(scores, [base, base], atol=1e-6)
        assert head_ablation(problem, whole_layers=False).null_delta < 1e-6


def test_head_ablation_on_bert_matches_manual_hook(tiny_mlm):
    problem = ablation_problem(tiny_mlm, "the capital is [MASK] .", Target("masked_token"))
    res = head_ablation(problem, whole_layers=False, batch_size=5)
    layer, head, tid, pos = 1, 3, problem.target_id, problem.position
    logits = _manual_head_ablation(
        tiny_mlm, problem.token_ids, layer, [head], tid, lambda m, i: m.bert.encoder.layer[i].attention.output.dense
    )
    lp = float(torch.log_softmax(logits[pos], -1)[tid])
    assert res.base_score + res.head_delta[layer, head] == pytest.approx(lp, abs=1e-5)


def test_batched_equals_one_at_a_time(tiny_llama):
    problem = ablation_problem(tiny_llama, TEXT, Target("next_token"))
    a = head_ablation(problem, whole_layers=True, batch_size=64)
    b = head_ablation(problem, whole_layers=True, batch_size=1)
    np.testing.assert_allclose(a.head_delta, b.head_delta, atol=1e-5)
    seen = []
    head_ablation(problem, whole_layers=False, batch_size=3, progress=lambda d, n, _: seen.append((d, n)))
    assert seen[-1][0] == seen[-1][1] and len(seen) > 1


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gemma3", "tiny_mlm"])
def test_shared_prefix_equals_every_row_through_every_layer(fixture, request):
    """Layers before a batch's first ablated layer run once at batch 1: the same scores as the full batch."""

    loaded = request.getfixturevalue(fixture)
    text = "the cat sat on the [MASK] ." if fixture == "tiny_mlm" else "the cat sat on the mat and"
    problem = ablation_problem(loaded, text, Target("masked_token" if fixture == "tiny_mlm" else "next_token"))
    L, H = loaded.facts.n_layers, loaded.facts.n_heads
    units = [(layer, (h,)) for layer in range(L) for h in range(H)] + [(layer, tuple(range(H))) for layer in range(L)]
    shared = ablate(problem, units, H, batch_size=5)
    full = ablate(problem, units, H, batch_size=5, share_prefix=False)
    np.testing.assert_allclose(shared, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "fixture,text,kind",
    [("tiny_llama", TEXT, "next_token"), ("tiny_mlm", "the capital is [MASK] .", "masked_token")],
)
def test_head_ablation_fast_mode_reports_its_deviation_against_float32(fixture, text, kind, request, one_thread):
    """bf16: the deviation is the first batch against a float32 run of the same heads made here; exact has none."""
    ok, why = bf16_support()
    if not ok:
        pytest.skip(why)
    loaded = request.getfixturevalue(fixture)
    problem = ablation_problem(loaded, text, Target(kind))
    L, H, n = loaded.facts.n_layers, loaded.facts.n_heads, 5
    exact = head_ablation(problem, batch_size=n)
    fast = head_ablation(problem, batch_size=n, precision="bf16")
    assert (exact.precision, exact.deviation) == ("exact", None) and exact.params()["deviation"] is None
    assert fast.params()["precision"] == "bf16" and fast.base_score == exact.base_score
    first = [(layer, (h,)) for layer in range(L) for h in range(H)][:n]  # head_ablation's first batch
    fast_first = fast.base_score + fast.head_delta.flat[:n]
    np.testing.assert_allclose(fast_first, ablate(problem, first, H, batch_size=n, precision="bf16"), atol=1e-9)
    float32 = ablate(problem, first, H, batch_size=n)
    assert fast.deviation == pytest.approx(float(np.abs(fast_first - float32).max()), rel=1e-9, abs=1e-12)
    assert 0 < fast.deviation < 0.5  # bfloat16 keeps ~3 significant digits; it does move the scores
    assert np.abs(fast.head_delta - exact.head_delta).max() < 0.5
    assert fast.null_delta < 1e-6  # the check row (hooks in place, nothing zeroed) stays exact


def test_similarity_problem_ablation_keeps_cosine(minilm):
    problem = ablation_problem(minilm, "A man plays a guitar.", Target("similarity", text_b="Music."))
    assert problem.label.startswith("cos")
    assert build_problem(minilm, "A man plays a guitar.", Target("similarity", text_b="Music.")).label == problem.label
