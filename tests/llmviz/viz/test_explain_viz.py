"""Explain figures: escaped tokens, colours that follow the scores, shapes that follow the results."""

from __future__ import annotations

import re

import numpy as np

from llmviz.explain.ablation import AblationResult
from llmviz.explain.attribution import Attribution, spearman_matrix
from llmviz.viz import explain as viz

XSS = ["[CLS]", "</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "a&b", "[SEP]"]


def _res(method, scores):
    return Attribution(method, XSS, np.array(scores, float), np.array([1, 0, 0, 0, 1], bool), "logit('x')", {})


def test_token_html_escapes_and_colours_by_sign():
    results = [_res("grad_x_input", [5, 2, -1, 0.5, 9]), _res("occlusion", [0, -4, 4, 0, 0])]
    page = viz.token_html(results)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b" in page
    spans = re.findall(
        r'<span class="(tok[^"]*)" data-score="([^"]+)" style="background: rgba\((\d+),(\d+),(\d+),([\d.]+)\)"', page
    )
    assert len(spans) == 10
    # grad×input: largest |score| among non-special tokens is 2 -> alpha 1 (red); -1 -> alpha 0.5 (blue)
    assert spans[1][2:] == ("214", "39", "40", "1.000")
    assert spans[2][2:] == ("31", "119", "180", "0.500")
    assert spans[0][0] == "tok special" and spans[0][5] == "0.080"


def test_heatmaps_use_escaped_labels_and_normalised_scores():
    results = [_res("grad_x_input", [5, 2, -1, 0.5, 9]), _res("integrated_gradients", [0, 1, 2, 3, 0])]
    fig = viz.method_heatmap(results)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z[1], [0, 1 / 3, 2 / 3, 1, 0])
    assert all("<" not in x for x in fig.data[0].x)
    rho = spearman_matrix(results)
    sfig = viz.spearman_figure(results, rho)
    assert np.asarray(sfig.data[0].z).shape == (2, 2)


def test_ablation_figures_shape():
    res = AblationResult(
        tokens=["a"],
        label="log p('x')",
        base_score=-1.0,
        head_delta=np.arange(6, dtype=float).reshape(2, 3),
        layer_delta=np.array([1.0, -2.0]),
        seconds=0.1,
        batch_size=4,
    )
    fig = viz.ablation_heatmap(res)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), res.head_delta)
    assert fig.data[0].zmin == -5 and fig.data[0].zmax == 5
    assert list(viz.layer_ablation_bar(res).data[0].y) == [1.0, -2.0]
    rows = res.rows()
    assert len(rows) == 8 and rows[-1] == {"layer": 1, "head": "all", "delta": -2.0}


def test_logit_lens_figures_escape_tokens():
    from llmviz.explain.logit_lens import LogitLensResult

    probs = np.array([[0.2, 0.9], [0.5, 0.6]])
    res = LogitLensResult(
        tokens=["<b>", "x"],
        layer_names=["embed", "1"],
        top_ids=np.zeros((2, 2), int),
        top_tokens=[["<i>", "y"], ["z", "<script>"]],
        top_probs=probs,
        target_id=3,
        target_token="<u>",
        target_probs=np.array([0.1, 0.6]),
        target_ranks=np.array([7, 1]),
        last_probs=np.zeros((2, 5)),
        topk_tokens=[[], []],
        topk_probs=np.zeros((2, 0)),
        truncated=False,
        text="t",
    )
    fig = viz.logit_lens_heatmap(res)
    assert fig.data[0].text[1][1] == "&lt;script&gt;" and fig.data[0].x[0] == "0 &lt;b&gt;"
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), probs)
    line = viz.target_across_layers(res)
    assert list(line.data[1].y) == [7, 1] and "&lt;u&gt;" in line.layout.title.text
