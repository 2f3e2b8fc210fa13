"""ui.common.export_buttons: files are built on click and carry provenance."""

import json

import pandas as pd
import plotly.graph_objects as go

import ui.common as common

# `sink`: tests/ui/conftest.py


def test_export_buttons_build_files_lazily_with_provenance(sink):
    df = pd.DataFrame({"token": ["<b>", "x"], "score": [0.25, 0.75]})
    fig = go.Figure(go.Bar(x=df.token, y=df.score))
    common.export_buttons("k", fig=fig, data=df, stem="demo", meta={"method": "test"})
    assert set(sink) == {"demo.html", "demo.csv", "demo.json"}
    assert all(callable(v) for v in sink.values())  # nothing built before the click
    html = sink["demo.html"]()
    assert "<html>" in html and "<script src=" not in html and len(html) > 1_000_000  # plotly.js inlined
    assert pd.read_csv(__import__("io").StringIO(sink["demo.csv"]()), comment="#").equals(df)
    doc = json.loads(sink["demo.json"]())
    assert doc["data"] == df.to_dict(orient="records")
    assert doc["provenance"]["parameters"] == {"method": "test"}
    assert "torch" in doc["provenance"]["versions"]


def test_export_buttons_dict_data_json_only(sink):
    common.export_buttons("k", data={"a": [1, 2]}, stem="d")
    assert set(sink) == {"d.json"}
    assert json.loads(sink["d.json"]())["data"] == {"a": [1, 2]}


# ---------------------------------------------------------------- file names from the data (issue 13)
def test_export_name_is_built_from_the_data_not_a_title():
    from llmviz.report import export_name

    assert export_name("crows_pairs_anonymized.csv", "smollm2", "by-category") == (
        "crows-pairs-anonymized-csv_smollm2_by-category"
    )
    assert export_name("crows-pairs", "smollm2", "by category") == "crows-pairs_smollm2_by-category"
    assert export_name("starter", "/home/me/models/Tiny Llama/", "pair 3") == "starter_tiny-llama_pair-3"
    assert export_name("weat", "google/gemma-3-270m", None, "", "layer 4") == "weat_google-gemma-3-270m_layer-4"
    assert export_name("性别", "minilm") == "性别_minilm"  # a data name in Chinese stays readable
    assert export_name('a<b>:"c"|?*', "..", "") == "a-b-c"  # nothing a file system refuses
    assert export_name() == export_name("", None) == "llmviz"
    long = export_name("x" * 300, "smollm2")
    assert len(long) <= 120 and long.endswith("_smollm2")  # the parts after a long one survive


def test_export_buttons_names_files_by_the_given_stem_made_safe(sink):
    fig = go.Figure(go.Bar(x=[1], y=[2]))
    common.export_buttons("k", fig=fig, data=pd.DataFrame({"a": [1]}), stem="bias pairs/starter")
    assert set(sink) == {"bias-pairs-starter.html", "bias-pairs-starter.csv", "bias-pairs-starter.json"}


def test_exported_html_keeps_long_category_labels(sink):
    fig = go.Figure(go.Bar(x=[50], y=["nationality (n=8)"], orientation="h"))
    common.export_buttons("k", fig=fig, stem="d", data=None)
    html = sink["d.html"]()
    call = html[html.rindex("Plotly.newPlot(") :].replace(" ", "")
    assert '"automargin":true' in call.split('"yaxis"', 1)[1][:200]


def test_plot_names_the_png_after_the_data(monkeypatch):
    seen = {}
    monkeypatch.setattr(common.st, "plotly_chart", lambda fig, key=None, config=None, **kw: seen.update(config=config))
    fig = go.Figure(go.Bar(x=[1], y=[2]))
    fig.update_layout(title="% of pairs where the more-stereotypical sentence scores higher (95 % CI)")
    common.plot(fig, key="a", export_name="crows-pairs_smollm2_by-category")
    assert seen["config"]["toImageButtonOptions"] == {
        "format": "png",
        "scale": 2,
        "filename": "crows-pairs_smollm2_by-category",
    }
    assert "filename" not in common.PLOTLY_CONFIG["toImageButtonOptions"]  # the shared default is untouched
    common.plot(fig, key="b")
    assert seen["config"] == common.PLOTLY_CONFIG  # no name given: as before
