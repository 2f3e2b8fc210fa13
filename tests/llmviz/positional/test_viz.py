"""Figures of the positional lab (llmviz.viz.positional): the sinusoidal waves are readable by default
and every token label is display_token's readable text (issue 13)."""

import math

import pytest

from llmviz.positional import encodings as P
from llmviz.viz import positional as V


def _wavelength(dim: int, d_model: int, base: float) -> float:
    """λ of dimension ``dim``: 2π · base^(2i/d) for its pair i = dim // 2 (Vaswani et al. 2017, §3.5)."""
    return 2 * math.pi * base ** (2 * (dim // 2) / d_model)


@pytest.mark.parametrize("max_len, d_model, base", [(100, 128, 10000.0), (128, 64, 10000.0), (500, 512, 10000.0)])
def test_default_waves_are_few_distinct_and_visibly_bending(max_len, d_model, base):
    # issue 13: at the default d_model the chart drew dims 0-3 (four near-identical fast waves) and two flat ones
    pe = P.sinusoidal(max_len, d_model, base)
    dims = V.readable_dims(pe)
    fig = V.waves(pe, dims)
    assert len(fig.data) == V.DEFAULT_WAVES <= 6
    lam = [_wavelength(d, d_model, base) for d in dims]
    assert lam[0] == pytest.approx(2 * math.pi)  # the fastest wave is there ...
    assert all(b / a >= 2.5 for a, b in zip(lam, lam[1:]))  # ... and each next one is clearly slower
    assert max(lam) <= 4.2 * max_len  # the slowest still turns by ≥ 1/4 cycle over the plotted positions
    assert all(d % 2 == 0 for d in dims)  # sines only: a pair's cosine is the same wave, shifted
    assert len({tr.yaxis for tr in fig.data}) == len(dims)  # a row each: no wave drawn over another
    assert [tr.y.tolist() for tr in fig.data] == [pe.matrix[:, d].tolist() for d in dims]


def test_more_waves_on_request_and_tiny_tables():
    pe = P.sinusoidal(100, 128, 10000.0)
    many = V.readable_dims(pe, V.MAX_WAVES)
    assert len(many) == len(set(many)) == V.MAX_WAVES and many == sorted(many)
    assert len({tr.yaxis for tr in V.waves(pe, many).data}) == 1  # 16 curves share one axis (rows too thin)
    assert V.readable_dims(P.sinusoidal(10, 1, 10000.0), 4) == [0]  # one dimension: one curve
    assert V.readable_dims(P.sinusoidal(10, 4, 10000.0), 4) == [0, 2]  # two pairs: two curves


# ------------------------------------------------------------------ token labels (byte-level BPE)
TEXT = "The dog chased\nthe cat across the garden."
RAW_MARKS = ("Ġ", "Ċ")  # byte-level BPE's space and newline; display_token shows ▁ and \n


@pytest.fixture(scope="module")
def bpe_models(tmp_path_factory):
    from llmviz.models.loading import load_model
    from tests.fixtures.tiny_bpe import build_tiny_llama_bpe, build_tiny_roberta_bpe

    root = tmp_path_factory.mktemp("bpe")
    return load_model(str(build_tiny_llama_bpe(root / "llama"))), load_model(str(build_tiny_roberta_bpe(root / "rob")))


def _tick_labels(fig) -> list[str]:
    labels = []
    for tr in fig.data:
        for axis in ("x", "y"):
            labels += [str(v) for v in (getattr(tr, axis, None) or []) if isinstance(v, str)]
    return labels


@pytest.mark.usefixtures("one_thread")
def test_ablation_charts_show_readable_tokens_on_a_byte_level_bpe_model(bpe_models):
    # issue 13: the RoPE ablation chart showed raw vocabulary entries ("ĠThe", "Ċ")
    from llmviz.positional import ablation as PA
    from llmviz.tokens import display_token

    llama, roberta = bpe_models
    tok = llama.tokenizer
    assert any(m in t for t in tok.convert_ids_to_tokens(tok(TEXT)["input_ids"]) for m in RAW_MARKS)  # can fail
    res = PA.rope_ablation(llama, TEXT, seed=0)
    rows = res.top_table(tok, 40)  # 40 of each run's top tokens out of a 400-token vocabulary
    assert any(r["raw"].startswith("Ġ") for r in rows)  # the raw entries have the marks ...
    assert [r["token"] for r in rows] == [display_token(tok, r["token_id"]) for r in rows]
    fig = V.next_token_bars(res, tok, k=40)
    labels = list(fig.data[0].x)
    assert labels == [V.html.escape(display_token(tok, r["token_id"])) for r in rows]
    assert not [s for s in labels if any(m in s for m in RAW_MARKS)]  # ... the chart does not
    assert "▁the" in labels or "▁dog" in labels or any(s.startswith("▁") for s in labels)
    enc = PA.encoder_ablation(roberta, TEXT, seed=0)
    assert enc.shuffle.tokens_a[:3] == ["The", "▁dog", "▁chased"] and "\\n" in enc.shuffle.tokens_a
    shown = _tick_labels(V.attention_pair(enc, 0, 0))
    assert shown and not [s for s in shown if any(m in s for m in RAW_MARKS)]
    assert f"{enc.shuffle.tokens_a.index(chr(92) + 'n')}:\\n" in shown
