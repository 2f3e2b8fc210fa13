"""SEAT suite: the loader on files in the SEAT release format, the 2,000-item bound, results vs weat_test."""

import json

import numpy as np
import pytest

from llmviz.bias import seat as SEAT
from llmviz.bias import weat as W
from llmviz.errors import InputError

SENTS_X = [
    "John is the assistant vice president of sales at an aircraft company, and is in charge of training.",
    "Paul, a lawyer, works late.",
    "Mark is an engineer, and he builds bridges.",
]
SENTS_Y = [
    "Amy is the assistant vice president of sales at an aircraft company, and is in charge of training.",
    "Sarah, a lawyer, works late.",
    "Diana is an engineer, and she builds bridges.",
]


def _write(path, sets, pretty=True):
    doc = {k: {"category": c, "examples": ex} for k, (c, ex) in sets.items()}
    path.write_text(json.dumps(doc, indent=2 if pretty else None), encoding="utf-8")
    return path


def _sets():
    return {
        "targ1": ("MaleNames", SENTS_X),
        "targ2": ("FemaleNames", SENTS_Y),
        "attr1": ("Career", ["executive", "salary", "office"]),
        "attr2": ("Family", ["home", "children", "wedding"]),
    }


def test_loader_reads_pretty_printed_files_and_folders(tmp_path):
    _write(tmp_path / "sent-weat6.jsonl", _sets())
    _write(tmp_path / "weat1.jsonl", _sets(), pretty=False)
    (tmp_path / "notes.txt").write_text("ignored")
    tests = SEAT.load_seat_tests([tmp_path])
    assert [t.name for t in tests] == ["sent-weat6", "weat1"]
    t = tests[0]
    assert t.items("targ1") == SENTS_X  # sentences with commas stay whole
    assert t.category("attr2") == "Family" and t.sizes == [3, 3, 3, 3]
    assert len(SEAT.load_seat_tests([tmp_path / "weat1.jsonl"])) == 1


def test_loader_errors(tmp_path):
    with pytest.raises(InputError, match="needs the keys"):
        SEAT.parse_seat(b'{"targ1": {"category": "x", "examples": ["a", "b"]}}', "bad.jsonl")
    with pytest.raises(InputError, match="not one JSON object"):
        SEAT.parse_seat(b'{"targ1": 1}\n{"targ2": 2}', "two.jsonl")
    with pytest.raises(InputError, match="at least 2"):
        SEAT.parse_seat(json.dumps({k: {"category": k, "examples": ["only"]} for k in SEAT.SET_KEYS}).encode(), "x")
    with pytest.raises(InputError, match="No SEAT"):
        SEAT.load_seat_tests([tmp_path / "missing"])
    big = {k: {"category": k, "examples": [f"w{i}" for i in range(SEAT.MAX_ITEMS_PER_SET + 1)]} for k in SEAT.SET_KEYS}
    with pytest.raises(InputError, match="limit is 2000"):
        SEAT.parse_seat(json.dumps(big).encode(), "big.jsonl")
    ok = {
        k: {"category": k, "examples": [f"This is sentence {i}, with a comma." for i in range(350)]}
        for k in SEAT.SET_KEYS
    }
    assert SEAT.parse_seat(json.dumps(ok).encode(), "s.jsonl").sizes == [350] * 4
    assert SEAT.MAX_ITEMS_PER_SET == 2000


def test_run_test_equals_weat_test_and_progress(tiny_encoder_dir, tmp_path, one_thread):
    from llmviz.models.loading import load_model

    enc = load_model(str(tiny_encoder_dir))
    t = SEAT.parse_seat(_write(tmp_path / "t.jsonl", _sets()).read_bytes(), "t.jsonl")
    seen = []
    entry = SEAT.run_test(enc, t, "mean", "all", progress=seen.append)
    assert sum(seen) == 12
    ref = W.weat_test(enc, SENTS_X, SENTS_Y, *[_sets()[k][1] for k in ("attr1", "attr2")], mode="weat", pooling="mean")
    assert [x["layer"] for x in entry["layers"]] == list(range(len(ref.effect_size)))
    assert [x["effect_size"] for x in entry["layers"]] == pytest.approx(ref.effect_size.tolist(), abs=1e-9)
    assert [x["p_value"] for x in entry["layers"]] == pytest.approx(ref.p_value.tolist())
    assert entry["n"] == [3, 3, 3, 3] and entry["targ1"] == "MaleNames" and entry["layers"][0]["exact"]
    last = SEAT.run_test(enc, t, "cls", "last")
    assert len(last["layers"]) == 1 and last["layers"][0]["layer"] == enc.facts.n_layers
    emb = W.embed_texts(enc, [x for k in SEAT.SET_KEYS for x in t.items(k)], "first")[-1]
    ex, ey, ea, eb = np.split(emb, [3, 6, 9])
    assert last["layers"][0]["effect_size"] == pytest.approx(W.effect_size(ex, ey, ea, eb), abs=1e-9)
    html = SEAT.html_table({"model": "m", "pooling": "mean", "tests": [entry, dict(entry, file="<b>x</b>")]})
    assert "layer 0" in html and "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_stars():
    assert [SEAT.stars(p) for p in (0.0005, 0.005, 0.03, 0.2)] == ["***", "**", "*", ""]


def test_html_caption_has_no_empty_parts():
    """The caption read "Pooling mean; . Cells:" when the report had no date."""
    entry = {"file": "t", "n": [1, 1, 1, 1], "layers": [{"layer": 0, "effect_size": 0.5, "p_value": 0.2}]}
    base = {"model": "m", "tests": [entry]}
    assert "<p>Pooling mean. Cells:" in SEAT.html_table({**base, "pooling": "mean"})
    assert "<p>Pooling mean; 2026-01-02. Cells:" in SEAT.html_table({**base, "pooling": "mean", "date": "2026-01-02"})
    assert "<p>Cells:" in SEAT.html_table({**base, "date": " "})
    for page in (SEAT.html_table({**base, "pooling": "mean"}), SEAT.html_table(base)):
        assert "; ." not in page and "<p>. " not in page and "Pooling ;" not in page
