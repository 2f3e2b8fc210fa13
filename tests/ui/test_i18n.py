"""Catalogues: every llmviz/catalogues/<lang>/*.json file has the same keys in every language, no empty text,
the same {placeholders}; every literal t("page.key") in the code exists; t() falls back and marks
missing keys."""

import ast
import json
import re
import string
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llmviz.models.loading import KINDS
from ui.i18n import LANGS, MISSING
from ui.learn_content import HOME_SECTIONS
from ui.registry import PAGES

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "llmviz" / "catalogues"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _files(lang):
    return sorted(p.name for p in (I18N / lang).glob("*.json"))


def _load(lang, name):
    return json.loads((I18N / lang / name).read_text(encoding="utf-8"))


def _fields(text):
    """{placeholders}; texts with LaTeX braces (never formatted) fall back to a regex."""
    try:
        return sorted({f for _, f, _, _ in string.Formatter().parse(text) if f is not None})
    except ValueError:
        return sorted(set(re.findall(r"\{([A-Za-z_]\w*)\}", text)))


def test_every_language_has_the_same_catalogue_files():
    files = {lang: _files(lang) for lang in LANGS}
    assert files["en"], "no catalogues found"
    for lang, names in files.items():
        assert names == files["en"], f"{lang}: {set(names) ^ set(files['en'])}"


@pytest.mark.parametrize("name", _files("en"))
def test_catalogue_complete_in_every_language(name):
    en = _load("en", name)
    assert isinstance(en, dict) and en
    for lang in LANGS:
        cat = _load(lang, name)
        assert set(cat) == set(en), (
            f"{lang}/{name}: missing {sorted(set(en) - set(cat))}, extra {sorted(set(cat) - set(en))}"
        )
        for key, text in cat.items():
            assert isinstance(text, str) and text.strip(), f"{lang}/{name}: empty {key!r}"
            assert MISSING[0] not in text, f"{lang}/{name}: {key!r} contains the missing-key marker"
            assert _fields(text) == _fields(en[key]), f"{lang}/{name}: placeholders of {key!r} differ from English"


@pytest.mark.parametrize("name", ["learn.json", "home.json", "app.json"])
def test_chinese_catalogue_is_chinese(name):
    """The Learn, Home and navigation texts are really translated (not English copied over)."""
    zh, en = _load("zh", name), _load("en", name)
    translated = [k for k, v in zh.items() if CJK.search(v)]
    assert len(translated) >= 0.9 * len(zh), sorted(set(zh) - set(translated))
    same = [k for k in zh if zh[k] == en[k] and len(en[k]) > 12]
    assert not same, same


def _literal_keys():
    """(file, key) of every t("page.key") call with a literal key in app.py, pages/ and ui/."""
    out = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                out.append((path.relative_to(ROOT).as_posix(), node.args[0].value))
    return out


def _exists(key):
    page, _, name = key.partition(".")
    return all((I18N / lang / f"{page}.json").is_file() and name in _load(lang, f"{page}.json") for lang in LANGS)


def test_every_literal_key_in_the_code_exists():
    keys = _literal_keys()
    assert len(keys) > 50  # the scan finds the calls (guards against a vacuous pass)
    missing = [f"{f}: {k}" for f, k in keys if not _exists(k)]
    assert not missing, missing


def test_every_computed_key_exists():
    """Keys the code builds at run time: navigation titles, Learn sections, per-kind notes."""
    computed = (
        [f"app.page_{p.url}" for p in PAGES]
        + [f"learn.section_{s}" for s in HOME_SECTIONS]
        + [f"learn.section_{s}_intro" for s in HOME_SECTIONS[1:]]
        + [f"home.probes_{k}" for k in KINDS]
        + [f"home.kind_{k}" for k in KINDS]
    )
    assert [k for k in computed if not _exists(k)] == []


def test_english_model_notes_match_the_model_layer():
    from llmviz.models.loading import PROBE_NOTES

    en = _load("en", "home.json")
    assert {k: en[f"probes_{k}"] for k in KINDS} == PROBE_NOTES


def _t_app():
    import streamlit as st

    from ui.i18n import t

    st.session_state.setdefault("lang", "en")
    st.markdown(t("app.page_attention"))
    st.markdown(t("home.model_heading", model="m1"))
    st.markdown(t("nosuchpage.title"))
    st.markdown(t("home.model_heading"))  # placeholder not filled: text shown raw
    st.markdown(t("home.model_heading", wrong="x"))  # wrong placeholder: marked, no crash


def test_t_translates_falls_back_and_marks_missing_keys():
    at = AppTest.from_function(_t_app)
    at.run()
    assert [m.value for m in at.markdown] == [
        "Attention",
        "Loaded model: m1",
        "⟦nosuchpage.title⟧",
        "Loaded model: {model}",
        "⟦home.model_heading⟧",
    ]
    at.session_state["lang"] = "zh"
    at.run()
    assert [m.value for m in at.markdown][:3] == ["注意力", "已加载模型：m1", "⟦nosuchpage.title⟧"]


def test_t_reads_the_language_from_the_url():
    def app():
        import streamlit as st

        from ui.i18n import t

        st.markdown(t("app.page_bias"))

    at = AppTest.from_function(app)
    at.query_params["lang"] = "zh"
    at.run()
    assert at.markdown[0].value == "偏见"
    at = AppTest.from_function(app)
    at.query_params["lang"] = "xx"  # unknown language: English
    at.run()
    assert at.markdown[0].value == "Bias"
