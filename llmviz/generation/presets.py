"""The five application presets of the Playground (editable starting points, not benchmarks).

Each preset is a system + user prompt and suggested decoding settings. ``PRESETS`` (chat models) and
``COMPLETION_PRESETS`` (base models, per language) have the same keys; ``presets_for`` picks one; the page builds its selector from its keys (plus ``fill_mask``, which is not generation).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmviz.errors import InputError
from llmviz.generation.generate import SamplingParams


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    system: str
    user: str
    params: SamplingParams
    note: str  # what to expect from a small model on this task


# Creative writing, chat and completion alike: seeded sampling that ends at the second sentence end once 8
# tokens are out (the first end after 40 tokens often gave one sentence although the prompt asks for two).
CREATIVE = SamplingParams(
    greedy=False,
    temperature=0.9,
    top_k=50,
    top_p=0.95,
    max_new_tokens=96,
    seed=7,
    sentence_end_after=8,
    sentences=2,
)

PRESETS: dict[str, Preset] = {
    "translation": Preset(
        "translation",
        "Translation",
        "You are a translator. Translate the user's text into French. Reply with the translation only.",
        "The weather is nice today, so we are going to the park.",
        SamplingParams(greedy=True, max_new_tokens=48, repetition_penalty=1.1, sentence_end_after=8),
        "A 135M model translates poorly: expect wrong words and invented grammar. Compare several seeds.",
    ),
    "summarization": Preset(
        "summarization",
        "Summarization",
        "You summarize texts in one short sentence.",
        "Summarize: The school library will close for renovation from June to August. During that time "
        "students can borrow books from the town library, which has extended its opening hours. The new "
        "library will have more study rooms and a computer lab.",
        SamplingParams(greedy=True, max_new_tokens=64, repetition_penalty=1.1, sentence_end_after=12),
        "Small models often copy the first sentence or add facts that are not in the text.",
    ),
    "qa": Preset(
        "qa",
        "Question answering",
        "Answer the question briefly.",
        "What is the boiling point of water at sea level in degrees Celsius?",
        SamplingParams(greedy=True, max_new_tokens=48, sentence_end_after=6),
        "Answers sound confident whether or not they are right: check them against a source.",
    ),
    "code": Preset(
        "code",
        "Code generation",
        "You are a helpful programming assistant. Answer with Python code only.",
        "Write a Python function that returns the factorial of n.",
        # ends at the closing code fence ("\n```\n"; an opening fence carries a language name) or at EOS
        SamplingParams(greedy=True, max_new_tokens=160, repetition_penalty=1.05, stop_strings=("\n```\n",)),
        "Generated code can look right and still be wrong: run and test it before trusting it.",
    ),
    "creative": Preset(
        "creative",
        "Creative writing",
        "You are a creative writer.",
        "Write the first two sentences of a story about a robot who learns to paint.",
        CREATIVE,
        "Sampling (temperature > 0) makes each seed tell a different story; greedy repeats itself.",
    ),
}

# Completion-style presets for base models (no chat template, e.g. gemma3): the prompt is fed exactly as
# typed (after <bos>) and the model continues it, so each task is written as the start of a document whose
# natural next words are the answer (a pattern to continue, a label such as "French:" or "答："). No preset ends
# in whitespace: build_prompt strips the prompt.
# Stop strings of the completion presets: a base model goes on with the next line of the pattern (another
# "Q:", another example pair), so a one-line answer ends at the line break and a function body at the
# first blank line (gemma3 then writes print(...) calls or a second function).
NL, BLANK_LINE = ("\n",), ("\n\n",)
COMPLETION_PRESETS: dict[str, dict[str, Preset]] = {
    "en": {
        "translation": Preset(
            "translation",
            "Translation",
            "",
            "English: Good morning, how are you?\nFrench: Bonjour, comment allez-vous ?\n"
            "English: The weather is nice today, so we are going to the park.\nFrench:",
            SamplingParams(
                greedy=True, max_new_tokens=48, repetition_penalty=1.1, sentence_end_after=8, stop_strings=NL
            ),
            "A base model continues the pattern: one example pair, then the line to translate. It would go on "
            "with more pairs after the answer, so generation stops at the line break.",
        ),
        "summarization": Preset(
            "summarization",
            "Summarization",
            "",
            "Text: The school library will close for renovation from June to August. During that time students "
            "can borrow books from the town library, which has extended its opening hours. The new library will "
            "have more study rooms and a computer lab.\nOne-sentence summary:",
            SamplingParams(
                greedy=True, max_new_tokens=64, repetition_penalty=1.1, sentence_end_after=12, stop_strings=NL
            ),
            "The label 'One-sentence summary:' asks for what usually follows it in documents; a 270M model often "
            "copies the first sentence.",
        ),
        "qa": Preset(
            "qa",
            "Question answering",
            "",
            "Q: What is the capital of France?\nA: Paris.\n"
            "Q: What is the boiling point of water at sea level in degrees Celsius?\nA:",
            SamplingParams(greedy=True, max_new_tokens=32, stop_strings=NL),
            "One solved example sets the format. Answers sound confident whether or not they are right.",
        ),
        "code": Preset(
            "code",
            "Code generation",
            "",
            'def factorial(n):\n    """Return n! for a non-negative integer n."""',
            SamplingParams(greedy=True, max_new_tokens=96, repetition_penalty=1.05, stop_strings=BLANK_LINE),
            "A function header and docstring: the model writes the body. Run and test it before trusting it.",
        ),
        "creative": Preset(
            "creative",
            "Creative writing",
            "",
            "Once upon a time, there was a robot who wanted to learn to paint. Every morning,",
            CREATIVE,
            "The opening of a story; sampling makes each seed tell a different one.",
        ),
    },
    "zh": {
        "translation": Preset(
            "translation",
            "翻译",
            "",
            "英文：Good morning, how are you?\n中文：早上好，你好吗？\n"
            "英文：The weather is nice today, so we are going to the park.\n中文：",
            SamplingParams(
                greedy=True, max_new_tokens=48, repetition_penalty=1.1, sentence_end_after=8, stop_strings=NL
            ),
            "基础模型会延续这个模式：先给一对例句，再给要翻译的句子。答完后它会继续编新的例句，所以生成在换行处停止。",
        ),
        "summarization": Preset(
            "summarization",
            "摘要",
            "",
            "文章：学校图书馆将从六月到八月闭馆装修。在此期间，学生可以到市图书馆借书，市图书馆也延长了开放时间。"
            "新图书馆将有更多自习室和一个计算机房。\n一句话摘要：",
            SamplingParams(
                greedy=True, max_new_tokens=64, repetition_penalty=1.1, sentence_end_after=12, stop_strings=NL
            ),
            "“一句话摘要：”这个标签让模型写出文档中通常跟在它后面的内容；小模型常常照抄第一句。",
        ),
        "qa": Preset(
            "qa",
            "问答",
            "",
            "问：法国的首都是哪里？\n答：巴黎。\n问：一年有几个月？\n答：",
            SamplingParams(greedy=True, max_new_tokens=32, stop_strings=NL),
            "一个已回答的例子定下格式。无论对错，回答听起来都很肯定：请核对。",
        ),
        "code": Preset(
            "code",
            "写代码",
            "",
            "# 用 Python 写一个函数，返回 n 的阶乘\ndef factorial(n):",
            SamplingParams(greedy=True, max_new_tokens=96, repetition_penalty=1.05, stop_strings=BLANK_LINE),
            "中文注释加函数头：模型续写函数体。生成的代码可能看起来对却是错的，请运行测试。",
        ),
        "creative": Preset(
            "creative",
            "创作",
            "",
            "从前，有一个想学画画的机器人。每天早上，",
            CREATIVE,
            "故事的开头；采样（温度 > 0）让每个种子讲出不同的故事。",
        ),
    },
}
# Fill-in examples for candidate scoring with a causal model: (text with one [MASK], candidates).
FILL_EXAMPLES: dict[str, tuple[str, str]] = {
    "en": ("This is a [MASK] sentence.", ""),
    "zh": ("中国的首都是[MASK]。", "北京，上海，广州，东京"),
}
FILL_MASK = "fill_mask"
MODES = tuple(PRESETS) + (FILL_MASK,)  # the page's `preset` deep-link values
DEFAULT_MODE = "translation"


def presets_for(chat_template: bool, lang: str = "en") -> dict[str, Preset]:
    """The presets a model should start from: chat-style (system + user, rendered by the chat template) for an
    instruct model, completion-style for a base model, in the UI language where one exists."""
    if chat_template:
        return PRESETS
    return COMPLETION_PRESETS.get(lang, COMPLETION_PRESETS["en"])


def fill_example(causal: bool, lang: str = "en") -> tuple[str, str]:
    """(text, candidates) for the fill-in box; the Chinese example only where candidates are scored (causal LMs)."""
    if not causal:
        return FILL_EXAMPLES["en"]
    return FILL_EXAMPLES.get(lang, FILL_EXAMPLES["en"])


def get_preset(key: str) -> Preset:
    if key not in PRESETS:
        raise InputError(f"Unknown preset '{key}'. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[key]
