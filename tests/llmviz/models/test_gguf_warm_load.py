"""Warm loads from the safetensors cache: the tokenizer read by Rust from tokenizer.json equals transformers'
own ``AutoTokenizer`` (English, Chinese, special tokens, ids, decoding, padding), and a tied weight is stored
under its source name, so no weight is random-initialised on load (an older cache is read through a key
mapping to the same end)."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmviz.models.gguf_cache import _save_weights, _tied_key_mapping, read_tokenizer
from llmviz.models.loading import REGISTRY

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "今天天气很好，我们去公园散步吧。",
    "翻译成英文：我爱你。Translate: 机器学习",
    "  leading  spaces\n\ttabs and\r\nnewlines  ",
    "<start_of_turn>user hi<end_of_turn> <mask> <bos> <|im_start|>",
    "emoji 😀, accents éàü and 𝔘nicode",
    "",
]
ATTRS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "unk_token_id",
    "mask_token_id",
    "all_special_ids",
    "all_special_tokens",
    "padding_side",
    "truncation_side",
    "model_max_length",
    "vocab_size",
    "chat_template",
    "model_input_names",
    "add_bos_token",
    "add_eos_token",
)


def assert_same_tokenizer(fast, ref) -> None:
    assert type(fast) is type(ref)
    assert fast.backend_tokenizer.to_str() == ref.backend_tokenizer.to_str()  # normaliser ... model, added tokens
    assert len(fast) == len(ref) and fast.added_tokens_decoder == ref.added_tokens_decoder
    assert {a: getattr(fast, a, None) for a in ATTRS} == {a: getattr(ref, a, None) for a in ATTRS}
    for text in TEXTS:
        ids = ref(text)["input_ids"]
        assert fast(text)["input_ids"] == ids, text
        assert fast(text, add_special_tokens=False)["input_ids"] == ref(text, add_special_tokens=False)["input_ids"]
        assert fast.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
        assert fast.decode(ids) == ref.decode(ids)
        assert fast.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
    if ref.pad_token is not None:
        assert fast(TEXTS[:3], padding=True)["input_ids"] == ref(TEXTS[:3], padding=True)["input_ids"]


def _cache_folder(model_id: str):
    entry = REGISTRY[model_id]
    if entry.gguf_chunks is not None:
        return entry.gguf_chunks().cache_folder
    from llmviz.models.gguf_cache import gguf_cache_folder

    return gguf_cache_folder(entry.locate())


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["gemma3", "smollm2"])
def test_read_tokenizer_equals_auto_tokenizer(request, model_id):
    request.getfixturevalue(model_id)  # builds the cache on a first run
    folder = _cache_folder(model_id)
    ref = AutoTokenizer.from_pretrained(folder)
    assert_same_tokenizer(read_tokenizer(folder), ref)
    if model_id == "gemma3":  # the Chinese text is a few whole-word tokens, not bytes
        assert ref.convert_ids_to_tokens(ref.encode(TEXTS[1]))[0] == "<bos>"
        assert sum(t.startswith("<0x") for t in ref.convert_ids_to_tokens(ref.encode(TEXTS[1]))) == 0


def test_read_tokenizer_other_folders_take_transformers_path(tiny_gemma3_dir):
    """A tokenizer_config.json with keys read_tokenizer does not pass on (a BERT WordPiece): AutoTokenizer."""
    assert_same_tokenizer(read_tokenizer(tiny_gemma3_dir), AutoTokenizer.from_pretrained(tiny_gemma3_dir))


def _keys(path) -> set[str]:
    with safe_open(str(path), "pt") as fh:
        return set(fh.keys())


def _load(folder, monkeypatch, **extra):
    """(model, shapes of the tensors transformers random-initialised) as llmviz loads a cache folder."""
    from transformers import initialization

    drawn: list[tuple[int, ...]] = []
    real = initialization.TORCH_INIT_FUNCTIONS["normal_"]

    def spy(tensor, *args, **kwargs):
        drawn.append(tuple(tensor.shape))
        return real(tensor, *args, **kwargs)

    monkeypatch.setitem(initialization.TORCH_INIT_FUNCTIONS, "normal_", spy)
    model = AutoModelForCausalLM.from_pretrained(
        folder, attn_implementation="eager", dtype=torch.float32, use_safetensors=True, **extra
    )
    monkeypatch.setitem(initialization.TORCH_INIT_FUNCTIONS, "normal_", real)
    return model.eval(), drawn


def _copy_config(src, dst):
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    return dst


def test_tied_weight_stored_under_its_source_and_loaded_as_is(tiny_gemma3, tiny_gemma3_dir, tmp_path, monkeypatch):
    model = tiny_gemma3.model
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied
    folder = _copy_config(tiny_gemma3_dir, tmp_path / "new")
    _save_weights(model, folder / "model.safetensors")
    assert "model.embed_tokens.weight" in _keys(folder / "model.safetensors")
    assert "lm_head.weight" not in _keys(folder / "model.safetensors")
    loaded, drawn = _load(folder, monkeypatch)
    assert drawn == []  # nothing random-initialised
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([[2, 5, 9, 11, 7, 3]])
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_old_cache_layout_loads_without_random_init(tiny_gemma3, tiny_gemma3_dir, tmp_path, monkeypatch):
    """A cache written before (the tied weight under ``lm_head.weight``) is read through a key mapping: no
    random initialisation, the same logits, the file untouched."""
    model = tiny_gemma3.model
    folder = _copy_config(tiny_gemma3_dir, tmp_path / "old")
    save_model(model, str(folder / "model.safetensors"))  # the layout caches had before
    assert "lm_head.weight" in _keys(folder / "model.safetensors")
    assert "model.embed_tokens.weight" not in _keys(folder / "model.safetensors")
    old, drawn = _load(folder, monkeypatch)
    assert drawn == [tuple(model.model.embed_tokens.weight.shape)]  # what made warm loads slow
    mapping = _tied_key_mapping(folder)
    assert mapping == {r"^lm_head\.weight$": "model.embed_tokens.weight"}
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    new, drawn = _load(folder, monkeypatch, key_mapping=mapping)
    assert drawn == []
    assert new.lm_head.weight.data_ptr() == new.model.embed_tokens.weight.data_ptr()
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    ids = torch.tensor([[2, 5, 9, 11, 7, 3]])
    with torch.inference_mode():
        torch.testing.assert_close(new(ids).logits, model(ids).logits, rtol=0, atol=0)
    # the new layout needs no mapping; nor does a file whose dropped name is not a tied pair
    _save_weights(model, folder / "model.safetensors")
    assert _tied_key_mapping(folder) == {}
