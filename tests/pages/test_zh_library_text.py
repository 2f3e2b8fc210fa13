"""English that the library writes (for the CLI) shown in the reader's language (issue 21, "What users hit" 1):
the Playground's chat-preset notes, the positional ablation options, the Explain target label, the
attention formula's step titles and the Runs warning about different data files. The library keeps its
English text (the catalogue's English is the same text); the pages read catalogue entries."""

from __future__ import annotations

import re

import numpy as np

from llmviz.explain.targets import target_label
from llmviz.generation.presets import PRESETS
from llmviz.i18n import catalogue, labels
from llmviz.positional.ablation import ENCODER_MODES
from llmviz.runs import store as RS
from tests.fixtures.apptest_util import assert_ok, open_page, texts

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{2,}")


def _latin(text: str, allow=()) -> list[str]:
    return [w for w in LATIN.findall(text) if w not in allow]


# ---------------------------------------------------------------- Playground: chat-preset notes
def test_chat_preset_notes_are_catalogue_entries():
    en, zh = catalogue("en", "playground"), catalogue("zh", "playground")
    for mode, preset in PRESETS.items():
        assert en[f"note_{mode}"] == preset.note  # one text for the CLI and the English page
        assert CJK.search(zh[f"note_{mode}"]) and not _latin(zh[f"note_{mode}"]), mode


def test_playground_caption_in_chinese(smollm2):
    at = open_page("pages/playground.py", "smollm2", query={"preset": "creative", "lang": "zh"})
    assert_ok(at)
    captions = [str(c.value) for c in at.caption]
    assert catalogue("zh", "playground")["note_creative"] in captions
    assert not [c for c in captions if "tell a different story" in c]


# ---------------------------------------------------------------- Positional: ablation options
def test_ablation_options_are_catalogue_entries():
    for mode, text in ENCODER_MODES.items():
        assert catalogue("en", "positional")[f"ablation_mode_{mode}"] == text
        assert CJK.search(catalogue("zh", "positional")[f"ablation_mode_{mode}"])


def test_ablation_options_in_chinese(minilm):
    at = open_page("pages/positional.py", "minilm", query={"section": "ablation", "lang": "zh"})
    assert_ok(at)
    options = list(at.radio(key="pos_mode").options)
    assert options == [catalogue("zh", "positional")[f"ablation_mode_{m}"] for m in ENCODER_MODES]
    assert not [o for o in options if _latin(o)]


# ---------------------------------------------------------------- Explain: the target label
def test_target_label_english_unchanged_and_chinese():
    top = {"fn": "logit", "token": "\\n", "contrast": None, "position": 7, "top": True, "splits": []}
    assert target_label(top, labels("en")) == "logit('\\n') at position 7 (top prediction)"
    zh = target_label(top, labels("zh"))
    assert zh == "logit('\\n')，位置 7（最可能的预测）" and _latin(zh) == ["logit"]
    split = {**top, "fn": "log p", "token": "猫", "top": False, "splits": [{"raw": "猫咪", "pieces": ["猫", "咪"]}]}
    assert target_label(split, labels("en")) == (
        "log p('猫') at position 7 — '猫咪' is 2 tokens (猫 | 咪); only the first, '猫', is explained."
    )
    assert _latin(target_label(split, labels("zh"))) == ["log"]
    contrast = {**top, "contrast": "狗", "top": False}
    assert target_label(contrast, labels("en")) == "logit('\\n') − logit('狗') at position 7"
    assert target_label({"kind": "similarity"}, labels("en")) == "cos(mean-pooled A, mean-pooled B)"
    assert _latin(target_label({"kind": "similarity"}, labels("zh"))) == ["cos"]


def test_explain_target_in_chinese(tiny_llama_dir):
    at = open_page("pages/explain.py", str(tiny_llama_dir), query={"text": "the doctor said that", "lang": "zh"})
    assert_ok(at)
    shown = [line for line in texts(at).splitlines() if "logit(" in line]
    assert shown and "（最可能的预测）" in shown[0] and "at position" not in texts(at)


# ---------------------------------------------------------------- Attention: formula step titles
def test_formula_step_titles_in_chinese(tiny_gemma3_dir):
    at = open_page("pages/attention.py", str(tiny_gemma3_dir), query={"view": "formula", "lang": "zh"})
    assert_ok(at)
    titles = [str(m.value) for m in at.markdown if re.fullmatch(r"\*\*\d+\. .*\*\*", str(m.value))]
    assert len(titles) >= 15
    allow = {"RMSNorm", "QK", "RoPE", "concat"}  # names of the operations, as Chinese texts write them
    assert [t for t in titles if _latin(t, allow)] == []
    assert "**2. 第 0 个头的 W_Q 切片**" in titles and "**7. RMSNorm 之后的 Q（QK 归一化）**" in titles


# ---------------------------------------------------------------- Runs: the different-data warning
def _items(values):
    return [{"key": f"k{i}", "group": "g", "value": float(v)} for i, v in enumerate(values)]


def test_runs_warning_has_a_code_and_shows_in_chinese(store, tiny_encoder_dir):
    a = RS.record_run("crows_pairs", "A", {}, _items(np.zeros(4)), data_sha256="a" * 64)
    b = RS.record_run("crows_pairs", "B", {}, _items(np.ones(4)), data_sha256="b" * 64)
    cmp = RS.compare_runs(a, b, n_boot=50)
    assert cmp["note_codes"] == ["different_data"]
    assert cmp["notes"] == [catalogue("en", "benchmarks")["runs_note_different_data"]]  # the CLI's text
    at = open_page("pages/bias.py", str(tiny_encoder_dir), query={"section": "runs", "lang": "zh"})
    assert_ok(at)
    warnings = [str(w.value) for w in at.warning]
    assert catalogue("zh", "benchmarks")["runs_note_different_data"] in warnings
    assert "different data files" not in texts(at)


def test_runs_in_different_arithmetic_are_compared_with_a_note(store):
    """A fast-mode run against an exact one: the comparison says part of the difference is rounding."""
    sha = "a" * 64
    a = RS.record_run("crows_pairs", "A", {}, _items(np.zeros(4)), data_sha256=sha, parameters={"page": "bias"})
    b = RS.record_run("crows_pairs", "A", {}, _items(np.ones(4)), data_sha256=sha, parameters={"precision": "bf16"})
    c = RS.record_run("crows_pairs", "A", {}, _items(np.ones(4)), data_sha256=sha, parameters={"precision": "exact"})
    cmp = RS.compare_runs(a, b, n_boot=50)
    assert cmp["note_codes"] == ["different_precision"]
    assert cmp["notes"] == [catalogue("en", "benchmarks")["runs_note_different_precision"]]
    assert RS.compare_runs(a, c, n_boot=50)["note_codes"] == []  # no key recorded = exact
