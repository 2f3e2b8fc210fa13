"""Tiny models with a byte-level BPE tokenizer (GPT-2 / SmolLM2 style: a leading space is ``Ġ``, a newline
``Ċ``), trained in memory on a few sentences, so token-label tests need no download and no GGUF."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "The dog chased the cat across the garden.",
    "The cat sat on the mat and the dog slept.\nA bird sang in the tree.",
    "Once upon a time a small model learned to read.",
]
SPECIALS = ["<|endoftext|>", "<pad>", "<s>", "</s>", "<unk>"]


def bpe_tokenizer():
    """A byte-level BPE tokenizer (``PreTrainedTokenizerFast``) with a few hundred tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def _save(model, tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_llama_bpe(folder: Path, seed: int = 0) -> Path:
    """Llama (RoPE, GQA) over the byte-level BPE vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = bpe_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        architectures=["LlamaForCausalLM"],
    )
    return _save(LlamaForCausalLM(cfg).eval(), tok, folder)


def build_tiny_roberta_bpe(folder: Path, seed: int = 0) -> Path:
    """RoBERTa encoder (learned absolute positions) over the byte-level BPE vocabulary."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    tok = bpe_tokenizer()
    cfg = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        architectures=["RobertaModel"],
    )
    return _save(RobertaModel(cfg).eval(), tok, folder)
