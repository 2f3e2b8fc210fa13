"""AppTest of the positional-encoding page: every section with both models, deep links, extreme values."""

import math

import pytest
import torch

from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape

PAGE = "pages/positional.py"


pytestmark = pytest.mark.usefixtures("one_thread")


def _successes(at) -> str:
    return "\n".join(str(e.value) for e in at.success)


def test_sinusoidal_default_and_deep_link():
    at = open_page(PAGE, "minilm", query={"section": "sinusoidal", "d_model": "16", "max_len": "40", "base": "100"})
    assert_ok(at)
    assert at.title[0].value == "Positional encoding"
    assert at.slider(key="pos_d_model").value == 16 and at.slider(key="pos_max_len").value == 40
    assert at.number_input(key="pos_base").value == 100.0
    ok = _successes(at)
    assert "depends on the distance only" in ok and "M_k·PE(p)" in ok
    assert not at.error
    table = at.dataframe[0].value  # the wavelength table: 2*pi*100^(2i/16)
    assert table["wavelength_pos"].iloc[1] == pytest.approx(2 * math.pi * 100 ** (2 / 16))
    assert any("positional?" in c.value and "d_model=16" in c.value for c in at.code)  # copy-link box


def test_waves_chart_is_readable_by_default_and_shows_more_on_request():
    # issue 13: the waves chart drew dims 0, 1, 2, 3, 126, 127 at d_model = 128: a dense tangle
    import json

    at = open_page(PAGE, "minilm", query={"section": "sinusoidal"})
    assert_ok(at)
    waves = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [tr["name"] for tr in waves["data"]]
    assert len(names) == 4 and all("sin" in n for n in names), names
    lam = [2 * math.pi * 10000 ** (int(n.split()[1]) / 128) for n in names]  # dim 2i: λ = 2π·10000^(2i/d)
    assert all(b / a >= 2.5 for a, b in zip(lam, lam[1:])), names
    assert "4 of 128 dimensions drawn" in texts(at)
    at.slider(key="pos_n_waves").set_value(8).run()
    assert_ok(at)
    assert len(json.loads(at.get("plotly_chart")[0].proto.spec)["data"]) == 8
    at.slider(key="pos_d_model").set_value(16).run()  # a new table starts from its own readable choice
    assert_ok(at)
    assert "4 of 16 dimensions drawn" in texts(at)


@pytest.mark.parametrize(
    "query, expect",
    [
        ({"d_model": "3"}, "odd"),
        ({"d_model": "2", "max_len": "1"}, "no distance to compare"),
        ({"base": "1"}, "same frequency"),
        ({"d_model": "0"}, "outside the accepted range"),
        ({"max_len": "99999"}, "outside the accepted range"),
    ],
)
def test_extreme_values_give_messages_not_exceptions(query, expect):
    at = open_page(PAGE, "minilm", query={"section": "sinusoidal", **query})
    assert_ok(at)
    assert expect in texts(at)


def test_extreme_values_typed_in_the_widgets():
    at = open_page(PAGE, "minilm")
    at.slider(key="pos_d_model").set_value(1).run()
    assert_ok(at)
    assert "no (sin, cos) pair" in texts(at)
    at.slider(key="pos_d_model").set_value(2).run()
    at.slider(key="pos_max_len").set_value(1).run()
    at.number_input(key="pos_base").set_value(1.0).run()
    assert_ok(at)
    assert "base = 1" in texts(at) and "max_len = 1" in texts(at)
    assert "M_k·PE(p)" in _successes(at)  # M_0 = identity still checked


def test_learned_and_ablation_with_minilm():
    at = open_page(PAGE, "minilm", query={"section": "learned"})
    assert_ok(at)
    assert "512 × 384" in texts(at)
    at.segmented_control(key="pos_section").set_value("ablation").run()
    assert_ok(at)
    ok = _successes(at)
    assert "bag of words" in ok and "< 0.99" in ok
    at.text_input(key="pos_abl_text").set_value("hello").run()
    assert_ok(at)
    assert "at least 2 words" in "\n".join(unescape(e.value) for e in at.error)
    assert at.text_input(key="pos_abl_text").value == "hello"  # what the user typed is kept


def test_rope_sections_with_smollm2_and_explanations_for_other_scheme():
    at = open_page(PAGE, "smollm2", query={"section": "rope"})
    assert_ok(at)
    ok = _successes(at)
    assert "rotary embedding agrees" in ok and "depends only on the relative distance" in ok
    assert at.number_input(key="pos_head_dim").value == 64 and at.number_input(key="pos_theta").value == 1e5
    at.segmented_control(key="pos_section").set_value("learned").run()
    assert_ok(at)
    assert "rotary position embeddings" in "\n".join(str(e.value) for e in at.info)
    at.segmented_control(key="pos_section").set_value("ablation").run()
    assert_ok(at)
    assert "order is invisible" in _successes(at)
    # minilm has learned positions: the RoPE section says so and falls back to chosen settings.
    at2 = open_page(PAGE, "minilm", query={"section": "rope", "lang": "zh"})
    assert_ok(at2)
    assert at2.title[0].value == "位置编码"
    assert "learned" in "\n".join(str(e.value) for e in at2.info)


def test_unknown_section_falls_back_to_sinusoidal():
    at = open_page(PAGE, "minilm", query={"section": "bogus", "base": "abc"})
    assert_ok(at)
    assert at.segmented_control(key="pos_section").value == "sinusoidal"
    assert at.number_input(key="pos_base").value == 10000.0


def test_scaled_rope_variant_uses_the_models_frequencies(tmp_path):
    """A llama3-scaled rotary model: the page says the formula differs and still matches the model's cos/sin."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.fixtures.tiny import minilm_tokenizer

    tok = minilm_tokenizer()
    rope = {
        "rope_type": "llama3",
        "rope_theta": 10000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        rope_parameters=rope,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    at = open_page(PAGE, str(tmp_path), query={"section": "rope"})
    assert_ok(at)
    assert "llama3" in "\n".join(str(e.value) for e in at.info)
    assert "rotary embedding agrees" in _successes(at) and not at.error
