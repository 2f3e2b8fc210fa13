"""Translator figures and the encoder-decoder bertviz view (payload, escaping, shapes, language)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from llmviz.errors import InputError
from llmviz.i18n import labels
from llmviz.viz import bertviz_offline as bertviz
from llmviz.viz import translator as F

SRC, TGT = ["the", "big", "</script>", "<eos>"], ["lo", "kano", "grando", "<eos>"]


def attn(rows, cols, seed=0):
    a = np.random.default_rng(seed).random((2, 3, rows, cols))
    return a / a.sum(-1, keepdims=True)


def test_encdec_fragment_ships_three_attentions_with_their_tokens():
    frag = bertviz.encdec_fragment(
        SRC, TGT, attn(4, 4), attn(4, 4, 1), attn(4, 4, 2), ["Enc", "Dec", "Cross"], "Layer:", "Attention:"
    )
    assert '</script>"' not in frag and "<\\/script>" in frag  # tokens stay text inside JSON
    payload = json.loads(re.search(r"llmvizDecode\((\{.*?\})\)", frag, re.S).group(1).replace("<\\/", "</"))
    names = [a["name"] for a in payload["attention"]]
    assert names == ["Enc", "Dec", "Cross"] and payload["default_filter"] == "2"
    cross = payload["attention"][2]
    assert cross["left_text"] == TGT and cross["right_text"] == SRC  # decoder queries, source keys
    assert np.array(cross["attn"]).shape == (2, 3, 4, 4)
    assert '<option value="2" selected>Cross</option>' in frag
    with pytest.raises(InputError):
        bertviz.encdec_fragment(SRC, TGT[:3], attn(4, 4), attn(4, 4), attn(4, 4), ["a", "b", "c"], "L", "A")


def test_animation_has_one_frame_per_evaluation_and_marks_the_reference():
    frames = [attn(4, 4, s)[0, 0] for s in range(5)]
    fig = F.cross_attention_animation(
        SRC, TGT, frames, [10, 20, 30, 40, 50], [(0,), (2,), (1,), (3,)], "t", labels("zh")
    )
    assert len(fig.frames) == 5 and [s["label"] for s in fig.layout.sliders[0].steps] == ["10", "20", "30", "40", "50"]
    assert list(fig.data[1].x) == [0, 2, 1, 3] and list(fig.data[1].y) == [0, 1, 2, 3]
    assert fig.data[1].name == "参考对齐" and "&lt;/script&gt;" in fig.layout.xaxis.ticktext
    grid = F.cross_attention_grid(SRC, TGT, attn(4, 4), [(0,), (2,), (1,), (3,)], np.full((2, 3), 0.5))
    assert len([d for d in grid.data if d.type == "heatmap"]) == 6
    assert grid.layout.annotations[0].text == "L0 H0 · 50%"


def test_lens_and_patch_figures_name_layers_and_mark_the_replaced_word():
    from llmviz.train.translator_probes import DecoderLens, SourcePatch

    lens = DecoderLens(["lo", "<b>", "<eos>"], np.full((3, 3), 0.5), [["lo", "<b>", "x"]] * 3)
    fig = F.decoder_lens_figure(lens, labels("zh"))
    assert list(fig.layout.yaxis.ticktext) == ["嵌入", "第 1 块之后", "第 2 块之后"]
    assert "&lt;b&gt;" in list(fig.layout.xaxis.ticktext) and fig.data[0].text[0][1] == "&lt;b&gt;"
    patch = SourcePatch(["the", "dog"], ["the", "cat"], 1, ["lo", "kano"], np.zeros((3, 3)), -1.0, -5.0, ["lo", "gata"])
    ticks = list(F.source_patch_figure(patch).layout.xaxis.ticktext)
    assert ticks == ["the", "<b>dog→cat</b>", "&lt;eos&gt;"]
