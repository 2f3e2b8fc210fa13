"""The training lab's tiny transformer, built from transformers' own classes.

Masked LM: ``BertForMaskedLM`` (post-LN encoder blocks, bidirectional attention).
Causal LM: ``GPT2LMHeadModel`` (pre-LN decoder blocks, causal mask).
Both are token embedding + position encoding + N blocks (d_model, heads, d_ff, dropout) + an
output projection tied to the token embedding, i.e. the textbook transformer. Using the library's
classes means a trained model saves with ``save_pretrained`` (safetensors) and re-loads through
``llmviz.models.loading.load_model`` so the Attention, Positional, Bias and Explain pages can inspect it.

Sinusoidal positions (Vaswani et al. 2017) are the learned position table overwritten with
``PE[pos, 2i] = sin(pos / 10000^(2i/d))``, ``PE[pos, 2i+1] = cos(...)`` and frozen during training;
``config.llmviz_positional`` records the choice so ``ModelFacts.positional`` reports it.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from llmviz.errors import InputError
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, cache_dir, register_model

MLM, CAUSAL = "mlm", "causal"
OBJECTIVES = {MLM: "Masked LM (BERT-style encoder)", CAUSAL: "Next token (GPT-style decoder)"}
POSITIONALS = ("sinusoidal", "learned")
LIMITS = {"n_layers": (1, 6), "d_model": (16, 256), "n_heads": (1, 8), "d_ff": (16, 1024), "max_len": (8, 128)}
MAX_DROPOUT = 0.8
SINUSOIDAL_TOKEN_STD = 1.0


@dataclass(frozen=True)
class TinyConfig:
    """Architecture of the tiny transformer (all sizes bounded by ``LIMITS``)."""

    objective: str = MLM
    positional: str = "learned"
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.0
    max_len: int = 40

    def validate(self) -> "TinyConfig":
        if self.objective not in OBJECTIVES:
            raise InputError(f"Unknown objective '{self.objective}'; choose one of {', '.join(OBJECTIVES)}.")
        if self.positional not in POSITIONALS:
            raise InputError(f"Unknown position encoding '{self.positional}'; choose {' or '.join(POSITIONALS)}.")
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise InputError(f"{name} must be between {lo} and {hi} (got {value}).")
        if self.d_model % self.n_heads:
            raise InputError(f"d_model ({self.d_model}) must be divisible by the number of heads ({self.n_heads}).")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise InputError("Sinusoidal positions need an even d_model.")
        if not 0.0 <= self.dropout <= MAX_DROPOUT:
            raise InputError(f"Dropout must be between 0 and {MAX_DROPOUT} (got {self.dropout}).")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def sinusoidal_table(n_positions: int, d_model: int) -> np.ndarray:
    """The fixed position encoding of "Attention is all you need". Shape [n_positions, d_model]."""
    pos = np.arange(n_positions)[:, None]
    i = np.arange(d_model // 2)[None, :]
    angle = pos / np.power(10000.0, 2 * i / d_model)  # [n_positions, d_model/2]
    table = np.zeros((n_positions, d_model))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return table


def position_embedding(model) -> torch.nn.Embedding:
    """The position table of a tiny BERT or GPT-2 (also of their classification variants)."""
    return anatomy(model).position_embeddings


def freeze_sinusoidal(model) -> None:
    """Keep a sinusoidal table fixed during training (no gradient, so no weight decay either)."""
    if getattr(model.config, "llmviz_positional", None) == "sinusoidal":
        position_embedding(model).weight.requires_grad_(False)


def build_model(cfg: TinyConfig, tokenizer, seed: int = 0):
    """A freshly initialised tiny transformer (train mode) for ``tokenizer``'s vocabulary."""
    cfg.validate()
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        llmviz_positional=cfg.positional,
        llmviz_tiny=cfg.as_dict(),
    )
    if cfg.objective == MLM:
        from transformers import BertConfig, BertForMaskedLM

        hf_cfg = BertConfig(
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            intermediate_size=cfg.d_ff,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
            max_position_embeddings=cfg.max_len,
            type_vocab_size=1,
            architectures=["BertForMaskedLM"],
            **common,
        )
        model = BertForMaskedLM(hf_cfg)
    else:
        from transformers import GPT2Config, GPT2LMHeadModel

        hf_cfg = GPT2Config(
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            n_inner=cfg.d_ff,
            resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout,
            n_positions=cfg.max_len,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            architectures=["GPT2LMHeadModel"],
            **common,
        )
        model = GPT2LMHeadModel(hf_cfg)
    model.config._attn_implementation = "eager"  # attention weights for the inspection pages
    if cfg.positional == "sinusoidal":
        with torch.no_grad():
            position_embedding(model).weight.copy_(torch.as_tensor(sinusoidal_table(cfg.max_len, cfg.d_model)))
            # Token embeddings on the table's scale (the paper multiplies them by sqrt(d_model)); at the
            # library's default std 0.02 the fixed +-1 table drowns the tokens and nothing is learned.
            anatomy(model).embed.weight.normal_(0.0, SINUSOIDAL_TOKEN_STD)
        freeze_sinusoidal(model)
    return model.train()


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- saving / sharing
def save_trained(model, tokenizer, folder: str | Path, meta: dict | None = None) -> Path:
    """Write config.json + model.safetensors + tokenizer files (+ llmviz_training.json)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if meta is not None:
        (folder / "llmviz_training.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
    return folder


def zip_folder(folder: str | Path) -> bytes:
    """The model folder as a zip (for the download button). Only plain files, no pickles."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(folder).iterdir()):
            if path.is_file():
                zf.write(path, arcname=path.name)
    return buf.getvalue()


def register_trained(
    model,
    tokenizer,
    name: str,
    title: str,
    root: str | Path | None = None,
    meta: dict | None = None,
    owner: str | None = None,
) -> str:
    """Save under ``root`` (default: llmviz cache ``trained/``) and add to the model registry.

    ``owner``: the session the model belongs to (None: every session lists it).

    The registry id carries a hash of the weights, so a re-trained model never collides with a
    cached copy of an earlier one. Returns the registry id.
    """
    import hashlib

    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    model_id = f"{name}-{digest.hexdigest()[:8]}"
    folder = Path(root) if root is not None else cache_dir() / "trained"
    save_trained(model, tokenizer, folder / model_id, meta)
    kind = CAUSAL_LM if model.config.architectures[0].endswith("LMHeadModel") else MASKED_LM
    register_model(
        model_id,
        folder / model_id,
        title,
        f"trained in the training lab ({title})",
        kind_hint=kind,
        replace=True,
        owner=owner,
    )
    return model_id
