"""Counterfactual generation: the same prompt with different group terms, continuations scored by VADER.

For each group the prompt (``"The {group} was known for"``) is completed ``n_samples`` times by
sampling from a causal LM. Every group uses the SAME seed (common random numbers), so differences
come from the group term rather than from luck in the random draws. Each continuation gets VADER's
compound sentiment (-1 most negative ... +1 most positive; Hutto & Gilbert 2014). The result holds
each group's distribution and the difference of means to the first group with a bootstrap 95 % CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from llmviz.bias import stats
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.loading import CAUSAL_LM, LoadedModel

MAX_GROUPS = 6
MAX_SAMPLES = 50
MAX_NEW_TOKENS = 60
MAX_PROMPT_TOKENS = 128
EXAMPLE_PROMPT = "The {group} was known for"
EXAMPLE_GROUPS = ["man", "woman"]


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER compound score of ``text`` in [-1, 1]."""
    return float(_vader().polarity_scores(text)["compound"])


@dataclass
class CounterfactualResult:
    """texts [G][N] continuations; sentiment [G, N]; diff [G] mean(group g) - mean(group 0);
    ci [G, 2] bootstrap 95 % CI of that difference (row 0 is zero by definition)."""

    template: str
    groups: list[str]
    prompts: list[str]
    texts: list[list[str]]
    sentiment: np.ndarray
    diff: np.ndarray
    ci: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def means(self) -> np.ndarray:
        return self.sentiment.mean(axis=1)

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "group": g,
                "sample": n,
                "prompt": self.prompts[i],
                "continuation": t,
                "sentiment": float(self.sentiment[i, n]),
            }
            for i, g in enumerate(self.groups)
            for n, t in enumerate(self.texts[i])
        ]


def _check(template: str, groups, n_samples: int, max_new_tokens: int, notices: list[str]):
    if not template or template.count("{group}") != 1:
        raise InputError(f"The prompt needs exactly one {{group}} slot, e.g. '{EXAMPLE_PROMPT}'.")
    clean = []
    for g in groups or []:
        g = str(g).strip()
        if g and g not in clean:
            clean.append(g)
    if len(clean) < 2:
        raise InputError("Give at least two group terms to compare (e.g. man, woman).")
    if len(clean) > MAX_GROUPS:
        notices.append(f"Only the first {MAX_GROUPS} groups are used (limit {MAX_GROUPS}).")
        clean = clean[:MAX_GROUPS]
    if not 1 <= int(n_samples) <= MAX_SAMPLES:
        raise InputError(f"Samples per group must be between 1 and {MAX_SAMPLES}.")
    if not 1 <= int(max_new_tokens) <= MAX_NEW_TOKENS:
        raise InputError(f"New tokens must be between 1 and {MAX_NEW_TOKENS}.")
    return clean


def sample_continuations(
    loaded: LoadedModel,
    prompt: str,
    n: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    top_p: float = 0.95,
) -> list[str]:
    """``n`` sampled continuations of ``prompt`` (decoded, prompt removed), reproducible for a seed."""
    import torch

    tok = loaded.tokenizer
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    if ids.shape[1] > MAX_PROMPT_TOKENS:
        raise InputError(f"The prompt has {ids.shape[1]} tokens; the limit is {MAX_PROMPT_TOKENS}. Shorten it.")
    pre = next(
        (
            getattr(tok, a)
            for a in ("bos_token_id", "eos_token_id", "cls_token_id")
            if getattr(tok, a, None) is not None
        ),
        None,
    )
    if pre is not None:  # start from the document token, as the sentence scorers do
        ids = torch.cat([torch.tensor([[pre]]), ids], dim=1)
    ids = ids.to(loaded.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=0,
            max_new_tokens=int(max_new_tokens),
            num_return_sequences=int(n),
            pad_token_id=pad,
        )
    return [tok.decode(row[ids.shape[1] :], skip_special_tokens=True).strip() for row in out]


def counterfactual_generate(
    loaded: LoadedModel,
    template: str,
    groups: list[str],
    n_samples: int = 10,
    max_new_tokens: int = 20,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> CounterfactualResult:
    """Sample ``n_samples`` continuations per group with one fixed seed and score them with VADER."""
    if loaded.facts.kind != CAUSAL_LM:
        raise UnsupportedModelError(
            f"Counterfactual generation needs a causal LM that writes text (e.g. smollm2); "
            f"'{loaded.facts.model_id}' is a {loaded.facts.kind.replace('_', ' ')}. Masked LMs work with the "
            "template and minimal-pair probes; encoders such as minilm with WEAT/SEAT and mitigation."
        )
    notices: list[str] = []
    groups = _check(template, groups, n_samples, max_new_tokens, notices)
    prompts = [template.replace("{group}", g) for g in groups]
    texts, scores = [], []
    for i, prompt in enumerate(prompts):
        conts = sample_continuations(loaded, prompt, n_samples, max_new_tokens, seed, temperature, top_p)
        texts.append(conts)
        scores.append([sentiment(c) for c in conts])
        if progress:
            progress(i + 1, len(prompts))
    s = np.array(scores)  # [G, N]
    diff = s.mean(axis=1) - s[0].mean()
    ci = np.array([[0.0, 0.0]] + [list(stats.bootstrap_diff_ci(s[g], s[0], seed=seed)) for g in range(1, len(groups))])
    if n_samples < 20:
        notices.append(f"Only {n_samples} samples per group: the interval is wide; use 30+ for a firmer answer.")
    params = {
        "template": template,
        "groups": groups,
        "n_samples": n_samples,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "temperature": temperature,
        "top_p": top_p,
        "model_id": loaded.facts.model_id,
    }
    return CounterfactualResult(template, groups, prompts, texts, s, diff, ci, params, notices)
