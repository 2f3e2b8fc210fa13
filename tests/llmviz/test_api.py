"""The notebook API (issue 25): ``lv.load`` and the result views call the library the app uses, render offline
HTML, follow ``lv.set_language`` and export with provenance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import llmviz as lv
from llmviz.attention.extract import extract_attention
from llmviz.notebook import reset_plotly

ROOT = Path(__file__).resolve().parents[2]
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.I)


@pytest.fixture(scope="module")
def minilm():
    return lv.load("minilm")


def test_the_one_liner_prints_offline_html():
    code = "import llmviz as lv; print(lv.load('minilm').attention('Hello world')._repr_html_()[:200])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.startswith('<div class="llmviz-view" data-view="attention"><script>')


def test_attention_view_is_the_library_result_and_renders_the_head_view(minilm):
    v = minilm.attention("The cat sat on the mat.")
    ref = extract_attention(minilm.loaded, "The cat sat on the mat.")
    assert v.tokens == ref.tokens and np.array_equal(v.attention, ref.attention)
    html = v._repr_html_()
    assert 'class="llmviz-bertviz" data-view="head"' in html and not REMOTE_SCRIPT.search(html)
    assert "requirejs/require.js (vendored" in html
    frame = v.to_frame()
    assert len(frame) == ref.attention.size  # one row per (layer, head, query, key)
    doc = json.loads(v.to_json())
    prov = doc["provenance"]["parameters"]  # as the app's exports: model id, view, inputs
    assert (
        prov["model"] == "minilm"
        and prov["text"] == "The cat sat on the mat."
        and "torch" in doc["provenance"]["versions"]
    )


def test_plotly_js_is_inlined_once_and_figures_follow_the_language(minilm):
    reset_plotly()
    s = minilm.formula_steps("Hello world", layer=1, head=2)
    assert float(np.abs(s.weights - s.model_weights[2]).max()) < 1e-5  # recomputed = the model's weights
    first, second = s._repr_html_(), s._repr_html_()
    assert len(first) > 1_000_000 > len(second)  # plotly.js (MBs) only in the first
    pe = lv.sinusoidal(max_len=32, d_model=16)
    en = pe.figure().layout.title.text
    lv.set_language("zh")
    try:
        zh = pe.figure().layout.title.text
    finally:
        lv.set_language("en")
    assert en != zh and re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en)
    assert pe.to_frame().shape == (32, 17)


def test_runs_list_and_compare_views(tmp_path, monkeypatch):
    from llmviz.runs import store as RS

    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)
    RS.reset_engines()
    try:
        items = lambda vals: [{"key": f"k{i}", "group": "g", "value": v} for i, v in enumerate(vals)]  # noqa: E731
        a = RS.record_run("crows_pairs", "A", {"pct": 50}, items([0.0, 100.0]), data_sha256="s")
        b = RS.record_run("crows_pairs", "B", {"pct": 100}, items([100.0, 100.0]), data_sha256="s")
        listed = lv.runs.list()
        assert list(listed.to_frame()["model"]) == ["B", "A"] and 'data-view="runs"' in listed._repr_html_()
        cmp = lv.runs.compare(a, b, n_boot=200)
        assert cmp.result["overall"]["mean_diff"] == pytest.approx(50.0)
        assert list(cmp.to_frame()["diff"]) == [100.0, 0.0]
    finally:
        RS.reset_engines()


def test_user_text_in_a_table_stays_text(minilm):
    import pandas as pd

    from llmviz.notebook import frame_html

    html = frame_html(pd.DataFrame({"token": ["<img src=x onerror=alert(1)>"]}))
    assert "<img" not in html and "&lt;img" in html


def test_flow_and_qk_views_are_the_library_results(tiny_llama_dir):
    from llmviz.explain.flow import build_graph, information_flow
    from llmviz.explain.qk_attribution import qk_attribution

    m = lv.load(str(tiny_llama_dir))
    text = "the cat sat on the mat"
    v = m.flow(text, tau=0.02)
    ref = build_graph(information_flow(m.loaded, text), 0.02, True)
    assert v.graph.edges == ref.edges and len(v.to_frame()) == len(ref.edges)
    assert 'data-view="flow"' in v._repr_html_()
    q = m.qk(text, layer=1, head=0, query=4, key=2)
    ref_q = qk_attribution(m.loaded, text, 1, 0, 4, 2)
    assert q.score == pytest.approx(ref_q.score) and q.to_frame()["term"].sum() == pytest.approx(ref_q.score, abs=1e-4)


def test_attribute_passes_the_arithmetic_through(tiny_llama_dir, one_thread):
    from llmviz.errors import InputError
    from llmviz.precision import bf16_support

    m = lv.load(str(tiny_llama_dir))
    text = "the cat sat on the mat"
    exact = m.attribute(text, steps=8, batch_size=4)
    assert exact.result.params["precision"] == "exact" and exact.result.params["deviation"] is None
    with pytest.raises(InputError, match="Only integrated gradients has a fast mode"):
        m.attribute(text, method="occlusion", precision="bf16")
    ok, why = bf16_support()
    if not ok:
        pytest.skip(why)
    fast = m.attribute(text, steps=8, batch_size=4, precision="bf16")
    assert fast.result.params["precision"] == "bf16" and 0 < fast.result.params["deviation"] < 0.2
    assert json.loads(fast.to_json())["provenance"]["parameters"]["precision"] == "bf16"  # the export says so


def test_steer_passes_the_generation_precision_through(tiny_llama_dir, one_thread):
    from llmviz.interventions.steering import generations_by_alpha, steering_vector
    from llmviz.precision import int8_support

    if not int8_support()[0]:
        pytest.skip(int8_support()[1])
    m = lv.load(str(tiny_llama_dir))
    a, b = ["he said that", "he was"], ["she said that", "she was"]
    view = m.steer(a, b, 1, "the doctor said", alphas=(0.0, 4.0), max_new_tokens=4, precision="int8")
    frame = view.to_frame()
    vec = steering_vector(m.loaded, a, b, 1)
    from llmviz.generation.generate import SamplingParams

    params = SamplingParams(greedy=True, max_new_tokens=4, seed=0)
    ref = generations_by_alpha(m.loaded, "the doctor said", vec, [0.0, 4.0], params, precision="int8")
    assert list(frame["text"]) == [g.text for g in ref.generations]
    assert list(frame["top1_agreement"]) == [g.deviation.fraction for g in ref.generations]
    assert json.loads(view.to_json())["provenance"]["parameters"]["precision"] == "int8"
