"""ui.common.export_buttons: files are built on click and carry provenance."""

import json

import pandas as pd
import plotly.graph_objects as go
import pytest

import ui.common as common


class _Col:
    def __init__(self, sink):
        self.sink = sink

    def download_button(self, label, data, file_name, mime, key, **kw):
        self.sink[file_name] = data


@pytest.fixture
def sink(monkeypatch):
    files = {}
    monkeypatch.setattr(common.st, "columns", lambda n: [_Col(files) for _ in range(n)])
    return files


def test_export_buttons_build_files_lazily_with_provenance(sink):
    df = pd.DataFrame({"token": ["<b>", "x"], "score": [0.25, 0.75]})
    fig = go.Figure(go.Bar(x=df.token, y=df.score))
    common.export_buttons("k", fig=fig, data=df, stem="demo", meta={"method": "test"})
    assert set(sink) == {"demo.html", "demo.csv", "demo.json"}
    assert all(callable(v) for v in sink.values())  # nothing built before the click
    html = sink["demo.html"]()
    assert "<html>" in html and "<script src=" not in html and len(html) > 1_000_000  # plotly.js inlined
    assert pd.read_csv(__import__("io").StringIO(sink["demo.csv"]())).equals(df)
    doc = json.loads(sink["demo.json"]())
    assert doc["data"] == df.to_dict(orient="records")
    assert doc["provenance"]["parameters"] == {"method": "test"}
    assert "torch" in doc["provenance"]["versions"]


def test_export_buttons_dict_data_json_only(sink):
    common.export_buttons("k", data={"a": [1, 2]}, stem="d")
    assert set(sink) == {"d.json"}
    assert json.loads(sink["d.json"]())["data"] == {"a": [1, 2]}
