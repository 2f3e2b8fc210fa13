"""Figures in the user's language and readable (issue 13): llmviz.viz.labels translates every label
a reader sees; mitigation puts d and accuracy on separate axes."""

from types import SimpleNamespace

import plotly.graph_objects as go

from llmviz.viz.bias import mitigation_bars
from llmviz.viz.labels import translate_figure, translate_text
from ui.i18n import catalogue


def test_translate_replaces_whole_phrases_longest_first_and_keeps_placeholders():
    phrases = {"layer": "层", "head": "头", "training loss": "训练损失", "loss": "损失"}
    assert translate_text("layer %{y}, head %{x}<br>Δ = %{z:.4f}", phrases) == "层 %{y}, 头 %{x}<br>Δ = %{z:.4f}"
    assert translate_text("training loss", phrases) == "训练损失"  # not 'training 损失'
    assert translate_text("heads", phrases) == "heads"  # whole words only
    fig = go.Figure(go.Heatmap(z=[[1]], colorbar={"title": {"text": "loss"}}, name="training loss"))
    fig.update_layout(title="layer", xaxis_title="head", legend_title_text="loss")
    fig.add_annotation(text="head")
    out = translate_figure(fig, phrases)
    assert (
        out.layout.title.text,
        out.layout.xaxis.title.text,
        out.layout.legend.title.text,
        out.layout.annotations[0].text,
        out.data[0].name,
        out.data[0].colorbar.title.text,
    ) == ("层", "头", "损失", "头", "训练损失", "损失")
    assert fig.layout.title.text == "layer"  # the original is untouched


def test_every_figure_phrase_has_a_chinese_translation():
    en, zh = catalogue("en", "figures"), catalogue("zh", "figures")
    assert set(en) == set(zh) and all(k == v for k, v in en.items())
    assert all(any("\u4e00" <= c <= "\u9fff" for c in v) or v.isascii() for v in zh.values())
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in v) for v in zh.values()) >= 0.9 * len(zh)


def test_mitigation_d_and_accuracy_on_separate_axes():
    res = SimpleNamespace(effect_before=1.6, effect_after=0.2, recover_before=0.9, recover_after=0.55, layer=3)
    fig = mitigation_bars(res)
    axes = {tr.yaxis for tr in fig.data}
    assert axes == {"y", "y2"}
    d_vals = [tr.y[0] for tr in fig.data if tr.yaxis == "y"]
    acc_vals = [tr.y[0] for tr in fig.data if tr.yaxis == "y2"]
    assert d_vals == [1.6, 0.2] and acc_vals == [0.9, 0.55]
    assert tuple(fig.layout.yaxis2.range) == (0, 1.05)
    zh = translate_figure(fig, catalogue("zh", "figures"))
    assert "效应量 d" in [a.text for a in zh.layout.annotations]
