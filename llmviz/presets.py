"""The five application presets of the Playground (editable starting points, not benchmarks).

Each preset is a system + user prompt and suggested decoding settings. ``PRESETS`` is the one
registry; the page builds its selector from its keys (plus ``fill_mask``, which is not generation).
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.errors import InputError
from llmviz.generate import SamplingParams


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    system: str
    user: str
    params: SamplingParams
    note: str  # what to expect from a small model on this task


PRESETS: dict[str, Preset] = {
    "translation": Preset(
        "translation", "Translation",
        "You are a translator. Translate the user's text into French. Reply with the translation only.",
        "The weather is nice today, so we are going to the park.",
        SamplingParams(greedy=True, max_new_tokens=32, repetition_penalty=1.1),
        "A 135M model translates poorly: expect wrong words and invented grammar. Compare several seeds."),
    "summarization": Preset(
        "summarization", "Summarization",
        "You summarize texts in one short sentence.",
        "Summarize: The school library will close for renovation from June to August. During that time "
        "students can borrow books from the town library, which has extended its opening hours. The new "
        "library will have more study rooms and a computer lab.",
        SamplingParams(greedy=True, max_new_tokens=40, repetition_penalty=1.1),
        "Small models often copy the first sentence or add facts that are not in the text."),
    "qa": Preset(
        "qa", "Question answering",
        "Answer the question briefly.",
        "What is the boiling point of water at sea level in degrees Celsius?",
        SamplingParams(greedy=True, max_new_tokens=32),
        "Answers sound confident whether or not they are right: check them against a source."),
    "code": Preset(
        "code", "Code generation",
        "You are a helpful programming assistant. Answer with Python code only.",
        "Write a Python function that returns the factorial of n.",
        SamplingParams(greedy=True, max_new_tokens=64, repetition_penalty=1.05),
        "Generated code can look right and still be wrong: run and test it before trusting it."),
    "creative": Preset(
        "creative", "Creative writing",
        "You are a creative writer.",
        "Write the first two sentences of a story about a robot who learns to paint.",
        SamplingParams(greedy=False, temperature=0.9, top_k=50, top_p=0.95, max_new_tokens=48, seed=7),
        "Sampling (temperature > 0) makes each seed tell a different story; greedy repeats itself."),
}
FILL_MASK = "fill_mask"
MODES = tuple(PRESETS) + (FILL_MASK,)  # the page's `preset` deep-link values
DEFAULT_MODE = "translation"


def get_preset(key: str) -> Preset:
    if key not in PRESETS:
        raise InputError(f"Unknown preset '{key}'. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[key]
