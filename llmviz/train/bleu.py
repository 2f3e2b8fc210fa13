"""BLEU (Papineni et al. 2002) on word lists, one reference per sentence.

Corpus BLEU = BP * exp(mean_n log p_n), n = 1..max_n, where p_n is the clipped n-gram precision summed
over the corpus (matches of an n-gram count at most as often as it appears in the reference) and the
brevity penalty BP = 1 if c > r else exp(1 - r / c) (c, r: total hypothesis and reference lengths).
Reported on 0-100 like sacrebleu. ``smooth=True`` adds 1 to the matches and counts of n >= 2
("add-one", Lin & Och 2004) so one sentence without a 4-gram match does not score 0.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence


def ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int = 4, smooth: bool = False
) -> float:
    """BLEU of word-list ``hypotheses`` against one word-list reference each, 0-100."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp, ref in zip(hypotheses, references):
        c, r = c + len(hyp), r + len(ref)
        for n in range(1, max_n + 1):
            h, rf = ngrams(hyp, n), ngrams(ref, n)
            matches[n - 1] += sum(min(k, rf[g]) for g, k in h.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if c == 0:
        return 0.0
    logs = []
    for n in range(max_n):
        m, t = matches[n], totals[n]
        if smooth and n > 0:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        logs.append(math.log(m / t))
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return 100.0 * bp * math.exp(sum(logs) / max_n)


def sentence_bleu(hypothesis: Sequence[str], reference: Sequence[str], max_n: int = 4) -> float:
    """Smoothed BLEU of one sentence (0-100)."""
    return corpus_bleu([hypothesis], [reference], max_n, smooth=True)
