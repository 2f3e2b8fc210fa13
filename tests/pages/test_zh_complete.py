"""中文 completeness (issue 13): every page of app.PAGES rendered in Chinese shows no English words
outside a short allowlist — in the text elements and widget labels/options the user reads.

Allowlist (justified): model ids and model families (names), units and file formats (CSV, JSON, PNG,
HTML, GGUF), standard method/metric acronyms that Chinese texts also write in Latin letters
(WEAT, SEAT, BERT, RoPE, MLM, …), math symbols and code identifiers (softmax, logit), the language
switch's own name "English", and text inside code spans / the user's own example text.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.apptest_util import APP, assert_ok
from ui.common import MODEL_KEY

ALLOW = {
    # model ids / families / libraries (names are not translated)
    "minilm",
    "smollm2",
    "gemma3",
    "gemma",
    "smollm",
    "llama",
    "bert",
    "gpt",
    "bertviz",
    "transformers",
    "sentence",
    "all",
    "instruct",
    "base",
    "hugging",
    "face",
    "safetensors",
    "gguf",
    "pytorch",
    "torch",
    "streamlit",
    "plotly",
    "crows",
    "pairs",
    "stereoset",
    "chatgpt",
    "openai",
    "google",
    "meta",
    "english",
    "wikipedia",
    "tinystories",
    "stories",
    "all-minilm-l",
    "m-instruct",
    "llmviz",
    # the language switch names both languages; an English term glossed in brackets after the Chinese
    "language",
    "token",
    "tokens",
    "fill-mask",
    "transformer",
    "lens",
    "dropout",
    "epoch",
    # cited authors and data-set names
    "blodgett",
    "goldfarb-tarrant",
    "seshadri",
    "crows-pairs",
    # the formula of a similarity score: cos(mean-pooled A, mean-pooled B)
    "mean-pooled",
    # formats, units
    "csv",
    "json",
    "png",
    "html",
    "npz",
    "zip",
    "cpu",
    "cuda",
    "auto",
    "gpu",
    "params",
    # method / metric acronyms written in Latin letters in Chinese texts too
    "weat",
    "seat",
    "rope",
    "mlm",
    "nsp",
    "pca",
    "knn",
    "pll",
    "kl",
    "ig",
    "dla",
    "lm",
    "llm",
    "llms",
    "nlp",
    "softmax",
    "logit",
    "logits",
    "argmax",
    "relu",
    "gelu",
    "silu",
    "rmsnorm",
    "layernorm",
    "concat",
    "multihead",
    "attention",
    "kv",
    "mask",
    "cls",
    "sep",
    "pad",
    "bos",
    "eos",
    "unk",
    "gqa",
    "mlp",
    "ffn",
    "spearman",
    "cohen",
    "kurita",
    "bolukbasi",
    "shap",
    "lime",
    "sin",
    "cos",
    "exp",
    "log",
    "max",
    "min",
    "top",
    "theta",
    "pos",
    "model",
    "dim",
    "sqrt",
    "len",
    "rollout",
    "mathrm",
    "frac",
    "left",
    "right",
    "quad",
}
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")
CODE = re.compile(r"`[^`]*`|\$[^$]*\$|https?://\S+|\[[A-Z]+\]|\{[^}]*\}|\([^()]*→[^()]*\)|'[^']*'")

PAGES = [p for p in ("home", "playground", "attention", "positional", "bias", "explain", "training", "intervene")]


def _page_files() -> list[tuple[str, str]]:
    from ui.registry import PAGES as REGISTRY

    return [(p.file, p.url) for p in REGISTRY]


def visible_strings(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in (
        "button",
        "selectbox",
        "radio",
        "segmented_control",
        "slider",
        "number_input",
        "text_input",
        "text_area",
        "toggle",
        "checkbox",
        "multiselect",
        "select_slider",
        "metric",
        "expander",
        "tabs",
    ):
        for w in getattr(at, kind, []):
            label = getattr(w, "label", None)
            if label:
                out.append(str(label))
            for opt in getattr(w, "options", None) or []:
                out.append(str(opt))
    return out


def figure_strings(spec: dict) -> list[str]:
    """What a reader sees in a plotly figure: titles, axis/legend/colour-bar titles, trace names,
    hover templates, annotations."""
    out = []
    lay = spec.get("layout", {})

    def title(obj):
        tt = (obj or {}).get("title")
        return tt.get("text") if isinstance(tt, dict) else tt

    out.append(title(lay))
    out += [title(v) for k, v in lay.items() if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)]
    out.append(title(lay.get("legend")))
    out.append(title((lay.get("coloraxis") or {}).get("colorbar")))
    out += [a.get("text") for a in lay.get("annotations", [])]
    for tr in spec.get("data", []):
        out += [
            tr.get("name"),
            tr.get("hovertemplate"),
            title(tr.get("colorbar")),
            title((tr.get("marker") or {}).get("colorbar")),
        ]
    return [re.sub(r"%\{[^}]*\}|<[^>]+>", " ", s) for s in out if isinstance(s, str)]


def page_figures(at: AppTest) -> list[dict]:
    import json

    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def english_words(strings: list[str]) -> list[str]:
    found = []
    for s in strings:
        s = CODE.sub(" ", s)
        s = s.replace("\\", "")  # markdown escapes (ui.common.md_escape)
        found += [w for w in WORD.findall(s) if len(w.strip("'’-")) > 2 and w.lower().strip("'’-") not in ALLOW]
    return found


@pytest.mark.parametrize("page_file,url", _page_files())
def test_page_in_chinese_has_no_english(page_file, url, tiny_encoder_dir):
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.session_state[MODEL_KEY] = "minilm"
    at.query_params["lang"] = "zh"
    at.run()
    if page_file != "pages/home.py":
        at.switch_page(page_file)
        at.run()
    assert_ok(at)
    strings = visible_strings(at) + [s for f in page_figures(at) for s in figure_strings(f)]
    words = english_words(strings)
    print(
        {
            "page": url,
            "english_words": len(words),
            "sample": sorted(set(words))[:40],
            "strings": sorted({s[:90] for s in strings if english_words([s])}),
        }
    )
    assert not words, (url, sorted(set(words)))
