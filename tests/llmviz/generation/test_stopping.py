"""Stopping rules (sentence end, stop strings), the presets that use them, and Continue (issue 13: four of
five presets stopped mid-sentence at their token limit)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from llmviz.errors import InputError
from llmviz.generation.generate import (
    MAX_NEW_TOKENS_LIMIT,
    GenerationStream,
    SamplingParams,
    build_prompt,
    continue_generation,
    ends_sentence,
    eos_ids,
    generate,
    sentences_ended,
)
from llmviz.generation.presets import PRESETS

SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]」』）]*$")


@pytest.mark.parametrize(
    "text, nxt, expected",
    [
        ("It is nice.", " The", True),
        ("It is nice.", "\n", True),
        ("He said “yes.”", " Then", True),
        ("Really?", "", True),
        ("It costs 3.", "14", False),  # a decimal point
        ("See e.g.", ",", False),
        ("Open file.", "py", False),
        ("It is nice", ".", False),
        ("It is nice.\n", "The", False),  # the break was already written: the rule looked one step earlier
        ("天气很好。", "我们", True),  # a full-width stop needs no space after it
        ("", " The", False),
    ],
)
def test_ends_sentence(text, nxt, expected):
    assert ends_sentence(text, nxt) is expected


@pytest.mark.parametrize(
    "text, nxt, expected",
    [
        ("A robot woke. It painted.", " Then", 2),
        ("A robot woke. It painted", ".", 1),  # the second one is not over yet
        ("A robot woke.\nIt painted!", "\n", 2),
        ("Pi is 3.14 and e is 2.71.", " So", 1),  # decimal points end nothing
        ("He said “stop.” She did.", "", 2),
        ("See e.g., the sky.", " It", 1),
        ("天气很好。我们去公园。", "然后", 2),  # full-width stops, no spaces
        ("天气很好。我们去", "公园", 1),
        ("", " The", 0),
    ],
)
def test_sentences_ended(text, nxt, expected):
    assert sentences_ended(text, nxt) == expected


def test_params_bounds():
    with pytest.raises(InputError, match="sentence end"):
        SamplingParams(sentence_end_after=-1).checked()
    for bad in (0, 11):
        with pytest.raises(InputError, match="Sentences"):
            SamplingParams(sentences=bad).checked()
    with pytest.raises(InputError, match="stop strings"):
        SamplingParams(stop_strings=("",)).checked()
    with pytest.raises(InputError, match="stop strings"):
        SamplingParams(stop_strings=("a",) * 5).checked()


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Two busy shared cores: one torch thread is much faster here (tests/conftest.py one_thread)."""


@pytest.fixture(scope="module")
def preset_runs(smollm2):
    """Each chat preset run once on smollm2 (about 220 tokens in all)."""
    out = {}
    for key, preset in PRESETS.items():
        prompt = build_prompt(smollm2, preset.user, preset.system)
        out[key] = (prompt, generate(smollm2, prompt, preset.params, record=False))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("key", list(PRESETS))
def test_smollm2_preset_ends_at_a_sentence_end_or_eos(smollm2, preset_runs, key):
    """Each chat preset (greedy, or sampling with its seed) ends at EOS, at a sentence end, or at its stop
    string (code: the closing fence) — not at the token limit mid-sentence."""
    prompt, gen = preset_runs[key]
    preset = PRESETS[key]
    assert gen.stop_reason in ("eos", "sentence_end", "stop_string"), (gen.stop_reason, gen.text)
    assert len(gen.steps) < preset.params.max_new_tokens
    if gen.stop_reason == "eos":
        assert gen.token_ids[-1] in eos_ids(smollm2)
    elif gen.stop_reason == "sentence_end":
        assert SENTENCE_END.search(gen.text.rstrip()), gen.text
        assert len(gen.steps) >= preset.params.sentence_end_after
    else:
        assert any(s in gen.text for s in preset.params.stop_strings), gen.text
    if gen.stop_reason in ("eos", "sentence_end"):
        assert SENTENCE_END.search(gen.text.rstrip()), gen.text  # typical outputs end a sentence either way


@pytest.mark.slow
def test_sentence_rule_only_cuts_the_run_short(smollm2, preset_runs):
    """Independent check on the summarization preset: without the rule the same (greedy) run goes on with
    the same tokens, and the token the rule declined starts a new sentence."""
    prompt, gen = preset_runs["summarization"]
    assert gen.stop_reason == "sentence_end"
    n = len(gen.steps)
    free = generate(
        smollm2, prompt, replace(PRESETS["summarization"].params, sentence_end_after=0, max_new_tokens=n + 1)
    )
    assert free.token_ids[:n] == gen.token_ids
    nxt = smollm2.tokenizer.decode(free.token_ids, skip_special_tokens=True)[len(gen.text) :]
    assert nxt[:1].isspace() and gen.text.rstrip()[-1] in ".!?", (gen.text, nxt)


@pytest.mark.slow
def test_creative_preset_writes_the_two_sentences_it_asks_for(smollm2, preset_runs):
    """The creative prompt asks for two sentences; one rule at 40 tokens often ended after the first.
    Independent check: the same seeded run without the rule has the same tokens, and the cut falls at
    its second sentence end, counted by the test's own regex; with ``sentences=1`` it falls at the first."""
    prompt, gen = preset_runs["creative"]
    params = PRESETS["creative"].params
    assert params.sentences == 2
    assert gen.stop_reason in ("sentence_end", "eos"), (gen.stop_reason, gen.text)

    def ends(text: str) -> int:  # sentence ends: . ! ? (closing quotes) then whitespace or the end
        return len(re.findall(r"[.!?…][\"'”’)\]]*(?=\s|$)", text.rstrip()))

    if gen.stop_reason == "eos":
        assert ends(gen.text) >= 1, gen.text
        return
    n = len(gen.steps)
    free = generate(smollm2, prompt, replace(params, sentence_end_after=0, max_new_tokens=n + 1), record=False)
    assert free.token_ids[:n] == gen.token_ids
    assert ends(gen.text) == 2, gen.text
    nxt = smollm2.tokenizer.decode(free.token_ids, skip_special_tokens=True)[len(gen.text) :]
    assert nxt[:1].isspace(), (gen.text, nxt)
    one = generate(smollm2, prompt, replace(params, sentences=1, max_new_tokens=n), record=False)
    assert one.stop_reason == "sentence_end" and len(one.steps) < n, one.text
    assert gen.token_ids[: len(one.steps)] == one.token_ids and ends(one.text) == 1, one.text


def test_continue_equals_one_longer_run(tiny_llama):
    """Greedy and seeded sampling: generate 5, continue by 4 == one run of 9 (same steps, same seeds)."""
    prompt = build_prompt(tiny_llama, "the doctor said that")
    for params in (SamplingParams(greedy=True, max_new_tokens=5), SamplingParams(seed=3, max_new_tokens=5)):
        first = generate(tiny_llama, prompt, params, stop_at_eos=False)
        stream = continue_generation(tiny_llama, first, 4)
        new = list(stream)
        longer = stream.result()
        assert [r.index for r in new] == [5, 6, 7, 8]
        assert longer.token_ids[:5] == first.token_ids and len(longer.steps) == 9
        assert longer.text.startswith(first.text) and len(longer.text) > len(first.text)
        once = generate(tiny_llama, prompt, replace(params, max_new_tokens=9), stop_at_eos=False)
        if not set(once.token_ids) & eos_ids(tiny_llama):  # (a random tiny model rarely picks its EOS)
            assert longer.token_ids == once.token_ids
        assert [s.prob for s in longer.steps] == pytest.approx([s.prob for s in once.steps][: len(longer.steps)])


@pytest.mark.slow
def test_continue_after_a_sentence_end_writes_the_next_sentence(smollm2, preset_runs):
    """The old text ends a sentence; the rule counts only the new tokens, so Continue writes a whole one."""
    _, gen = preset_runs["summarization"]
    stream = continue_generation(smollm2, gen, 48)
    new = list(stream)
    longer = stream.result()
    after = PRESETS["summarization"].params.sentence_end_after
    assert longer.stop_reason in ("sentence_end", "eos")
    if longer.stop_reason == "sentence_end":
        assert len(new) >= after
    assert longer.token_ids[: len(gen.steps)] == gen.token_ids and longer.text.startswith(gen.text)
    assert len(longer.text) > len(gen.text) and SENTENCE_END.search(longer.text.rstrip())


def test_continue_refuses_at_the_limit_and_for_another_model(tiny_llama, tiny_gemma3):
    prompt = build_prompt(tiny_llama, "the doctor said that")
    full = generate(tiny_llama, prompt, SamplingParams(greedy=True, max_new_tokens=2))
    full.steps = full.steps * (MAX_NEW_TOKENS_LIMIT // 2)  # as long as the limit allows
    with pytest.raises(InputError, match="cannot grow"):
        continue_generation(tiny_llama, full, 4)
    short = generate(tiny_llama, prompt, SamplingParams(greedy=True, max_new_tokens=2))
    with pytest.raises(InputError, match="load that model"):
        continue_generation(tiny_gemma3, short, 4)
    with pytest.raises(InputError, match="cannot also force"):
        GenerationStream(tiny_llama, prompt, SamplingParams(max_new_tokens=6), forced=[1], resume=short)
