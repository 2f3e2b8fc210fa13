"""A tiny Gemma 3 built from a config (no downloads): sliding window of 4, two RoPE bases, MQA, QK-norm.

Three layers: sliding, sliding, full. ``query_pre_attn_scalar`` (16) differs from the head dim (8) and the
norm weights are random, so a recomputation that forgets the scalar, the q/k RMSNorm, the window or the
layer's RoPE base does not match the model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.tiny import _save, minilm_tokenizer

WINDOW = 4
LOCAL_THETA, GLOBAL_THETA = 10.0, 10_000.0  # far apart, so the wrong base shows at a few positions


def build_tiny_gemma3(folder: Path, seed: int = 0) -> Path:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    cfg = Gemma3TextConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        query_pre_attn_scalar=16,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        sliding_window=WINDOW,
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": LOCAL_THETA},
            "full_attention": {"rope_type": "default", "rope_theta": GLOBAL_THETA},
        },
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        tie_word_embeddings=True,
        architectures=["Gemma3ForCausalLM"],
    )
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # Gemma norms start at 0 (scale 1 + w = 1): make them matter
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.normal_(0.0, 0.5)
    return _save(model, tok, folder)
