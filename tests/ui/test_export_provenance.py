"""Every export of the page helpers carries provenance and is valid (issue 21, item 5): the HTML figure
has a provenance block and a visible footer, the CSV its ``# key: value`` header, the JSON no bare NaN."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import ui.common as common
from llmviz.report import csv_export, html_export, json_export, read_html_provenance

ROOT = Path(__file__).resolve().parents[2]


# `sink`: tests/ui/conftest.py


def _strict(text: str):
    def no_constant(name):
        raise ValueError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=no_constant)


def test_every_file_of_export_buttons_names_the_model_and_the_inputs(sink):
    df = pd.DataFrame({"layer": [0, 1], "p": [0.5, float("nan")]})
    fig = go.Figure(go.Heatmap(z=[[1, np.nan]]))
    common.export_buttons("k", fig=fig, data=df, stem="lens", meta={"model": "smollm2", "text": "Paris is"})
    page = sink["lens.html"]()
    prov = read_html_provenance(page)
    assert prov["parameters"] == {"model": "smollm2", "text": "Paris is"} and "torch" in prov["versions"]
    assert "text = Paris is" in page and "model = smollm2" in page  # the visible footer
    csv = sink["lens.csv"]()
    header = [line for line in csv.splitlines() if line.startswith("#")]
    assert any(line.startswith("# parameters:") and "smollm2" in line for line in header)
    assert any(line.startswith("# created:") for line in header)
    back = pd.read_csv(io.StringIO(csv), comment="#")
    assert back["layer"].tolist() == [0, 1] and np.isnan(back["p"][1])
    doc = _strict(sink["lens.json"]())  # NaN written as null, not as a bare NaN
    assert doc["data"][1]["p"] is None and doc["provenance"]["parameters"]["text"] == "Paris is"


def test_the_session_model_is_added_when_meta_has_none(sink, monkeypatch):
    monkeypatch.setattr(common.st, "session_state", {common.MODEL_KEY: "gemma3"})
    monkeypatch.setattr(common, "in_session", lambda: True)  # as in a browser session
    common.export_buttons("k", data=pd.DataFrame({"a": [1]}), stem="d")
    assert _strict(sink["d.json"]())["provenance"]["parameters"]["model"] == "gemma3"


def test_json_export_turns_every_non_finite_number_into_null():
    doc = _strict(json_export({"a": [np.float32("nan"), float("inf"), -np.inf, np.int64(3)], "b": np.array([1.5])}))
    assert doc["data"] == {"a": [None, None, None, 3], "b": [1.5]}


def test_html_provenance_cannot_close_its_script_early():
    page = html_export(go.Figure(), {"text": "</script><script>alert(1)</script>"})
    assert "<script>alert(1)" not in page
    assert read_html_provenance(page)["parameters"]["text"] == "</script><script>alert(1)</script>"


def test_csv_export_neutralises_formulas_in_header_and_cells():
    csv = csv_export(pd.DataFrame({"t": ["=1+1"]}), {"text": "a, =cmd"})
    assert "'=1+1" in csv and "' =cmd" in csv


def test_no_page_writes_a_figure_html_of_its_own():
    """Figures are exported through ui.common.export_buttons (provenance); no view calls fig.to_html."""
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for d in ("pages", "ui")
        for p in (ROOT / d).rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.to_html\(", line)
    ]
    assert offenders == []
