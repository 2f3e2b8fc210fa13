"""llmviz.i18n: the streamlit-free catalogue reader behind ui.i18n.t and the figure builders' labels."""

import subprocess
import sys

import pytest

from llmviz import i18n


def test_label_function_fills_fields_and_keeps_plotly_placeholders(monkeypatch):
    cats = {
        ("en", "figures"): {"a": "layer {layer}, head %{x}<br>Δ = %{z:.4f}", "only_en": "English only"},
        ("zh", "figures"): {"a": "层 {layer}，头 %{x}<br>Δ = %{z:.4f}"},
    }
    monkeypatch.setattr(i18n, "catalogue", lambda lang, page: cats.get((lang, page), {}))
    zh = i18n.labels("zh")
    assert zh("a", layer=3) == "层 3，头 %{x}<br>Δ = %{z:.4f}"
    assert zh("a") == "层 {layer}，头 %{x}<br>Δ = %{z:.4f}"  # no fields given: the text as written
    assert zh("only_en") == "English only"  # missing in zh: the English text
    assert zh("nowhere") == "⟦figures.nowhere⟧"  # missing everywhere: a visible marker
    assert zh("a", other=1) == "⟦figures.a⟧"  # a field the caller did not fill
    assert zh.get("nowhere", "fallback") == "fallback" and zh.has("only_en") and not zh.has("nowhere")
    assert i18n.labels("xx").lang == "en"  # an unknown language reads English


def test_default_language_for_notebooks():
    assert i18n.labels().lang == "en"
    try:
        i18n.set_language("zh")
        assert i18n.labels().lang == "zh" and i18n.resolve(None).lang == "zh"
        assert i18n.resolve(i18n.labels("en")).lang == "en"  # labels passed in win
        with pytest.raises(ValueError):
            i18n.set_language("fr")
    finally:
        i18n.set_language("en")


def test_ui_reads_catalogues_through_the_pure_module():
    from ui import i18n as ui_i18n

    assert ui_i18n.catalogue is i18n.catalogue and ui_i18n.catalogue("zh", "attention")


def test_the_module_does_not_import_streamlit():
    code = "import sys, llmviz.i18n, llmviz.viz.positional; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
