"""Minimal-pair scoring (CrowS-Pairs, Nangia et al. 2020) for masked and causal LMs.

Masked LM — pseudo-log-likelihood exactly as CrowS-Pairs ``metric.py`` (``mask_unigram``):
both sentences are tokenized with special tokens; ``difflib.SequenceMatcher`` over the token ids
finds the tokens the two sentences share (``equal`` opcodes); for every shared token except the
first and last (the [CLS]/[SEP] ends) that token alone is masked and ``log p(token)`` at the mask is
added to the sentence score. All masked copies of a sentence (and of several pairs) go through the
model in one padded forward pass instead of one pass per copy.

Causal LM — total log-likelihood of each sentence (prefix token + sentence tokens), as the
lm-eval-harness ``crows_pairs`` task scores it, batched with padding.

A pair is counted as stereotype-consistent when ``score_more > score_less`` (ties count 0), as metric.py.

``precision="bf16"`` (:mod:`llmviz.precision`) scores on the model's bf16 twin (linear layers in bfloat16);
the first pair is then scored again in float32 and the largest change of its two scores is kept
(``PairScores.deviation``, in nats), so a reader sees how far the fast mode moved this run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from llmviz.attention.extract import extract_attention
from llmviz.bias import scoring, stats
from llmviz.bias.pairs_data import COLUMNS
from llmviz.errors import InputError
from llmviz.limits import MAX_CSV_ROWS
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel
from llmviz.precision import EXACT, max_deviation, on_precision
from llmviz.tokens import display_token

PAIRS_PER_CHUNK = 32  # pairs scored per group of forward passes (bounds memory on large files)
MAX_PAIRS_UI = MAX_CSV_ROWS


@dataclass
class PairScores:
    """Scores of P minimal pairs.

    frame: the four CrowS-Pairs columns, P rows. score_more / score_less: [P] log-likelihoods
    (natural log; pseudo-log-likelihood over shared tokens for MLMs). n_tokens: [P] tokens scored per
    sentence of the pair (MLM: shared tokens; causal: tokens of sent_more).
    """

    frame: pd.DataFrame
    score_more: np.ndarray
    score_less: np.ndarray
    method: str  # "mlm_pll" | "causal_loglik"
    n_tokens: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    precision: str = EXACT  # the arithmetic that ran (llmviz.precision.MODES)
    deviation: float | None = None  # bf16: max |Δ score| of the first pair against float32 (nats)

    @property
    def diff(self) -> np.ndarray:
        """[P] score_more - score_less (> 0: the more-stereotypical sentence is more likely)."""
        return self.score_more - self.score_less

    def summary(self, n_boot: int = stats.N_BOOT, seed: int = stats.SEED) -> dict:
        return stats.summary_by_type(self.score_more, self.score_less, self.frame["bias_type"], n_boot, seed)

    def table(self) -> pd.DataFrame:
        df = self.frame[list(COLUMNS)].copy()
        df["score_more"] = self.score_more
        df["score_less"] = self.score_less
        df["difference"] = self.diff
        df["stereotype_preferred"] = self.diff > 0
        return df

    def records(self) -> list[dict]:
        return [
            {**{c: r[c] for c in COLUMNS}, "score_more": float(r["score_more"]), "score_less": float(r["score_less"])}
            for r in self.table().to_dict(orient="records")
        ]


def get_span(seq1: Iterable[int], seq2: Iterable[int]) -> tuple[list[int], list[int]]:
    """Indices of the tokens two sequences share (difflib ``equal`` blocks), as metric.py ``get_span``."""
    s1, s2 = [str(x) for x in seq1], [str(x) for x in seq2]
    t1, t2 = [], []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, s1, s2).get_opcodes():
        if op == "equal":
            t1 += list(range(a0, a1))
            t2 += list(range(b0, b1))
    return t1, t2


def _masked_copies(ids: list[int], positions: list[int], mid: int):
    rows = [[mid if j == p else x for j, x in enumerate(ids)] for p in positions]
    return rows, [[(p, ids[p])] for p in positions]


def crows_positions(ids1: list[int], ids2: list[int]) -> tuple[list[int], list[int]]:
    """Shared positions metric.py masks: all shared tokens but the first and last."""
    t1, t2 = get_span(ids1, ids2)
    return t1[1:-1], t2[1:-1]


def _mlm_rows(loaded: LoadedModel, chunk: list[tuple[str, str]], mid: int):
    """A chunk's masked copies (metric.py: one shared token masked per row): rows, queries, owner = (pair in
    the chunk, 0 = more / 1 = less) per row, and the tokens scored per pair."""
    rows, queries, owner, n_tok = [], [], [], []
    for k, (s_more, s_less) in enumerate(chunk):
        ids1, ids2 = scoring.encode(loaded, s_more), scoring.encode(loaded, s_less)
        p1, p2 = crows_positions(ids1, ids2)
        n_tok.append(len(p1))
        for side, (ids, pos) in enumerate(((ids1, p1), (ids2, p2))):
            r, q = _masked_copies(ids, pos, mid)
            rows += r
            queries += q
            owner += [(k, side)] * len(r)
    return rows, queries, owner, n_tok


def _causal_rows(loaded: LoadedModel, chunk: list[tuple[str, str]]) -> list[list[int]]:
    """A chunk's rows: [prefix] + sentence for sent_more and sent_less of each pair, in turn."""
    return [scoring.causal_row(loaded, s) for pair in chunk for s in pair]


def _chunks(pairs: list[tuple[str, str]]):
    for start in range(0, len(pairs), PAIRS_PER_CHUNK):
        yield start, pairs[start : start + PAIRS_PER_CHUNK]


def _score_mlm(loaded: LoadedModel, pairs, batch_size: int, more, less, n_tok, tick: Callable[[int], None]) -> None:
    mid = scoring.mask_id(loaded)
    for start, chunk in _chunks(pairs):
        rows, queries, owner, n = _mlm_rows(loaded, chunk, mid)
        n_tok[start : start + len(chunk)] = n
        lps = scoring.mlm_masked_logprobs(loaded, rows, queries, batch_size=batch_size)
        for (k, side), lp in zip(owner, lps):
            (more if side == 0 else less)[start + k] += float(lp[0])
        tick(len(chunk))


def _score_causal(loaded: LoadedModel, pairs, batch_size: int, more, less, n_tok, tick: Callable[[int], None]) -> None:
    for start, chunk in _chunks(pairs):
        lps = scoring.causal_token_logprobs(loaded, _causal_rows(loaded, chunk), batch_size=batch_size)
        for k in range(len(chunk)):
            more[start + k], less[start + k] = lps[2 * k].sum(), lps[2 * k + 1].sum()
            n_tok[start + k] = len(lps[2 * k])
        tick(len(chunk))


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    if frame is None or len(frame) == 0:
        raise InputError("No pairs to score. Load the starter set or upload a CrowS-Pairs CSV.")
    return list(zip(frame["sent_more"].astype(str), frame["sent_less"].astype(str)))


def _scorer(loaded: LoadedModel):
    kind = loaded.facts.kind
    if kind == MASKED_LM:
        return _score_mlm, "mlm_pll"
    if kind == CAUSAL_LM:
        return _score_causal, "causal_loglik"
    scoring.mask_id(loaded)  # raises the explanatory error for encoders
    raise AssertionError("unreachable")


def first_pair_deviation(
    loaded: LoadedModel, pair: tuple[str, str], fast: tuple[float, float], batch_size: int = scoring.DEFAULT_BATCH
) -> float:
    """max |fast − float32| over the two scores of ``pair`` (``fast``: its scores from a fast run), the pair
    scored again alone in float32 on ``loaded`` (nats)."""
    score, _ = _scorer(loaded)
    more, less, n_tok = np.zeros(1), np.zeros(1), np.zeros(1, dtype=int)
    score(loaded, [pair], batch_size, more, less, n_tok, lambda n: None)
    return max_deviation(fast, [more[0], less[0]])


def score_pairs(
    loaded: LoadedModel,
    frame: pd.DataFrame,
    batch_size: int = scoring.DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    partial: Callable[[int, int, PairScores], None] | None = None,
    precision: str = EXACT,
) -> PairScores:
    """Score every pair of ``frame`` (validated CrowS-Pairs columns). ``progress(n)`` gets pairs done;
    ``partial(done, total, scores)`` after each chunk, ``scores`` the pairs done so far (the first ``done``).
    ``precision``: a mode of :mod:`llmviz.precision` (exact float32 by default; see the module doc)."""
    pairs = _pairs(frame)
    score, method = _scorer(loaded)
    run_on = on_precision(loaded, precision)
    kind = loaded.facts.kind
    frame = frame.reset_index(drop=True)
    facts = {"model_id": loaded.facts.model_id, "kind": kind, "batch_size": batch_size, "precision": precision}
    more, less, n_tok = np.zeros(len(pairs)), np.zeros(len(pairs)), np.zeros(len(pairs), dtype=int)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(n)
        if partial:  # pages grow the table and its running estimate as the pairs come
            k = done[0]
            head = PairScores(
                frame.head(k), more[:k].copy(), less[:k].copy(), method, n_tok[:k].copy(), facts, precision
            )
            partial(k, len(pairs), head)

    score(run_on, pairs, batch_size, more, less, n_tok, tick)
    deviation = None
    if precision != EXACT:
        deviation = first_pair_deviation(loaded, pairs[0], (more[0], less[0]), batch_size)
        facts = {**facts, "deviation": deviation}
    return PairScores(frame, more, less, method, n_tok, facts, precision, deviation)


def call_shapes(
    loaded: LoadedModel, frame: pd.DataFrame, batch_size: int = scoring.DEFAULT_BATCH
) -> list[tuple[int, int]]:
    """(rows, padded width) of every forward pass :func:`score_pairs` makes for ``frame`` (tokenises, runs no
    model): what ``llmviz.estimate.pairs_work`` counts."""
    pairs = _pairs(frame)
    shapes: list[tuple[int, int]] = []
    if loaded.facts.kind == MASKED_LM:
        mid = scoring.mask_id(loaded)
        for _, chunk in _chunks(pairs):
            rows = _mlm_rows(loaded, chunk, mid)[0]
            shapes += scoring.batch_shapes([len(r) for r in rows], batch_size)
    elif loaded.facts.kind == CAUSAL_LM:
        budget = scoring.causal_budget(loaded)
        for _, chunk in _chunks(pairs):
            shapes += scoring.batch_shapes([len(r) for r in _causal_rows(loaded, chunk)], batch_size, budget)
    else:
        scoring.mask_id(loaded)
    return shapes


# ---------------------------------------------------------------- drill-down of one pair
@dataclass
class PairDetail:
    """Token-level view of one pair.

    tokens_more [T1], tokens_less [T2]: display tokens. lp_more [T1], lp_less [T2]: per-token
    log-probabilities (MLM: token masked alone; causal: given the tokens before it), NaN where not
    scored. shared_more / shared_less [S]: aligned indices of the shared tokens that are scored.
    token_diff [S]: lp_more[shared_more] - lp_less[shared_less].
    attention_diff [L, H, A, A]: attention of sent_more minus attention of sent_less, restricted to
    the A tokens both share (rows no longer sum to 1 once the differing tokens are dropped);
    attention_tokens [A]. None when the model gives no attention.
    """

    sent_more: str
    sent_less: str
    tokens_more: list[str]
    tokens_less: list[str]
    lp_more: np.ndarray
    lp_less: np.ndarray
    shared_more: list[int]
    shared_less: list[int]
    token_diff: np.ndarray
    method: str
    attention_diff: np.ndarray | None = None
    attention_tokens: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def shared_tokens(self) -> list[str]:
        return [self.tokens_more[i] for i in self.shared_more]

    @property
    def score_more(self) -> float:
        """The sentence's score as ``score_pairs`` gives it: the sum of its scored tokens (MLM: the
        shared tokens, CrowS-Pairs' PLL; causal: every token after the prefix)."""
        return float(np.nansum(self.lp_more))

    @property
    def score_less(self) -> float:
        return float(np.nansum(self.lp_less))

    @property
    def changed_diff(self) -> float:
        """The part of score_more - score_less that the shared tokens do not explain: the changed
        words' own log-probabilities (0 for the MLM score, which counts shared tokens only)."""
        return self.score_more - self.score_less - float(np.sum(self.token_diff))

    def token_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "token": self.shared_tokens,
                "log_p_more": self.lp_more[self.shared_more],
                "log_p_less": self.lp_less[self.shared_less],
                "difference": self.token_diff,
            }
        )


def pair_detail(loaded: LoadedModel, sent_more: str, sent_less: str, with_attention: bool = True) -> PairDetail:
    """Per-token scores of one pair and the difference of its attention maps."""
    tok = loaded.tokenizer
    if loaded.facts.kind == MASKED_LM:
        mid = scoring.mask_id(loaded)
        ids1, ids2 = scoring.encode(loaded, sent_more), scoring.encode(loaded, sent_less)
        p1, p2 = crows_positions(ids1, ids2)
        r1, q1 = _masked_copies(ids1, p1, mid)
        r2, q2 = _masked_copies(ids2, p2, mid)
        lps = scoring.mlm_masked_logprobs(loaded, r1 + r2, q1 + q2)
        lp1, lp2 = np.full(len(ids1), np.nan), np.full(len(ids2), np.nan)
        lp1[p1] = [float(x[0]) for x in lps[: len(p1)]]
        lp2[p2] = [float(x[0]) for x in lps[len(p1) :]]
        method = "mlm_pll"
    elif loaded.facts.kind == CAUSAL_LM:
        ids1, ids2 = scoring.causal_row(loaded, sent_more), scoring.causal_row(loaded, sent_less)
        a, b = scoring.causal_token_logprobs(loaded, [ids1, ids2])
        lp1 = np.concatenate([[np.nan], a])
        lp2 = np.concatenate([[np.nan], b])
        s1, s2 = get_span(ids1, ids2)
        pairs = [(i, j) for i, j in zip(s1, s2) if i > 0 and j > 0]  # the prefix token is not scored
        p1, p2 = [i for i, _ in pairs], [j for _, j in pairs]
        method = "causal_loglik"
    else:
        scoring.mask_id(loaded)
        raise AssertionError("unreachable")
    detail = PairDetail(
        sent_more,
        sent_less,
        [display_token(tok, i) for i in ids1],
        [display_token(tok, i) for i in ids2],
        lp1,
        lp2,
        list(p1),
        list(p2),
        lp1[p1] - lp2[p2],
        method,
    )
    if with_attention:
        attention_difference(loaded, detail)
    return detail


def attention_difference(loaded: LoadedModel, detail: PairDetail) -> PairDetail:
    """Fill ``detail.attention_diff`` [L, H, A, A] aligned on the tokens both sentences share."""
    r1 = extract_attention(loaded, detail.sent_more)
    r2 = extract_attention(loaded, detail.sent_less)
    if r1.truncated or r2.truncated:
        detail.notices.append("A sentence was cut to the attention view's token limit; only its start is compared.")
    s1, s2 = get_span(r1.token_ids, r2.token_ids)
    if not s1:
        detail.notices.append("The two sentences share no tokens, so their attention maps cannot be aligned.")
        return detail
    a1 = r1.attention[:, :, s1][:, :, :, s1]  # [L, H, A, A]
    a2 = r2.attention[:, :, s2][:, :, :, s2]
    detail.attention_diff = (a1 - a2).astype(np.float32)
    detail.attention_tokens = [r1.tokens[i] for i in s1]
    return detail
