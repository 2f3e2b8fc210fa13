"""Offline bertviz payload/escaping, plotly figure builders and the exports."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from llmviz.attention import extract as A
from llmviz.attention.export import long_frame, stats_frame, to_json, to_npz
from llmviz.errors import InputError
from llmviz.viz import attention as V
from llmviz.viz import bertviz_offline as B

HOSTILE = [
    "[CLS]",
    "</script><script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=2>",
    '"quoted"',
    "back\\slash",
    "<!--",
    "שלום",
    "🙂",
    "[SEP]",
]


def _random_attention(layers=2, heads=3, t=len(HOSTILE), seed=0):  # noqa: B008 (a constant, computed once)
    rng = np.random.default_rng(seed)
    a = rng.random((layers, heads, t, t)).astype(np.float32)
    return a / a.sum(-1, keepdims=True)


def _params(fragment: str) -> dict:
    m = re.search(r"llmvizDecode\((\{.*?\})\)", fragment, flags=re.S)
    return json.loads(m.group(1))


def test_fragment_escapes_tokens_and_round_trips_weights():
    att = _random_attention()
    frag = B.view_fragment(HOSTILE, att, "head")
    # inside <script> only "</script" and "<!--" can break out; the browser test shows nothing runs
    assert "</script><script>" not in frag and "<!--" not in frag
    assert frag.lower().count("</script") == 1  # only the tag closing our own script
    assert "cdnjs" not in frag and "require.config" not in frag  # the CDN paths are stripped
    p = _params(frag)
    d = p["attention"][0]
    assert d["left_text"] == HOSTILE  # JSON decoding gives back the exact strings
    decoded = np.array(d["attn"]) / p["scale"]
    assert np.abs(decoded - att).max() <= 0.5 / p["scale"] + 1e-7  # rounded to 3 decimals


def test_fragment_layer_and_head_selection_and_pairs():
    att = _random_attention(layers=4, heads=5)
    p = _params(B.view_fragment(HOSTILE, att, "model", layers=[1, 3], heads=[0, 4]))
    assert np.array(p["attention"][0]["attn"]).shape == (2, 2, len(HOSTILE), len(HOSTILE))
    assert p["include_layers"] == [1, 3] and p["include_heads"] == [0, 4] and p["total_heads"] == 2
    np.testing.assert_allclose(np.array(p["attention"][0]["attn"])[1, 1] / 1000, att[3, 4], atol=5e-4)
    frag = B.view_fragment(HOSTILE, att, "head", sentence_b_start=4, layer=2)
    assert 'id="filter"' in frag and _params(frag)["sentence_b_start"] == 4 and _params(frag)["layer"] == 2
    with pytest.raises(InputError):
        B.view_fragment(HOSTILE, att, "neuron")
    with pytest.raises(InputError):
        B.view_fragment(HOSTILE[:3], att)
    with pytest.raises(InputError):
        B.view_fragment(HOSTILE, att, layers=[9])


def test_vendored_files_are_pinned_and_inlined_once():
    B.verify_vendored()
    manifest = B.vendored_manifest()["files"]
    assert manifest["d3/d3.min.js"]["version"] == "5.7.0"
    for entry in manifest.values():
        assert (B.STATIC / entry["license_file"]).is_file()
    doc = B.standalone_html(
        [B.view_fragment(HOSTILE, _random_attention(), "head"), B.view_fragment(HOSTILE, _random_attention(), "model")]
    )
    assert doc.count("d3/d3.min.js (vendored") == 1
    assert not re.search(r"""src\s*=\s*["']?https?:""", doc)
    assert "default-src 'none'" in doc  # CSP: the document may not fetch anything


def test_model_view_defaults_to_every_layer_within_a_line_budget():
    # issue 13: for smollm2 (30 layers) the model view showed only layer 0
    for n_layers in (1, 6, 12, 13, 30):
        assert B.default_layers("model", n_layers, layer=4) == list(range(n_layers))
    assert B.default_layers("head", 6, layer=4) == list(range(6))
    assert B.default_layers("head", 30, layer=29) == [29]  # one layer at a time in the head view
    for layers, heads in ((6, 12), (30, 9), (18, 4), (1, 1)):
        n = B.view_token_limit("model", layers, heads)
        assert n <= B.MAX_VIEW_TOKENS
        assert layers * heads * n * n <= B.MAX_MODEL_VIEW_LINES  # one SVG line per token pair per thumbnail
        assert n == B.MAX_VIEW_TOKENS or layers * heads * (n + 1) ** 2 > B.MAX_MODEL_VIEW_LINES  # the most that fit
    assert B.view_token_limit("model", 30, 9) == 20 and B.view_token_limit("head", 30, 9) == B.MAX_VIEW_TOKENS


def test_model_view_svg_shrinks_to_its_frame():
    # issue 13: bertviz draws a fixed 970 px SVG (978 px with the body margin) that a 940 px frame cut
    frag = B.view_fragment(HOSTILE, _random_attention(), "model")
    assert '.attr("viewBox", "0 0 " + DIV_WIDTH + " " + config.divHeight)' in frag
    assert re.search(r'<style>\.llmviz-bertviz\[data-view="model"\] svg\{max-width:100%;height:auto;\}</style>', frag)
    assert "viewBox" not in B.view_fragment(HOSTILE, _random_attention(), "head")  # the head view is 100% wide


def test_payload_ratio_against_stock_bertviz(minilm):
    torch = pytest.importorskip("torch")
    bertviz = pytest.importorskip("bertviz")
    r = A.extract_attention(minilm, "The quick brown fox jumps over the lazy dog near the bank today again")
    assert len(r.tokens) == 16
    stock = bertviz.head_view([torch.tensor(a)[None] for a in r.attention], r.tokens, html_action="return").data
    ours = B.view_fragment(r.tokens, r.attention, "head")
    assert len(ours) <= 0.25 * len(stock)


def test_plotly_labels_are_escaped_and_unique_positions():
    att = _random_attention()
    fig = V.attention_heatmap(HOSTILE, att[0, 0], "t")
    ticks = fig.layout.xaxis.ticktext
    assert "&lt;img src=x onerror=window.__xss=2&gt;" in ticks and not any("<img" in t for t in ticks)
    assert list(fig.layout.xaxis.tickvals) == list(range(len(HOSTILE)))
    small = V.layer_small_multiples(HOSTILE, att[1], 1)
    assert len(small.data) == att.shape[1]
    stats = A.head_statistics(att, np.zeros(len(HOSTILE), bool))
    sfig = V.statistic_heatmap(stats["entropy"], "entropy", selected=(1, 2))
    np.testing.assert_allclose(sfig.data[0].z, stats["entropy"])
    assert len(sfig.data[1].x) == att.shape[0] * att.shape[1]  # one clickable marker per head
    m = V.matrix_heatmap(np.array([[0.0, -np.inf], [1.0, 2.0]]), "masked")
    assert np.isnan(m.data[0].z[0][1])
    nf = V.neuron_figure(
        HOSTILE, np.ones((len(HOSTILE), 4)), np.zeros(len(HOSTILE)), np.full(len(HOSTILE), 1 / len(HOSTILE)), HOSTILE[1]
    )
    assert "<script>" not in nf.layout.title.text


def test_exports_round_trip(tiny_mlm):
    r = A.extract_attention(tiny_mlm, "a tiny sentence")
    stats = A.head_statistics(r.attention, r.special_mask)
    with np.load(io.BytesIO(to_npz(r, stats)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["attention"], r.attention)
        assert z["tokens"].tolist() == r.tokens
        np.testing.assert_array_equal(z["stat_sink"], stats["sink"])
        assert json.loads(str(z["provenance"]))["model"]["model_id"] == tiny_mlm.facts.model_id
    doc = json.loads(to_json(r, stats))
    assert doc["dims"] == ["layer", "head", "query", "key"]
    np.testing.assert_allclose(doc["attention"], r.attention, atol=1e-6)
    assert doc["provenance"]["parameters"]["text"] == "a tiny sentence"
    frame = long_frame(r, [1])
    t = len(r.tokens)
    assert len(frame) == r.n_heads * t * t
    row = frame[(frame["head"] == 2) & (frame["query_index"] == 1) & (frame["key_index"] == 3)].iloc[0]
    assert row.weight == pytest.approx(float(r.attention[1, 2, 1, 3]))
    assert row.query_token == r.tokens[1] and row.key_token == r.tokens[3]
    one = long_frame(r, [0], [3])
    assert len(one) == t * t and set(one["head"]) == {3}
    np.testing.assert_allclose(one["weight"].to_numpy().reshape(t, t), r.attention[0, 3], atol=1e-7)
    sf = stats_frame(stats)
    assert len(sf) == r.n_layers * r.n_heads
    assert sf.loc[(sf["layer"] == 1) & (sf["head"] == 3), "entropy"].item() == pytest.approx(
        float(stats["entropy"][1, 3])
    )
