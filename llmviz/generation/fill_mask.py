"""Fill-mask: top-k predictions for each mask (masked LMs), or candidate scoring (causal LMs).

Masked LM: the text is tokenized with the model's own tokenizer, the mask positions are found
by the mask token id (never assumed), and each position's prediction is ``softmax(logits[pos])``
over the whole vocabulary. Several masks are predicted in one forward pass, each with the others
still masked (they are independent guesses, as in the transformers pipeline).

Causal LM: a left-to-right model cannot look at the right context directly, so each candidate
word is put into the slot and the whole sentence is scored by its log-likelihood
``sum_t log p(x_t | x_<t)``. The shares reported are ``softmax`` of those log-likelihoods over the
candidate list only — not probabilities over the vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from llmviz.bias.scoring import causal_token_logprobs, prefix_token_id
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.generation.generate import cut_words
from llmviz.limits import MAX_CANDIDATE_CHARS, MAX_CANDIDATES, MAX_FILL_WORDS  # noqa: E402 - longer text is cut
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel

MAX_MASKS = 8
MAX_TOP_K = 50
MASK_ALIASES = re.compile(r"\[mask\]|<mask>", re.IGNORECASE)
CLASSIC_EXAMPLE = "This is a [MASK] sentence."
_WORD = re.compile(r"^\w[\w'’-]*$")


@dataclass
class SlotPrediction:
    """Predictions for one mask. Arrays have shape ``[k]`` (k candidates, best first)."""

    mask_number: int  # 1-based, in reading order
    position: int | None  # token index of the mask (masked LM); None for causal scoring
    candidates: list[str]
    probs: np.ndarray  # masked LM: softmax over the vocabulary; causal: share among candidates
    token_ids: list[int] | None = None
    log_likelihoods: np.ndarray | None = None  # causal: sentence log-likelihood (nats) per candidate
    n_tokens: list[int] | None = None  # causal: scored tokens per sentence
    filled: list[str] = field(default_factory=list)  # the text with each candidate in this slot


@dataclass
class FillMaskResult:
    model_id: str
    method: str  # "masked_lm" | "causal_scoring"
    candidate_source: str  # "vocabulary" | "user" | "proposals"
    text: str  # the text actually used (after bounding, masks normalised)
    mask_token: str
    slots: list[SlotPrediction]
    notices: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        out = []
        for s in self.slots:
            for r, c in enumerate(s.candidates):
                row = {
                    "mask": s.mask_number,
                    "rank": r + 1,
                    "candidate": c,
                    "prob": float(s.probs[r]),
                    "method": self.method,
                    "source": self.candidate_source,
                }
                if s.log_likelihoods is not None:
                    row["log_likelihood"] = float(s.log_likelihoods[r])
                    row["n_tokens"] = s.n_tokens[r]
                out.append(row)
        return out


def _bound(text: str) -> tuple[str, list[str], int]:
    """Strip, check non-empty, cut to MAX_FILL_WORDS. Returns (text, notices, masks lost to the cut)."""
    text = (text or "").strip()
    if not text:
        raise InputError(f"The text is empty. Type a sentence with a [MASK], e.g. '{CLASSIC_EXAMPLE}'")
    cut, n_words = cut_words(text, MAX_FILL_WORDS)
    notices, lost = [], 0
    if n_words > MAX_FILL_WORDS:
        lost = len(MASK_ALIASES.findall(text)) - len(MASK_ALIASES.findall(cut))
        notices.append(
            f"The text had {n_words:,} words; only the first {MAX_FILL_WORDS:,} are used"
            + (f" ({lost} mask(s) after the cut ignored)." if lost else ".")
        )
    return cut, notices, lost


def _no_mask(mask_token: str, lost: int) -> InputError:
    if lost:
        return InputError(
            f"All masks are after the first {MAX_FILL_WORDS:,} words, which is all that is "
            "used. Move a [MASK] into the beginning of the text."
        )
    return InputError(
        f"No mask in the text. Write [MASK] (or the model's own mask token {mask_token}) where "
        f"the missing word goes, e.g. '{CLASSIC_EXAMPLE}'"
    )


def normalize_masks(text: str, mask_token: str) -> tuple[str, int]:
    """Replace ``[MASK]``/``<mask>`` (any case) by the model's mask token; returns (text, n_masks)."""
    out = MASK_ALIASES.sub(lambda _: mask_token, text)
    return out, out.count(mask_token)


def fill_mask(loaded: LoadedModel, text: str, top_k: int = 10, candidates: list[str] | None = None) -> FillMaskResult:
    """Dispatch on the model kind: masked LM prediction or causal candidate scoring."""
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise InputError(f"Top-k must be between 1 and {MAX_TOP_K}.")
    if loaded.facts.kind == MASKED_LM:
        return fill_mask_mlm(loaded, text, top_k)
    if loaded.facts.kind == CAUSAL_LM:
        return fill_mask_causal(loaded, text, candidates, top_k)
    raise UnsupportedModelError(
        f"{loaded.facts.model_id} is an encoder without a language-model head, so it cannot predict words. "
        "Load a masked LM (a *ForMaskedLM folder, or one from the training lab) or a causal LM such as smollm2."
    )


# ---------------------------------------------------------------- masked LM
def fill_mask_mlm(loaded: LoadedModel, text: str, top_k: int = 10) -> FillMaskResult:
    import torch

    tok = loaded.tokenizer
    mask_token = tok.mask_token
    if mask_token is None:
        raise UnsupportedModelError(f"The tokenizer of {loaded.facts.model_id} has no mask token.")
    text, notices, lost = _bound(text)
    text, _ = normalize_masks(text, mask_token)
    max_len = loaded.facts.max_positions or 512
    enc = tok(text, return_tensors="pt", truncation=True, max_length=max_len)
    full_len = len(tok(text, add_special_tokens=True)["input_ids"])
    if full_len > max_len:
        notices.append(f"The text is {full_len} tokens; the model reads at most {max_len}, the rest is ignored.")
    ids = enc["input_ids"][0]  # [T]
    positions = (ids == tok.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        if text.count(mask_token):
            raise InputError(
                f"The masks are beyond the first {max_len} tokens the model reads. "
                "Move a [MASK] nearer the beginning of the text."
            )
        raise _no_mask(mask_token, lost)
    if len(positions) > MAX_MASKS:
        raise InputError(f"The text has {len(positions)} masks; at most {MAX_MASKS} are supported at once.")
    with torch.inference_mode():
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        logits = loaded.model(**enc).logits[0].float()  # [T, vocab]
    slots = []
    for n, pos in enumerate(positions):
        probs = logits[pos].softmax(-1)
        top = torch.topk(probs, int(top_k))
        cand_ids = top.indices.tolist()
        words = [tok.decode([i]).strip() for i in cand_ids]
        filled = [_fill_nth(text, mask_token, n, w) for w in words]
        slots.append(
            SlotPrediction(
                n + 1, pos, words, top.values.cpu().numpy().astype(np.float64), token_ids=cand_ids, filled=filled
            )
        )
    return FillMaskResult(
        loaded.facts.model_id,
        "masked_lm",
        "vocabulary",
        text,
        mask_token,
        slots,
        notices,
        tok.convert_ids_to_tokens(ids.tolist()),
    )


def _fill_nth(text: str, mask_token: str, n: int, word: str) -> str:
    parts = text.split(mask_token)
    return mask_token.join(parts[: n + 1]) + word + mask_token.join(parts[n + 1 :])


# ---------------------------------------------------------------- causal LM scoring
def sentence_log_likelihoods(loaded: LoadedModel, sentences: list[str], batch_size: int = 8):
    """``sum_t log p(x_t | x_<t)`` (nats) for each sentence, scored after a document-start token
    (bos, else eos, else cls; without one the first token is not scored). Returns
    (log-likelihoods ``[n]``, scored token counts ``[n]``). Shares the bias probes' batched scorer."""
    tok = loaded.tokenizer
    prefix = prefix_token_id(tok)
    rows = [([prefix] if prefix is not None else []) + tok(s, add_special_tokens=False)["input_ids"] for s in sentences]
    per_token = causal_token_logprobs(loaded, rows, batch_size=batch_size)  # each [len(row) - 1]
    return np.array([lp.sum() for lp in per_token], dtype=np.float64), [len(lp) for lp in per_token]


def propose_words(loaded: LoadedModel, left: str, n: int) -> list[str]:
    """The ``n`` most likely next tokens after ``left`` that are whole words (letters/digits)."""
    import torch

    tok = loaded.tokenizer
    prefix = prefix_token_id(tok)
    ids = ([prefix] if prefix is not None else []) + tok(left.rstrip(), add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(
            "The slot is at the very start and this tokenizer has no start token; "
            "type your own candidate words instead."
        )
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([ids], device=loaded.device)).logits[0, -1].float()
    words: list[str] = []
    for i in torch.topk(logits, min(400, logits.shape[-1])).indices.tolist():
        w = tok.decode([i]).strip()
        if _WORD.match(w) and w not in words:
            words.append(w)
            if len(words) == n:
                break
    return words


def parse_candidates(raw: str | list[str] | None) -> list[str]:
    """Comma/newline separated words (Chinese ，、； too) -> unique, stripped list (at most MAX_CANDIDATES)."""
    if raw is None:
        return []
    items = (
        raw
        if isinstance(raw, list)
        else re.split(r"[,\n;，、；]", raw[: (MAX_CANDIDATE_CHARS + 2) * (MAX_CANDIDATES + 1)])
    )
    out: list[str] = []
    for item in items:
        w = item.strip()
        if len(w) > MAX_CANDIDATE_CHARS:
            raise InputError(
                f"A candidate is longer than {MAX_CANDIDATE_CHARS} characters; each must be a word or a "
                "short phrase. Separate candidates with commas."
            )
        if w and w not in out:
            out.append(w)
    if len(out) > MAX_CANDIDATES:
        raise InputError(f"{len(out)} candidates given; at most {MAX_CANDIDATES} are scored at once.")
    return out


def fill_mask_causal(loaded: LoadedModel, text: str, candidates=None, top_k: int = 10) -> FillMaskResult:
    """Score candidates in the single slot by sentence log-likelihood (see the module docstring)."""
    slot = "[MASK]"
    text, notices, lost = _bound(text)
    text, n_masks = normalize_masks(text, slot)
    if n_masks == 0:
        raise _no_mask(slot, lost)
    if n_masks > 1:
        raise InputError(
            f"The text has {n_masks} masks. Candidate scoring with a causal model fills one "
            "slot at a time; keep one [MASK] (or load a masked LM for several)."
        )
    left, right = text.split(slot)
    words = parse_candidates(candidates)
    source = "user" if words else "proposals"
    if not words:
        words = propose_words(loaded, left, int(top_k))
    filled = [left + w + right for w in words]
    ll, counts = sentence_log_likelihoods(loaded, filled)
    order = np.argsort(-ll, kind="stable")
    shares = np.exp(ll - ll.max())
    shares /= shares.sum()
    slot_pred = SlotPrediction(
        1,
        None,
        [words[i] for i in order],
        shares[order],
        log_likelihoods=ll[order],
        n_tokens=[counts[i] for i in order],
        filled=[filled[i] for i in order],
    )
    return FillMaskResult(loaded.facts.model_id, "causal_scoring", source, text, slot, [slot_pred], notices)
