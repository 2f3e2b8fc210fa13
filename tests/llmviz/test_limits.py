"""Issue 12, finding 4: every input is bounded by a constant in llmviz.limits, with a notice."""

from __future__ import annotations

import dataclasses
import time

import pytest

from llmviz import limits
from llmviz.errors import InputError


def test_system_prompt_is_cut_with_notice(tiny_llama):
    from llmviz.generation.generate import build_prompt

    system = " ".join(f"w{i}" for i in range(5000))
    p = build_prompt(tiny_llama, "Hello there", system)
    assert len(p.system.split()) == limits.MAX_SYSTEM_PROMPT_WORDS
    assert any("system prompt" in n.lower() and f"{limits.MAX_SYSTEM_PROMPT_WORDS:,}" in n for n in p.notices)
    assert len(p.ids) < 3 * (limits.MAX_SYSTEM_PROMPT_WORDS + 10)


def test_candidates_bounded_in_count_and_length():
    from llmviz.generation.fill_mask import parse_candidates

    t0 = time.process_time()  # CPU seconds: a busy shared machine cannot stretch them
    with pytest.raises(InputError) as err:
        parse_candidates(" ".join(["word"] * 5000))  # 5,000 words without commas: one huge "candidate"
    assert str(limits.MAX_CANDIDATE_CHARS) in str(err.value)
    assert time.process_time() - t0 < 0.5
    with pytest.raises(InputError):
        parse_candidates(", ".join(f"w{i}" for i in range(limits.MAX_CANDIDATES + 1)))
    with pytest.raises(InputError):
        parse_candidates("x" * 100_000)
    assert parse_candidates("good, very good") == ["good", "very good"]


def test_explain_tokens_bounded_by_model_size(tiny_llama):
    from llmviz.explain.targets import NEXT_TOKEN, Target, build_problem, token_limit

    assert limits.explain_token_limit(135_000_000) == limits.MIN_EXPLAIN_TOKENS  # smollm2
    assert limits.explain_token_limit(1_000_000) == limits.MAX_EXPLAIN_TOKENS
    big = dataclasses.replace(tiny_llama, facts=dataclasses.replace(tiny_llama.facts, n_params=135_000_000))
    assert token_limit(big) == limits.MIN_EXPLAIN_TOKENS
    text = " ".join(["the cat sat on the mat"] * 20)
    problem = build_problem(big, text, Target(kind=NEXT_TOKEN))
    assert problem.truncated and problem.n_tokens == limits.MIN_EXPLAIN_TOKENS
    assert problem.params()["max_tokens"] == limits.MIN_EXPLAIN_TOKENS
    assert build_problem(tiny_llama, text, Target(kind=NEXT_TOKEN)).n_tokens == limits.MAX_EXPLAIN_TOKENS


def test_bounds_live_in_limits():
    from llmviz.bias import pairs, pairs_data, weat
    from llmviz.generation import fill_mask, generate
    from llmviz.train import experiments

    assert generate.MAX_PROMPT_WORDS == limits.MAX_PROMPT_WORDS
    assert fill_mask.MAX_CANDIDATES == limits.MAX_CANDIDATES and fill_mask.MAX_FILL_WORDS == limits.MAX_FILL_WORDS
    assert weat.MAX_WORDS_PER_SET == limits.MAX_WEAT_WORDS
    assert pairs_data.MAX_UPLOAD_BYTES == limits.MAX_CSV_BYTES and pairs.MAX_PAIRS_UI == limits.MAX_CSV_ROWS
    assert experiments.MAX_STORIES == limits.MAX_TRAIN_STORIES
