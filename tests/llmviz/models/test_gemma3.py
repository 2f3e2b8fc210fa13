"""Gemma 3: chunk assembly, facts, the attention formula (QK-norm, query_pre_attn_scalar, sliding window, two
RoPE bases, MQA) against the model's own weights, the RoPE tables, logit lens and causal scoring.

Fast tests use a tiny Gemma 3 built from a config (window 4, three layers: local, local, global); the
`slow` ones load the bundled gemma3 (the first run ever dequantises it: ~80 s)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from llmviz.attention.extract import extract_attention
from llmviz.attention.steps import causal_mask, formula_steps, softmax_rows
from llmviz.errors import CorruptModelError, ModelNotFoundError
from llmviz.models.gguf_cache import ChunkedGGUF, assemble_chunks, load_chunked_gguf
from tests.fixtures.tiny_gemma import GLOBAL_THETA, LOCAL_THETA, WINDOW

LONG = "The quick brown fox jumps over the lazy dog while the cat sleeps."  # > WINDOW tokens


# ------------------------------------------------------------------ chunk assembly
def _chunks(tmp_path, parts=(b"GGUF-part-one|", b"part-two|", b"three")):
    paths = []
    for i, data in enumerate(parts):
        p = tmp_path / f"pkg{i + 1}" / "data" / f"m.gguf.part{i:02d}"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
        paths.append(p)
    return paths, hashlib.sha256(b"".join(parts)).hexdigest()


def test_assemble_concatenates_and_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path / "cache"))
    paths, sha = _chunks(tmp_path)
    stages = []
    out = assemble_chunks(ChunkedGGUF("m.gguf", tuple(paths), sha), stages.append)
    assert out.read_bytes() == b"GGUF-part-one|part-two|three"
    assert out.parent == tmp_path / "cache" / "gguf-src"
    assert stages == ["concatenate", "verify"]


def test_bad_hash_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path / "cache"))
    paths, sha = _chunks(tmp_path)
    paths[1].write_bytes(b"damaged|")
    src = ChunkedGGUF("m.gguf", tuple(paths), sha)
    with pytest.raises(CorruptModelError, match="SHA-256") as err:
        assemble_chunks(src)
    assert "reinstall" in str(err.value)
    assert str(tmp_path) not in str(err.value)  # no server paths in the message
    assert list((tmp_path / "cache" / "gguf-src").iterdir()) == []  # no partial or temp file left


def test_missing_chunk_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path / "cache"))
    paths, sha = _chunks(tmp_path)
    paths[2].unlink()
    with pytest.raises(ModelNotFoundError, match=r"m\.gguf\.part02") as err:
        load_chunked_gguf(ChunkedGGUF("m.gguf", tuple(paths), sha), "cpu", "x")
    assert str(tmp_path) not in str(err.value)
    assert "requirements-models.txt" in str(err.value)


def test_registry_describes_the_four_chunk_wheels():
    from llmviz.models.loading import GEMMA3_PACKAGE, REGISTRY

    entry = REGISTRY["gemma3"]
    src = entry.gguf_chunks()
    assert [p.name for p in src.chunks] == [f"gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)]
    assert all(p.is_file() for p in src.chunks)
    assert len(src.sha256) == 64 and src.sha256 == __import__(GEMMA3_PACKAGE).EXPECTED_SHA256
    assert "Gemma Terms of Use" in entry.license
    assert (entry.locate() / "GEMMA_TERMS.html").is_file()


# ------------------------------------------------------------------ tiny Gemma 3
def test_tiny_facts(tiny_gemma3):
    f = tiny_gemma3.facts
    assert f.layer_types == ("sliding_attention", "sliding_attention", "full_attention")
    assert f.sliding_window == WINDOW and f.layer_window(0) == WINDOW and f.layer_window(2) is None
    assert (f.rope_theta, f.rope_theta_local) == (GLOBAL_THETA, LOCAL_THETA)
    assert f.layer_rope_theta(1) == LOCAL_THETA and f.layer_rope_theta(2) == GLOBAL_THETA
    assert f.qk_norm and f.query_pre_attn_scalar == 16 and f.positional == "rope"
    assert f.embed_scale == pytest.approx(np.sqrt(f.hidden_size))
    assert (f.n_heads, f.n_kv_heads, f.head_dim) == (4, 1, 8)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_tiny_steps_match_the_model(tiny_gemma3, layer):
    s = formula_steps(tiny_gemma3, LONG, layer, 3)
    t = len(s.tokens)
    assert t > WINDOW + 4
    assert s.family == "gemma3" and s.kv_head == 0  # MQA: all four query heads read the one KV head
    assert s.attention_max_abs_diff <= 1e-5
    scale = max(1.0, float(np.abs(s.model_block_output).max()))
    assert s.block_max_abs_diff <= 1e-5 * scale
    assert s.scaling == pytest.approx(16**-0.5)
    assert s.rope_theta == (LOCAL_THETA if layer < 2 else GLOBAL_THETA)
    assert s.rope_table_max_diff < 1e-5  # our cos/sin from the base equal the model's tables
    # the window: a local layer's query i sees min(i + 1, W) keys, and the model gives zero weight beyond
    seen = (s.model_weights > 0).sum(-1)  # [H, T]
    expect = np.minimum(np.arange(t) + 1, WINDOW) if layer < 2 else np.arange(t) + 1
    assert (seen == expect[None]).all()
    ref = extract_attention(tiny_gemma3, LONG)
    assert np.abs(s.all_weights - ref.attention[layer]).max() <= 1e-5


def test_tiny_steps_fail_without_each_gemma_piece(tiny_gemma3):
    """Each ingredient matters: drop it and the recomputation no longer matches the model."""
    from llmviz.attention.steps import _rotate_half
    from llmviz.positional.encodings import rope_cos_sin, rope_inv_freq

    s = formula_steps(tiny_gemma3, LONG, 0, 0)
    t, d_k = len(s.tokens), s.q.shape[1]
    model = s.model_weights[0]

    def attn(q, k, scaling, mask):
        return softmax_rows(q @ k.T * scaling + mask)

    full = causal_mask(t)
    assert np.abs(attn(s.q, s.k, s.scaling, s.mask) - model).max() <= 1e-5
    assert np.abs(attn(s.q, s.k, s.scaling, full) - model).max() > 1e-3  # no window
    assert np.abs(attn(s.q, s.k, d_k**-0.5, s.mask) - model).max() > 1e-3  # 1/sqrt(d_k) scaling
    cos, sin = rope_cos_sin(np.arange(t), rope_inv_freq(d_k, LOCAL_THETA))
    q_nonorm = s.q_lin * cos + _rotate_half(s.q_lin) * sin
    k_nonorm = s.k_lin * cos + _rotate_half(s.k_lin) * sin
    assert np.abs(attn(q_nonorm, k_nonorm, s.scaling, s.mask) - model).max() > 1e-3  # no QK-norm
    cos, sin = rope_cos_sin(np.arange(t), rope_inv_freq(d_k, GLOBAL_THETA))
    q_g = s.q_raw * cos + _rotate_half(s.q_raw) * sin
    k_g = s.k_raw * cos + _rotate_half(s.k_raw) * sin
    assert np.abs(attn(q_g, k_g, s.scaling, s.mask) - model).max() > 1e-3  # the other layer type's base


def test_causal_mask_window():
    m = causal_mask(6, 3)
    allowed = np.isfinite(m)
    assert allowed.sum(1).tolist() == [1, 2, 3, 3, 3, 3]
    assert allowed[5, 3:].all() and not allowed[5, :3].any() and not allowed[2, 3]


def test_tiny_rope_config_per_layer_type(tiny_gemma3):
    from llmviz.positional import model as PM

    assert PM.rope_layer_types(tiny_gemma3) == ("full_attention", "sliding_attention")
    for lt, theta, layers in (("full_attention", GLOBAL_THETA, (2,)), ("sliding_attention", LOCAL_THETA, (0, 1))):
        cfg = PM.rope_config(tiny_gemma3, lt)
        assert cfg.theta == theta and cfg.layers == layers
        np.testing.assert_allclose(cfg.inv_freq, cfg.model_inv_freq, rtol=1e-6)
        cos, sin = PM.model_rope_cos_sin(tiny_gemma3, np.arange(20), lt)
        from llmviz.positional.encodings import rope_cos_sin

        ce, se = rope_cos_sin(np.arange(20), cfg.inv_freq)
        assert max(np.abs(ce - cos).max(), np.abs(se - sin).max()) < 1e-5


def test_tiny_real_qk_pair_is_normalised(tiny_gemma3):
    """The pre-rotation q of the positional lab is the model's after QK-norm: equal to the step-by-step q_raw."""
    from llmviz.positional import model as PM

    text = "The cat sat on the mat."
    q, k = PM.real_qk_pair(tiny_gemma3, text)
    s = formula_steps(tiny_gemma3, text, 0, 0)
    np.testing.assert_allclose(q, s.q_raw[-1], atol=1e-5)
    np.testing.assert_allclose(k, s.k_raw[0], atol=1e-5)


def test_tiny_logit_lens_last_layer_is_the_output(tiny_gemma3):
    from llmviz.explain.logit_lens import logit_lens

    res = logit_lens(tiny_gemma3, LONG)
    enc = tiny_gemma3.tokenizer(LONG, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(tiny_gemma3.model(**enc).logits[0, -1], -1).numpy()
    np.testing.assert_allclose(res.last_probs[-1], probs, atol=1e-5)
    assert res.output_max_diff < 1e-5


def test_tiny_causal_scores_batched_equal_one_by_one(tiny_gemma3):
    from llmviz.bias.scoring import causal_token_logprobs, encode

    rows = [encode(tiny_gemma3, s) for s in ("a short one.", LONG, "the dog barked at the mailman today")]
    batched = causal_token_logprobs(tiny_gemma3, rows, batch_size=8)
    for r, b in zip(rows, batched):
        with torch.no_grad():
            lp = torch.log_softmax(tiny_gemma3.model(torch.tensor([r])).logits[0, :-1].double(), -1)
        np.testing.assert_allclose(b, lp.gather(-1, torch.tensor(r[1:])[:, None])[:, 0].numpy(), atol=1e-5)


def test_scoring_budget_shrinks_with_the_vocabulary():
    from llmviz.bias.scoring import MAX_LOGIT_ELEMENTS, MAX_TOKENS_PER_BATCH, _batches

    assert MAX_LOGIT_ELEMENTS // 49152 >= MAX_TOKENS_PER_BATCH  # smollm2 unchanged
    budget = MAX_LOGIT_ELEMENTS // 262144
    assert budget == 768
    assert all(len(b) * 100 <= budget for b in _batches([100] * 40, 32, budget))


# ------------------------------------------------------------------ the real model
@pytest.mark.slow
def test_gemma3_facts(gemma3):
    f = gemma3.facts
    assert (f.kind, f.architecture, f.model_type) == ("causal_lm", "Gemma3ForCausalLM", "gemma3_text")
    assert (f.n_layers, f.n_heads, f.n_kv_heads, f.head_dim, f.hidden_size) == (18, 4, 1, 256, 640)
    assert f.layer_types == (("sliding_attention",) * 5 + ("full_attention",)) * 3
    assert f.sliding_window == 512
    assert (f.rope_theta_local, f.rope_theta) == (10_000.0, 1_000_000.0)
    assert f.query_pre_attn_scalar == 256 and f.qk_norm
    assert f.embed_scale == pytest.approx(640**0.5)
    assert f.vocab_size == 262_144 and not f.has_chat_template
    assert "Gemma Terms of Use" in f.license


@pytest.mark.slow
@pytest.mark.parametrize("layer", [0, 5])  # local (window 512, base 1e4) and global (base 1e6)
def test_gemma3_steps_match_the_model(gemma3, layer):
    s = formula_steps(gemma3, "The capital of France is Paris. 中国的首都是北京。", layer, 2)
    assert s.attention_max_abs_diff <= 1e-5
    assert s.sliding_window == (512 if layer == 0 else None)
    assert s.rope_theta == (10_000.0 if layer == 0 else 1_000_000.0)
    assert s.rope_table_max_diff < 1e-4


@pytest.mark.slow
def test_gemma3_logit_lens_and_chinese(gemma3):
    from llmviz.explain.logit_lens import logit_lens
    from llmviz.generation.generate import SamplingParams, build_prompt, generate

    res = logit_lens(gemma3, "The capital of France is")
    assert res.output_max_diff < 1e-5
    prompt = build_prompt(gemma3, "今天天气很好，我们去公园散步。")
    assert not prompt.chat_template and prompt.ids[0] == gemma3.tokenizer.bos_token_id  # a base model: fed as is
    out = generate(gemma3, prompt, SamplingParams(greedy=True, max_new_tokens=12)).text
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in out) >= 3, out


# ------------------------------------------------------------------ Playground with a base model
def test_presets_for_base_and_chat_models():
    from llmviz.generation.presets import COMPLETION_PRESETS, PRESETS, fill_example, presets_for

    assert presets_for(True, "zh") is PRESETS
    assert presets_for(False, "zh") is COMPLETION_PRESETS["zh"] and presets_for(False, "fr") is COMPLETION_PRESETS["en"]
    for lang in ("en", "zh"):
        assert set(COMPLETION_PRESETS[lang]) == set(PRESETS)
        assert all(p.system == "" for p in COMPLETION_PRESETS[lang].values())  # fed as is: no system prompt
    assert [COMPLETION_PRESETS["zh"][k].title for k in ("translation", "summarization", "qa", "code", "creative")] == [
        "翻译",
        "摘要",
        "问答",
        "写代码",
        "创作",
    ]
    assert fill_example(True, "zh")[0] == "中国的首都是[MASK]。" and fill_example(False, "zh")[0].endswith("sentence.")


def test_playground_chinese_presets_and_fill_in(tiny_gemma3_dir):
    from llmviz.generation.presets import COMPLETION_PRESETS
    from tests.fixtures.apptest_util import assert_ok, open_page

    page = "pages/playground.py"
    at = open_page(page, str(tiny_gemma3_dir), query={"preset": "qa", "lang": "zh"})
    assert_ok(at)
    assert at.text_area(key="pg_user_qa_completion_zh").value == COMPLETION_PRESETS["zh"]["qa"].user
    at = open_page(page, str(tiny_gemma3_dir), query={"preset": "fill_mask", "lang": "zh"})
    assert_ok(at)
    assert at.text_area(key="pg_fill_text_zh").value == "中国的首都是[MASK]。"
    assert at.text_input(key="pg_fill_cands_zh").value == "北京，上海，广州，东京"
    df = at.dataframe[0].value
    assert sorted(df["candidate"]) == sorted(["北京", "上海", "广州", "东京"])  # scored as candidates


# ------------------------------------------------------------------ pages with a Gemma 3
def test_pages_with_tiny_gemma3(tiny_gemma3_dir):
    from tests.fixtures.apptest_util import assert_ok, open_page, texts

    at = open_page("pages/home.py", str(tiny_gemma3_dir))
    assert_ok(at)
    body = texts(at)
    assert "L L G" in body  # the layer map: local, local, global
    at = open_page(
        "pages/attention.py", str(tiny_gemma3_dir), query={"text": LONG, "view": "formula", "layer": "0", "head": "1"}
    )
    assert_ok(at)
    body = texts(at)
    assert "local** (sliding-window) layer" in body and "base θ = 10" in body
    assert "Recomputed with the model's weights" in body
    at = open_page("pages/attention.py", str(tiny_gemma3_dir), query={"text": LONG, "view": "head", "layer": "0"})
    assert_ok(at)
    fig = at.get("plotly_chart")[0].proto.spec
    assert '"path"' in fig and "window = 4" in fig  # the window boundary is drawn
    at = open_page("pages/positional.py", str(tiny_gemma3_dir), query={"section": "rope"})
    assert_ok(at)
    ok = "\n".join(str(e.value) for e in at.success)
    assert "holds for both bases" in ok
    assert at.number_input(key="pos_theta_full_attention").value == GLOBAL_THETA
    at.radio(key="pos_rope_lt").set_value("sliding_attention").run()
    assert_ok(at)
    assert at.number_input(key="pos_theta_sliding_attention").value == LOCAL_THETA


@pytest.mark.slow
def test_gemma3_probes_explain_ablation_and_cli(gemma3, tmp_path, capsys):
    """Everything else runs on gemma3: causal template probe, counterfactuals, attributions, head ablation, CLI."""
    import json

    import pandas as pd

    from llmviz.bias.counterfactual import counterfactual_generate
    from llmviz.bias.pairs_data import starter_pairs
    from llmviz.bias.templates import template_probe
    from llmviz.cli import main
    from llmviz.explain.ablation import ablation_problem, head_ablation
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import Target, build_problem

    probe = template_probe(gemma3, "The {group} worked as a [MASK].", ["man", "woman"], ["nurse", "doctor"])
    assert probe.log_prob.shape == (2, 2) and np.isfinite(probe.log_prob).all()
    cf = counterfactual_generate(
        gemma3, "The {group} walked into the room and", ["man", "woman"], n_samples=2, max_new_tokens=4
    )
    assert len(cf.texts) == 2 and all(len(x) == 2 for x in cf.texts)
    problem = build_problem(gemma3, "The doctor said that", Target("next_token", token="he"))
    gx = attribute(problem, "grad_x_input")
    assert len(gx.scores) == len(problem.tokens) and np.isfinite(gx.scores).all()
    res = head_ablation(
        ablation_problem(gemma3, "The doctor said that", Target("next_token", token="he")), whole_layers=False
    )
    assert res.head_delta.shape == (18, 4) and np.isfinite(res.head_delta).all()
    csv = tmp_path / "pairs.csv"
    starter_pairs().frame.iloc[:3].to_csv(csv, index=False)
    out = tmp_path / "r.json"
    assert (
        main(["bias-audit", "--model", "gemma3", "--pairs", str(csv), "--out", str(out), "--quiet", "--n-boot", "100"])
        == 0
    ), capsys.readouterr().err
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["model"]["kind"] == "causal_lm" and len(rep["pairs"]) == 3
    assert len(pd.read_csv(csv)) == 3


def test_model_cache_is_bounded_and_configurable():
    """At most LLMVIZ_MAX_MODELS (default 2) models stay loaded, so three float32 copies are not kept alive."""
    import os
    import subprocess
    import sys

    code = "import ui.common as c; print(c.MAX_CACHED_MODELS, c._load_shared._info.max_entries)"
    for env, expect in (({}, "2 2"), ({"LLMVIZ_MAX_MODELS": "3"}, "3 3")):
        e = {k: v for k, v in os.environ.items() if k != "LLMVIZ_MAX_MODELS"} | env
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)
        assert out.stdout.split()[-2:] == expect.split(), out.stderr[-500:]


def test_cold_load_stages_and_joined_file_removed(tmp_path, monkeypatch):
    """A cold load reports concatenate, verify, then the dequantise stages; the joined GGUF is deleted after."""
    from llmviz.models import gguf_cache as gguf_cache

    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path / "cache"))
    paths, sha = _chunks(tmp_path)
    src = ChunkedGGUF("m.gguf", tuple(paths), sha)
    seen = []

    def fake_dequantise(gguf, folder, progress):
        assert gguf.read_bytes() == b"GGUF-part-one|part-two|three"
        for stage in ("dequantise", "convert_tokenizer", "write_cache"):
            progress(stage)
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x")

    monkeypatch.setattr(gguf_cache, "_dequantise", fake_dequantise)
    folder = gguf_cache.ensure_chunked_cache(src, seen.append)
    assert seen == ["concatenate", "verify", "dequantise", "convert_tokenizer", "write_cache"]
    assert folder == src.cache_folder and gguf_cache.chunked_is_cached(src)
    assert not src.assembled_path.exists()
    seen.clear()
    gguf_cache.ensure_chunked_cache(src, seen.append)  # warm: nothing to do
    assert seen == []
