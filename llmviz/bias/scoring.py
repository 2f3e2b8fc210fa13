"""Batched log-probability scoring shared by every bias probe.

Two primitives, both batched with right padding and an attention mask:

* :func:`mlm_masked_logprobs` — for a masked LM: rows of token ids that already contain mask
  tokens, and per row a list of ``(position, target_id)`` queries; returns the log-probability of
  each target at its position. Used by the template probe (several masks per row) and by the
  CrowS-Pairs pseudo-log-likelihood (one mask per row, all copies of a sentence batched).
* :func:`causal_token_logprobs` — for a causal LM: rows of token ids; returns, per row, the
  log-probability of every token given the tokens before it (array of length ``len(row) - 1``).

Padding is on the right, so real tokens keep their positions and a causal model never attends
to a pad; BERT-style models ignore pads through the attention mask. Results equal unpadded,
one-at-a-time computation up to float rounding (tests check 1e-5).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import numpy as np

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel

DEFAULT_BATCH = 32
# Bound on padded tokens in one forward pass (rows x longest row); keeps memory flat on long inputs.
MAX_TOKENS_PER_BATCH = 4096
# Bound on logits in one causal pass (tokens x vocabulary): smollm2 (49k vocab) keeps 4096 tokens, gemma3's
# 262k vocabulary gets 768, so its float32 logits and log-softmax stay under ~1.6 GB together.
MAX_LOGIT_ELEMENTS = 4096 * 49152
MAX_SENTENCE_TOKENS = 256


def pad_id(tokenizer) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def prefix_token_id(tokenizer) -> int | None:
    """Token put before a sentence so its first word is scored too (as lm-eval-harness does)."""
    for name in ("bos_token_id", "eos_token_id", "cls_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return None


def mask_id(loaded: LoadedModel) -> int:
    tok = loaded.tokenizer
    if loaded.facts.kind != MASKED_LM or tok.mask_token_id is None:
        raise UnsupportedModelError(
            f"This probe needs a masked language model (e.g. a BERT *ForMaskedLM folder or the training "
            f"lab's tiny MLM); '{loaded.facts.model_id}' is a {loaded.facts.kind.replace('_', ' ')}. "
            "Embedding tests (WEAT/SEAT, mitigation) work with any model; causal LMs such as smollm2 "
            "cover the sentence log-likelihood and counterfactual probes."
        )
    return int(tok.mask_token_id)


def _batches(lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_TOKENS_PER_BATCH) -> list[list[int]]:
    """Group row indices (sorted by length, to waste little padding) into bounded batches."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in cur] + [lengths[i]])
        if cur and (len(cur) >= batch_size or longest * (len(cur) + 1) > max_tokens):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def batch_shapes(
    lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_TOKENS_PER_BATCH
) -> list[tuple[int, int]]:
    """(rows, padded width) of each forward pass the scorers make for rows of ``lengths`` tokens (the work an
    estimate counts: ``llmviz.estimate``)."""
    return [(len(b), max(lengths[i] for i in b)) for b in _batches(lengths, batch_size, max_tokens)]


def causal_budget(loaded: LoadedModel) -> int:
    """Padded tokens per causal forward pass: :data:`MAX_TOKENS_PER_BATCH`, fewer for a large vocabulary."""
    return max(1, min(MAX_TOKENS_PER_BATCH, MAX_LOGIT_ELEMENTS // max(1, loaded.facts.vocab_size)))


def pad_batch(rows: Sequence[Sequence[int]], pad: int):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        att[i, : len(r)] = 1
    return ids, att


@contextmanager
def _only_positions(model, b_idx, p_idx):
    """Make the output projection (hidden -> vocab) run only at the queried positions.

    A scoped forward pre-hook on the unembedding (:attr:`~llmviz.models.anatomy.Anatomy.unembed`) turns its input [B, T, hidden]
    into [Q, hidden], so logits come back as [Q, vocab] instead of [B, T, vocab] (the vocab
    projection dominates the cost of small MLMs). Yields False when the model has no such module.
    """
    import torch

    head = anatomy(model).unembed
    if head is None:
        yield False
        return
    bi, pi = torch.tensor(b_idx), torch.tensor(p_idx)

    def pick(_module, args):
        hidden = args[0]
        return (hidden[bi.to(hidden.device), pi.to(hidden.device)],) + tuple(args[1:])  # [Q, hidden]

    handle = head.register_forward_pre_hook(pick)
    try:
        yield True
    finally:
        handle.remove()


def mlm_masked_logprobs(
    loaded: LoadedModel,
    rows: Sequence[Sequence[int]],
    queries: Sequence[Sequence[tuple[int, int]]],
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Log-probabilities at masked positions.

    rows: R token-id lists (with mask ids already placed); queries: per row, ``(position, target_id)``.
    Returns R float64 arrays, array ``r`` of shape ``[len(queries[r])]`` (natural log).
    ``progress(n)`` is called with the number of rows finished after each batch.
    """
    import torch

    mask_id(loaded)
    if len(rows) != len(queries):
        raise ValueError(f"{len(rows)} rows but {len(queries)} query lists")
    out: list[np.ndarray] = [np.zeros(0)] * len(rows)
    pad = pad_id(loaded.tokenizer)
    device = loaded.device
    for batch in _batches([len(r) for r in rows], batch_size):
        ids, att = pad_batch([rows[i] for i in batch], pad)
        b_idx, p_idx, t_idx = [], [], []
        for k, i in enumerate(batch):
            for pos, tgt in queries[i]:
                b_idx.append(k)
                p_idx.append(pos)
                t_idx.append(tgt)
        with torch.inference_mode(), _only_positions(loaded.model, b_idx, p_idx) as selected:
            logits = loaded.model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
        if selected and logits.dim() == 2 and logits.shape[0] == len(b_idx):
            picked = logits.float()  # [Q, vocab]
        else:  # the hook did not apply (unusual head): pick from the full [B, T, vocab] logits
            with torch.inference_mode():
                logits = loaded.model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
            picked = logits[torch.tensor(b_idx), torch.tensor(p_idx)].float()
        with torch.inference_mode():
            lp = torch.log_softmax(picked, dim=-1)[torch.arange(len(t_idx)), torch.tensor(t_idx)]
        lp = lp.double().cpu().numpy()
        start = 0
        for i in batch:
            n = len(queries[i])
            out[i] = lp[start : start + n]
            start += n
        if progress:
            progress(len(batch))
    return out


def causal_token_logprobs(
    loaded: LoadedModel,
    rows: Sequence[Sequence[int]],
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Per-token log-probabilities for a causal LM.

    rows: R token-id lists (each starting with the prefix token when one is used).
    Returns R float64 arrays; array ``r`` has shape ``[len(rows[r]) - 1]``: entry j is
    ``log p(rows[r][j+1] | rows[r][:j+1])``.
    """
    import torch

    if loaded.facts.kind != CAUSAL_LM:
        raise UnsupportedModelError(
            f"Sentence log-likelihood by next-token prediction needs a causal LM (e.g. smollm2); "
            f"'{loaded.facts.model_id}' is a {loaded.facts.kind.replace('_', ' ')}."
        )
    if any(len(r) < 2 for r in rows):
        raise InputError("A sentence is empty after tokenization; every sentence needs at least one token.")
    out: list[np.ndarray] = [np.zeros(0)] * len(rows)
    pad = pad_id(loaded.tokenizer)
    device = loaded.device
    for batch in _batches([len(r) for r in rows], batch_size, causal_budget(loaded)):
        ids, att = pad_batch([rows[i] for i in batch], pad)
        with torch.inference_mode():
            logits = loaded.model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            lp = torch.log_softmax(logits[:, :-1], dim=-1)  # [B, T-1, vocab]
            tok_lp = lp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)  # [B, T-1]
        tok_lp = tok_lp.double().cpu().numpy()
        for k, i in enumerate(batch):
            out[i] = tok_lp[k, : len(rows[i]) - 1]
        if progress:
            progress(len(batch))
    return out


def encode(loaded: LoadedModel, text: str, special: bool = True) -> list[int]:
    """Token ids of ``text``; refuses empty text and cuts nothing silently."""
    if not text or not text.strip():
        raise InputError("A sentence is empty. Type a sentence with at least one word.")
    ids = loaded.tokenizer(text, add_special_tokens=special)["input_ids"]
    if len(ids) > MAX_SENTENCE_TOKENS:
        raise InputError(
            f"A sentence has {len(ids)} tokens; the limit is {MAX_SENTENCE_TOKENS}. "
            "Shorten it (bias probes score single sentences)."
        )
    return list(ids)


def causal_row(loaded: LoadedModel, text: str) -> list[int]:
    """[prefix token] + sentence tokens (no other special tokens), as lm-eval-harness scores them."""
    ids = encode(loaded, text, special=False)
    pre = prefix_token_id(loaded.tokenizer)
    return ([pre] if pre is not None else []) + ids
