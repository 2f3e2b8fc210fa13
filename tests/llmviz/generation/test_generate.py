"""Generation: greedy == manual argmax loop, per-step probabilities == softmax with the documented
warpers (checked against transformers' own logits processors), seeded reproducibility, branching,
stop, bounds, exports."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.generation.generate import (
    MAX_NEW_TOKENS_LIMIT,
    MAX_PROMPT_WORDS,
    GenerationStream,
    SamplingParams,
    branch,
    build_prompt,
    generate,
    repetition_penalty,
    top_k_filter,
    top_p_filter,
)
from llmviz.generation.transcript import transcript_csv, transcript_json


def manual_greedy(model, ids: list[int], n: int) -> list[int]:
    """Reference: full forward pass (no cache) at every step, argmax of the last logits."""
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
    return out


def full_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()  # [T, vocab]


def hf_warped(logits: torch.Tensor, seen: list[int], p: SamplingParams) -> torch.Tensor:
    """The documented chain, built from transformers' processors (independent implementation)."""
    ids = torch.tensor([seen])
    z = RepetitionPenaltyLogitsProcessor(p.repetition_penalty)(ids, logits[None].clone())
    if not p.greedy:
        z = TemperatureLogitsWarper(p.temperature)(ids, z)
        if p.top_k:
            z = TopKLogitsWarper(p.top_k)(ids, z)
        if p.top_p < 1:
            z = TopPLogitsWarper(p.top_p)(ids, z)
    return z[0]


@pytest.fixture(scope="module")
def prompt(tiny_llama):
    return build_prompt(tiny_llama, "the cat sat on the mat and")


def test_greedy_equals_manual_argmax_loop(tiny_llama, prompt):
    gen = generate(tiny_llama, prompt, SamplingParams(greedy=True, max_new_tokens=8), stop_at_eos=False)
    assert gen.token_ids == manual_greedy(tiny_llama.model, prompt.ids, 8)
    assert gen.stop_reason == "max_new_tokens" and len(gen.steps) == 8


def test_greedy_smollm2_chat_template_equals_manual_loop(smollm2):
    prompt = build_prompt(smollm2, "Name a colour.", "Answer in one word.")
    assert prompt.chat_template and "<|im_start|>assistant" in prompt.text
    assert (
        prompt.ids
        == smollm2.tokenizer.apply_chat_template(
            [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Name a colour."}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
    )
    gen = generate(smollm2, prompt, SamplingParams(greedy=True, max_new_tokens=3), stop_at_eos=False)
    assert gen.token_ids == manual_greedy(smollm2.model, prompt.ids, 3)
    # greedy without penalty: the reported probability is the plain softmax of the logits
    logits = full_logits(smollm2.model, prompt.ids)[-1]
    assert gen.steps[0].prob == pytest.approx(float(logits.softmax(-1).max()), rel=1e-4)


def test_per_step_probs_equal_softmax_with_documented_warpers(tiny_llama, prompt):
    params = SamplingParams(
        temperature=0.7, top_k=40, top_p=0.9, repetition_penalty=1.3, max_new_tokens=6, seed=3, n_alternatives=4
    )
    gen = generate(tiny_llama, prompt, params, stop_at_eos=False)
    for s in gen.steps:
        seen = prompt.ids + gen.token_ids[: s.index]
        logits = full_logits(tiny_llama.model, seen)[-1]
        p_model = logits.softmax(-1)
        p_sample = hf_warped(logits, seen, params).softmax(-1)
        assert p_sample[s.token_id] > 0  # the drawn token survived the filters
        assert s.prob == pytest.approx(float(p_sample[s.token_id]), rel=1e-4, abs=1e-7)
        assert s.model_prob == pytest.approx(float(p_model[s.token_id]), rel=1e-4, abs=1e-7)
        nz = p_sample[p_sample > 0]
        assert s.entropy == pytest.approx(float(-(nz * nz.log2()).sum()), rel=1e-4, abs=1e-6)
        top = torch.topk(p_model, 4)
        assert [a.token_id for a in s.alternatives] == top.indices.tolist()
        assert [a.model_prob for a in s.alternatives] == pytest.approx(top.values.tolist(), rel=1e-4)
        assert s.rank == int((p_model > p_model[s.token_id]).sum()) + 1


def test_greedy_with_repetition_penalty_reports_penalised_softmax(tiny_llama, prompt):
    params = SamplingParams(greedy=True, repetition_penalty=1.5, max_new_tokens=4)
    gen = generate(tiny_llama, prompt, params, stop_at_eos=False)
    for s in gen.steps:
        seen = prompt.ids + gen.token_ids[: s.index]
        z = hf_warped(full_logits(tiny_llama.model, seen)[-1], seen, params)
        assert s.token_id == int(z.argmax())
        assert s.prob == pytest.approx(float(z.softmax(-1)[s.token_id]), rel=1e-4)


def test_warpers_match_transformers_processors():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, generator=g) * 3
    seen = [1, 5, 5, 17, 400]
    ids = torch.tensor([seen])
    ref = RepetitionPenaltyLogitsProcessor(1.7)(ids, logits[None].clone())[0]
    assert torch.equal(repetition_penalty(logits, seen, 1.7), ref)
    assert torch.equal(top_k_filter(logits, 7), TopKLogitsWarper(7)(ids, logits[None])[0])
    for p in (0.05, 0.5, 0.93):
        assert torch.equal(top_p_filter(logits, p), TopPLogitsWarper(p)(ids, logits[None])[0])
    assert torch.isfinite(top_p_filter(logits, 1e-9)).sum() == 1  # at least one token always kept


def test_seeded_sampling_reproducible_and_seeds_differ(tiny_llama, prompt):
    p = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8, seed=11)
    a = generate(tiny_llama, prompt, p, stop_at_eos=False)
    b = generate(tiny_llama, prompt, p, stop_at_eos=False)
    c = generate(tiny_llama, prompt, SamplingParams(**{**p.as_dict(), "seed": 12}), stop_at_eos=False)
    assert a.token_ids == b.token_ids and a.text == b.text
    assert [s.prob for s in a.steps] == [s.prob for s in b.steps]
    assert a.token_ids != c.token_ids


def test_branch_keeps_prefix_forces_alternative_and_replays_draws(tiny_llama, prompt):
    p = SamplingParams(temperature=0.8, max_new_tokens=6, seed=5)
    parent = generate(tiny_llama, prompt, p, stop_at_eos=False)
    alt = next(a for a in parent.steps[2].alternatives if a.token_id != parent.steps[2].token_id)
    stream = branch(tiny_llama, parent, 2, alt.token_id)
    child = (list(stream), stream.result())[1]
    assert child.token_ids[:2] == parent.token_ids[:2] and child.token_ids[2] == alt.token_id
    assert child.forced_from == 2 and [s.forced for s in child.steps[:3]] == [True, True, True]
    assert child.steps[2].model_prob == pytest.approx(alt.model_prob, rel=1e-4)
    # replaying the parent's own token at a step reproduces the parent exactly (per-step seeds)
    same = branch(tiny_llama, parent, 3, parent.token_ids[3])
    replay = (list(same), same.result())[1]
    assert replay.token_ids == parent.token_ids


def test_stop_callback_keeps_partial_output(tiny_llama, prompt):
    calls = []
    stream = GenerationStream(
        tiny_llama,
        prompt,
        SamplingParams(greedy=True, max_new_tokens=20),
        stop=lambda: len(calls) >= 3,
        stop_at_eos=False,
    )
    for rec in stream:
        calls.append(rec)
    gen = stream.result()
    assert gen.stop_reason == "stopped" and len(gen.steps) == 3
    assert gen.token_ids == manual_greedy(tiny_llama.model, prompt.ids, 3)


def test_bounds_and_bad_input(tiny_llama, tiny_mlm):
    with pytest.raises(InputError, match="empty"):
        build_prompt(tiny_llama, "   ")
    with pytest.raises(InputError, match=str(MAX_NEW_TOKENS_LIMIT)):
        SamplingParams(max_new_tokens=MAX_NEW_TOKENS_LIMIT + 1).checked()
    with pytest.raises(InputError, match="greedy"):
        SamplingParams(temperature=0.0).checked()
    with pytest.raises(UnsupportedModelError, match="causal"):
        build_prompt(tiny_mlm, "hello")
    long = build_prompt(tiny_llama, "word " * 5000)
    assert any(f"{MAX_PROMPT_WORDS:,}" in n for n in long.notices)
    # tiny_llama has a 128-token context: max new tokens is cut to what fits, with a notice
    stream = GenerationStream(tiny_llama, build_prompt(tiny_llama, "a b c"), SamplingParams(max_new_tokens=200))
    assert stream.max_steps == 128 - 3 and stream.notices


def test_emoji_rtl_and_html_prompts_generate(tiny_llama):
    for text in ("😀 مرحبا بالعالم שלום", "</script><b>x</b>"):
        gen = generate(tiny_llama, build_prompt(tiny_llama, text), SamplingParams(greedy=True, max_new_tokens=2))
        assert 1 <= len(gen.steps) <= 2 and all(math.isfinite(s.prob) for s in gen.steps)


def test_transcript_exports_carry_provenance_and_every_token(tiny_llama, prompt):
    gen = generate(tiny_llama, prompt, SamplingParams(greedy=True, max_new_tokens=4), stop_at_eos=False)
    doc = json.loads(transcript_json([gen], tiny_llama.facts))
    assert doc["provenance"]["model"]["model_id"] == tiny_llama.facts.model_id
    assert doc["provenance"]["parameters"]["sampling"]["max_new_tokens"] == 4
    assert [s["token_id"] for s in doc["branches"][0]["steps"]] == gen.token_ids
    text = transcript_csv([gen], tiny_llama.facts)
    assert text.startswith("# created:")
    rows = list(csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))))
    assert [float(r["prob"]) for r in rows] == pytest.approx(list(gen.probs()))
