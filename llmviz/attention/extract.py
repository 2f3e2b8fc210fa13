"""Attention extraction, special-token hiding, head statistics and rollout.

Public API (other modules depend on these names and signatures):

- :func:`extract_attention` — tokens + attention weights ``[layers, heads, T, T]`` for one text
  (or a sentence pair for encoders), one row per query head (GQA expanded), causal models included.
- :func:`rollout` — attention rollout (Abnar & Zuidema 2020) ``[T, T]``.
- :func:`head_statistics` — per-head entropy / sink / previous-token / diagonal scores ``[layers, heads]``.
- :func:`hide_special` — drop special tokens and renormalise each query row.

The step-by-step recomputation of one head lives in :mod:`llmviz.attention.steps`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.loading import CAUSAL_LM, LoadedModel, ModelFacts
from llmviz.tokens import display_token

log = logging.getLogger(__name__)

MAX_TOKENS = 512  # input limit (tokens, special tokens included); longer inputs are cut with a notice
MAX_CHARS = 100_000  # texts beyond this are cut before tokenising, so tokenising stays fast

# Names of the per-head statistics, in display order, with what each measures.
STATISTICS: dict[str, str] = {
    "entropy": "Mean entropy (nats) of each query row: high = attention spread out, low = focused.",
    "sink": "Mean attention mass each query puts on the first token and special tokens ([CLS]/[SEP]/BOS): "
    "the 'attention sink' many heads use as a no-op.",
    "prev_token": "Mean attention from each token to the token just before it (positional / n-gram heads).",
    "diagonal": "Mean attention from each token to itself.",
}


@dataclass
class AttentionResult:
    """Attention weights of every layer and head for one input.

    ``attention``: float32 ``[layers, heads, T, T]``, indexed ``[layer, head, query, key]``; each row
    sums to 1 (causal models: 0 above the diagonal). GQA models are expanded to one matrix per query head.
    ``special_mask``: bool ``[T]``, True for tokens the tokenizer added ([CLS], [SEP], BOS, ...).
    ``segment``: int ``[T]``, 0 for the first text, 1 for ``text_b`` (encoders with a pair).
    """

    tokens: list[str]
    attention: np.ndarray
    special_mask: np.ndarray
    truncated: bool
    n_tokens_original: int
    facts: ModelFacts
    token_ids: list[int] = field(default_factory=list)
    segment: np.ndarray | None = None
    text: str = ""
    text_b: str | None = None
    max_tokens: int = MAX_TOKENS

    @property
    def n_layers(self) -> int:
        return int(self.attention.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.attention.shape[1])

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def params(self) -> dict[str, Any]:
        """Inputs and settings, for provenance in exports."""
        return {
            "text": self.text,
            "text_b": self.text_b,
            "max_tokens": self.max_tokens,
            "n_tokens": self.n_tokens,
            "n_tokens_original": self.n_tokens_original,
            "truncated": self.truncated,
        }


# ---------------------------------------------------------------- preprocess
def validate_text(text: str | None, what: str = "text") -> str:
    if text is None or not str(text).strip():
        raise InputError(f"The {what} is empty. Type a sentence to see its attention.")
    return str(text)[:MAX_CHARS]


def encode(loaded: LoadedModel, text: str, text_b: str | None = None, max_tokens: int = MAX_TOKENS):
    """Tokenise ``text`` (and ``text_b``), cut to ``max_tokens``.

    Returns ``(encoding dict of [1, T] tensors, special_mask [T] bool, segment [T] int,
    n_tokens_original, truncated)``.
    """
    text = validate_text(text)
    if text_b is not None and not str(text_b).strip():
        text_b = None
    if text_b is not None and loaded.facts.kind == CAUSAL_LM:
        raise InputError(
            "Sentence pairs need an encoder (BERT-style) model; causal models read one text. "
            "Clear the second text or pick an encoder model."
        )
    if text_b is not None:
        text_b = str(text_b)[:MAX_CHARS]
    tok = loaded.tokenizer
    limit = max(4, min(int(max_tokens), int(loaded.facts.max_positions or max_tokens)))
    full = tok(text, text_b, add_special_tokens=True, truncation=False, verbose=False)
    n_original = len(full["input_ids"])
    enc = tok(
        text,
        text_b,
        add_special_tokens=True,
        truncation="longest_first" if text_b else True,
        max_length=limit,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    special = enc.pop("special_tokens_mask")[0].numpy().astype(bool)
    segment = (
        enc["token_type_ids"][0].numpy().astype(int) if "token_type_ids" in enc else np.zeros(len(special), dtype=int)
    )
    if enc["input_ids"].shape[1] == 0:
        raise InputError("The text produced no tokens. Type a few words.")
    return enc, special, segment, n_original, n_original > enc["input_ids"].shape[1]


def forward_inputs(loaded: LoadedModel, enc) -> dict[str, Any]:
    """The tensors the model's forward accepts, on the model's device."""
    keep = ("input_ids", "attention_mask", "token_type_ids")
    if loaded.facts.kind == CAUSAL_LM:
        keep = ("input_ids", "attention_mask")
    return {k: v.to(loaded.device) for k, v in enc.items() if k in keep}


# ---------------------------------------------------------------- forward
def extract_attention(
    loaded: LoadedModel, text: str, text_b: str | None = None, max_tokens: int = MAX_TOKENS
) -> AttentionResult:
    """Run the model once and return every layer's attention weights.

    Raises :class:`InputError` for empty text or a pair on a causal model. Inputs longer than
    ``max_tokens`` (or the model's position limit) are cut: ``truncated`` is then True and
    ``n_tokens_original`` holds the uncut length.
    """
    import torch

    enc, special, segment, n_original, truncated = encode(loaded, text, text_b, max_tokens)
    ids = enc["input_ids"][0].tolist()
    with torch.inference_mode():
        out = loaded.model(**forward_inputs(loaded, enc), output_attentions=True)
    att = getattr(out, "attentions", None)
    if not att or any(a is None for a in att):
        raise UnsupportedModelError(
            f"{loaded.facts.model_id} did not return attention weights. llmviz loads models with eager "
            "attention; this architecture may not support output_attentions."
        )
    t = len(ids)
    attention = np.empty((len(att), *att[0].shape[1:]), dtype=np.float32)  # [L, H, T, T], batch removed
    for i, a in enumerate(att):  # layer by layer: no stacked copy of the whole tensor
        attention[i] = a[0].detach().to("cpu", torch.float32).numpy()
    if attention.shape[2:] != (t, t) or attention.shape[0] != loaded.facts.n_layers:
        raise UnsupportedModelError(
            f"Unexpected attention shape {attention.shape}: expected [{loaded.facts.n_layers}, heads, {t}, {t}]."
        )
    tokens = [display_token(loaded.tokenizer, i) for i in ids]
    return AttentionResult(
        tokens=tokens,
        attention=attention,
        special_mask=special,
        truncated=truncated,
        n_tokens_original=n_original,
        facts=loaded.facts,
        token_ids=ids,
        segment=segment,
        text=str(text),
        text_b=text_b,
        max_tokens=int(max_tokens),
    )


# ---------------------------------------------------------------- postprocess (pure numpy)
def hide_special(attention: np.ndarray, special_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove special tokens (rows and columns) and renormalise every query row to sum to 1.

    ``attention``: ``[..., T, T]``; returns ``(attention [..., T', T'], kept indices [T'])``.
    A row whose whole mass was on special tokens becomes all zeros (nothing left to distribute).
    """
    keep = np.flatnonzero(~np.asarray(special_mask, dtype=bool))
    if keep.size == 0:
        raise InputError("Every token is a special token; nothing is left after hiding them.")
    sub = np.asarray(attention, dtype=np.float32)[..., keep[:, None], keep[None, :]]  # float32: 30x9x512² fits
    total = sub.sum(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
    np.divide(sub, total, out=sub, where=total > 1e-12)
    sub[np.broadcast_to(total <= 1e-12, sub.shape)] = 0.0
    return sub, keep


def without_special(result: AttentionResult) -> AttentionResult:
    """A copy of ``result`` with special tokens removed and rows renormalised."""
    att, keep = hide_special(result.attention, result.special_mask)
    return AttentionResult(
        tokens=[result.tokens[i] for i in keep],
        attention=att,
        special_mask=np.zeros(len(keep), dtype=bool),
        truncated=result.truncated,
        n_tokens_original=result.n_tokens_original,
        facts=result.facts,
        token_ids=[result.token_ids[i] for i in keep] if result.token_ids else [],
        segment=result.segment[keep] if result.segment is not None else None,
        text=result.text,
        text_b=result.text_b,
        max_tokens=result.max_tokens,
    )


def rollout(attention: np.ndarray, add_residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020).

    ``attention``: ``[layers, heads, T, T]``. Per layer: mean over heads, then (with ``add_residual``)
    ``0.5 * A + 0.5 * I`` for the skip connection, rows renormalised; the layers are multiplied
    ``R = Â_L · … · Â_1``. Returns ``[T, T]``: row ``i`` = how much output position ``i`` draws on
    each input token through all layers. Rows sum to 1.
    """
    att = np.asarray(attention)
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise InputError(f"rollout needs attention [layers, heads, T, T]; got shape {att.shape}.")
    t = att.shape[-1]
    eye = np.eye(t)
    result = eye.copy()
    for layer in att:  # one layer at a time in float64 keeps memory at [heads, T, T]
        a = layer.mean(axis=0, dtype=np.float64)  # [T, T]
        if add_residual:
            a = 0.5 * a + 0.5 * eye
        total = a.sum(axis=-1, keepdims=True)
        a = np.divide(a, total, out=np.zeros_like(a), where=total > 1e-12)
        result = a @ result
    return result.astype(np.float32)


def head_statistics(attention: np.ndarray, special_mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-head summary scores, each ``[layers, heads]`` (see :data:`STATISTICS`).

    ``attention``: ``[layers, heads, T, T]``; ``special_mask``: bool ``[T]``.
    - entropy: mean over query rows of ``-Σ_k p log p`` (nats);
    - sink: mean over query rows of the mass on key 0 and on special tokens;
    - prev_token: mean over queries ``i ≥ 1`` of ``A[i, i-1]`` (0 when T == 1);
    - diagonal: mean over queries of ``A[i, i]``.
    """
    att = np.asarray(attention)
    if att.ndim != 4:
        raise InputError(f"head_statistics needs attention [layers, heads, T, T]; got shape {att.shape}.")
    t = att.shape[-1]
    mask = np.asarray(special_mask, dtype=bool).copy()
    if mask.shape != (t,):
        raise InputError(f"special_mask has shape {mask.shape}; expected ({t},) to match the attention.")
    sink_cols = mask.copy()
    sink_cols[0] = True
    idx = np.arange(t)
    out = {name: np.zeros(att.shape[:2], dtype=np.float64) for name in STATISTICS}
    for i, layer in enumerate(att):  # per layer in float64: memory stays at [heads, T, T]
        a = layer.astype(np.float64)
        p = np.clip(a, 0.0, None)
        out["entropy"][i] = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1).mean(axis=-1)
        out["sink"][i] = a[..., sink_cols].sum(axis=-1).mean(axis=-1)
        out["diagonal"][i] = a[..., idx, idx].mean(axis=-1)
        if t > 1:
            out["prev_token"][i] = a[..., idx[1:], idx[:-1]].mean(axis=-1)
    return {name: v.astype(np.float32) for name, v in out.items()}


def top_heads(
    stats: dict[str, np.ndarray], name: str, k: int = 5, largest: bool = True
) -> list[tuple[int, int, float]]:
    """The ``k`` heads with the highest (or lowest) value of statistic ``name`` as (layer, head, value)."""
    if name not in stats:
        raise InputError(f"Unknown statistic '{name}'. Choose one of {', '.join(stats)}.")
    values = stats[name]
    order = np.argsort(values, axis=None)
    if largest:
        order = order[::-1]
    out = []
    for flat in order[:k]:
        layer, head = np.unravel_index(flat, values.shape)
        out.append((int(layer), int(head), float(values[layer, head])))
    return out
