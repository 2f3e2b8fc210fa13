"""Model layer: registry facts, GGUF cache, local folders, refusals."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from llmviz import errors
from llmviz.models.gguf_cache import gguf_cache_folder
from llmviz.models.loading import (
    CAUSAL_LM,
    ENCODER,
    MASKED_LM,
    REGISTRY,
    kind_from_architecture,
    load_model,
    register_model,
)


def test_minilm_facts_and_attention_shape(minilm):
    f = minilm.facts
    assert (f.kind, f.n_layers, f.n_heads, f.n_kv_heads, f.hidden_size) == (ENCODER, 6, 12, 12, 384)
    assert f.positional == "learned" and f.max_positions == 512 and f.vocab_size == 30522
    enc = minilm.tokenizer("This is a test sentence.", return_tensors="pt")
    with torch.inference_mode():
        out = minilm.model(**enc, output_attentions=True)
    T = enc["input_ids"].shape[1]
    assert len(out.attentions) == 6 and tuple(out.attentions[0].shape) == (1, 12, T, T)
    np.testing.assert_allclose(out.attentions[0].sum(-1).numpy(), 1.0, atol=1e-5)


def test_smollm2_facts_and_attention_shape(smollm2):
    f = smollm2.facts
    assert (f.kind, f.n_layers, f.n_heads, f.n_kv_heads, f.head_dim) == (CAUSAL_LM, 30, 9, 3, 64)
    assert f.positional == "rope" and f.rope_theta == pytest.approx(100000.0)
    assert f.has_chat_template and f.dtype == "float32"
    assert smollm2.model.config._attn_implementation == "eager"
    enc = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        out = smollm2.model(**enc, output_attentions=True)
    T = enc["input_ids"].shape[1]
    att = out.attentions[5][0]
    assert tuple(att.shape) == (9, T, T)
    assert torch.all(torch.triu(att, diagonal=1) == 0)  # causal
    # The model knows something: " Paris" is among the top-5 next tokens.
    top = out.logits[0, -1].topk(5).indices.tolist()
    assert "Paris" in smollm2.tokenizer.decode(top)


def test_gguf_cache_reload_matches_and_is_fast(smollm2):
    folder = gguf_cache_folder(REGISTRY["smollm2"].locate())
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()
    t0 = time.perf_counter()
    again = load_model("smollm2")
    warm = time.perf_counter() - t0
    assert warm < 15, f"warm load took {warm:.1f}s: the cache was not used"
    enc = smollm2.tokenizer("Hello world, this is", return_tensors="pt")
    with torch.inference_mode():
        a = smollm2.model(**enc).logits
        b = again.model(**enc).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gguf_cold_load_from_empty_cache(tmp_path, monkeypatch, smollm2):
    """An empty cache dir dequantizes, writes the cache, and gives the same logits; the GGUF file is parsed once
    (transformers asks for it three times: config, weights, tokenizer)."""
    import gguf

    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path))
    parsed = []

    class Counting(gguf.GGUFReader):
        def __init__(self, path, *args, **kwargs):
            parsed.append(str(path))
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", Counting)
    cold = load_model("smollm2")
    assert len(parsed) == 1, parsed
    assert (gguf_cache_folder(REGISTRY["smollm2"].locate()) / "model.safetensors").is_file()
    assert str(tmp_path) in str(gguf_cache_folder(REGISTRY["smollm2"].locate()))
    enc = smollm2.tokenizer("Offline models are", return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(cold.model(**enc).logits, smollm2.model(**enc).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    "fixture,kind,layers,heads,kv",
    [
        ("tiny_mlm", MASKED_LM, 2, 4, 4),
        ("tiny_llama", CAUSAL_LM, 2, 4, 2),
    ],
)
def test_local_folder_loads_through_registry(request, fixture, kind, layers, heads, kv):
    loaded = request.getfixturevalue(fixture)
    f = loaded.facts
    assert (f.kind, f.n_layers, f.n_heads, f.n_kv_heads, f.source) == (kind, layers, heads, kv, "folder")
    assert f.positional == ("learned" if kind == MASKED_LM else "rope")
    if kind == MASKED_LM:
        assert f.mask_token == "[MASK]" and f.supports("fill_mask")
    else:
        assert f.supports("generate") and not f.supports("fill_mask")


def test_local_folder_logits_equal_the_saved_model(tiny_mlm_dir, tiny_mlm):
    from transformers import BertForMaskedLM

    ref = BertForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    ids = tiny_mlm.tokenizer("a [MASK] test", return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(tiny_mlm.model(**ids).logits, ref(**ids).logits)


def test_register_model_and_refuse_duplicate(tiny_mlm_dir):
    register_model("tiny-test", tiny_mlm_dir, "tiny", replace=True)
    assert load_model("tiny-test").facts.source == "trained"
    with pytest.raises(errors.LlmvizError, match="already registered"):
        register_model("tiny-test", tiny_mlm_dir, "tiny")
    del REGISTRY["tiny-test"]


def test_bad_folders_give_clear_errors(tmp_path, tiny_mlm_dir):
    with pytest.raises(errors.ModelNotFoundError, match="No model folder"):
        load_model(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.ModelNotFoundError, match="empty"):
        load_model(str(empty))
    pickle_only = tmp_path / "pickle"
    pickle_only.mkdir()
    (pickle_only / "config.json").write_text((tiny_mlm_dir / "config.json").read_text())
    (pickle_only / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(errors.UnsafeCheckpointError, match="pickle"):
        load_model(str(pickle_only))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_mlm_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(errors.CorruptModelError):
        load_model(str(corrupt))
    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_mlm_dir, wrong)
    cfg = (wrong / "config.json").read_text().replace("BertForMaskedLM", "BertForSequenceClassification")
    (wrong / "config.json").write_text(cfg)
    with pytest.raises(errors.UnsupportedModelError, match="not supported"):
        load_model(str(wrong))
    bad_json = tmp_path / "badjson"
    shutil.copytree(tiny_mlm_dir, bad_json)
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(errors.CorruptModelError, match="JSON"):
        load_model(str(bad_json))


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(errors.HubUnavailableError, match="offline"):
        load_model("someone/not-a-cached-model")
    assert time.perf_counter() - t0 < 10


def test_kind_from_architecture():
    assert kind_from_architecture("RobertaForMaskedLM") == MASKED_LM
    assert kind_from_architecture("GPT2LMHeadModel") == CAUSAL_LM
    assert kind_from_architecture("BertModel") == ENCODER
    with pytest.raises(errors.UnsupportedModelError):
        kind_from_architecture("BertForTokenClassification")


def test_empty_spec_and_bad_device():
    with pytest.raises(errors.ModelNotFoundError):
        load_model("  ")
    with pytest.raises(errors.UnsupportedModelError, match="device"):
        load_model("minilm", device="tpu")
