"""Tiny models built from a config (no downloads) for fast, exact tests.

They reuse the bundled MiniLM WordPiece tokenizer so multi-token words behave as in real models.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmviz.models.loading import REGISTRY


def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(REGISTRY["minilm"].locate())


def _save(model, tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_bert_mlm(folder: Path, seed: int = 0, layers: int = 2, heads: int = 4, hidden: int = 32) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        architectures=["BertForMaskedLM"],
    )
    return _save(BertForMaskedLM(cfg).eval(), tok, folder)


def build_tiny_bert_encoder(folder: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        architectures=["BertModel"],
    )
    return _save(BertModel(cfg).eval(), tok, folder)


def build_tiny_llama(
    folder: Path, seed: int = 0, layers: int = 2, heads: int = 4, kv_heads: int = 2, hidden: int = 32
) -> Path:
    """Llama with GQA (4 query heads share 2 KV heads) and RoPE."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        rope_theta=10000.0,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        architectures=["LlamaForCausalLM"],
    )
    return _save(LlamaForCausalLM(cfg).eval(), tok, folder)
