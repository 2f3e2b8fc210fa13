"""Embedding association tests: WEAT (Caliskan et al. 2017) and SEAT (May et al. 2019), per layer.

For target sets X, Y and attribute sets A, B of embeddings:

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)
    d = (mean_x s(x) - mean_y s(y)) / std_{w in X ∪ Y} s(w)        (sample std, ddof = 1)

One-sided permutation p-value: the share of equal-size re-partitions (X_i, Y_i) of X ∪ Y with
``mean s(X_i) - mean s(Y_i) >= observed``; exact over all partitions when there are at most
EXACT_LIMIT of them, else N_SAMPLES (>= 10,000) seeded random partitions with the (1 + k)/(1 + n) estimate.

WEAT embeds each word alone; SEAT places each word in bleached templates (``"This is {}."``) and
averages the sentence embeddings. Embeddings come from every layer at once (hidden states), pooled
by mean over tokens (attention mask), first token or last token.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from llmviz.bias.scoring import pad_batch, pad_id
from llmviz.errors import InputError
from llmviz.limits import MAX_WEAT_WORDS
from llmviz.models.loading import LoadedModel

EXACT_LIMIT = 50_000
N_SAMPLES = 10_000
POOLINGS = ("mean", "first", "last")
MAX_WORDS_PER_SET = MAX_WEAT_WORDS  # items per set (SEAT sentence sets hold up to ~350); = seat.MAX_ITEMS_PER_SET
WORD_SETS_FILE = Path(__file__).resolve().parent / "data" / "weat_sets.json"
EMBED_BATCH = 64


def word_sets() -> dict[str, Any]:
    """Bundled word sets: ``{"tests": {id: {...}}, "seat_templates": [...], "definitional_pairs": [...]}``."""
    return json.loads(WORD_SETS_FILE.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- pure maths
def _unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n == 0, 1, n)


def association(W: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """s(w, A, B) for each row of W: [n, d], [a, d], [b, d] -> [n]."""
    W, A, B = _unit(W), _unit(A), _unit(B)
    return (W @ A.T).mean(axis=1) - (W @ B.T).mean(axis=1)


def effect_size_from_s(sx: np.ndarray, sy: np.ndarray) -> float:
    sd = np.std(np.concatenate([sx, sy]), ddof=1)
    return float((sx.mean() - sy.mean()) / sd) if sd > 0 else 0.0


def effect_size(X, Y, A, B) -> float:
    """Caliskan's d for embedding matrices X [nx, d], Y [ny, d], A [na, d], B [nb, d]."""
    return effect_size_from_s(
        association(np.asarray(X, float), np.asarray(A, float), np.asarray(B, float)),
        association(np.asarray(Y, float), np.asarray(A, float), np.asarray(B, float)),
    )


def permutation_p(
    sx: np.ndarray, sy: np.ndarray, n_samples: int = N_SAMPLES, seed: int = 0, exact_limit: int = EXACT_LIMIT
) -> tuple[float, bool, int]:
    """One-sided permutation p-value of mean(sx) - mean(sy). Returns (p, exact, partitions used)."""
    s = np.concatenate([sx, sy]).astype(float)
    nx, n = len(sx), len(sx) + len(sy)
    observed = sx.mean() - sy.mean()
    tol = 1e-12 * max(1.0, abs(observed))
    total = s.sum()

    def stat(sum_x):  # mean of X_i minus mean of the rest, from the sum over X_i
        return sum_x / nx - (total - sum_x) / (n - nx)

    n_part = comb(n, nx)
    if n_part <= exact_limit:
        idx = np.array(list(itertools.combinations(range(n), nx)), dtype=np.int64)  # [n_part, nx]
        stats = stat(s[idx].sum(axis=1))
        return float(np.mean(stats >= observed - tol)), True, int(n_part)
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_samples:
        b = min(2000, n_samples - done)
        perm = np.argsort(rng.random((b, n)), axis=1)[:, :nx]  # [b, nx] random X_i
        hits += int(np.sum(stat(s[perm].sum(axis=1)) >= observed - tol))
        done += b
    return (1 + hits) / (1 + n_samples), False, int(n_samples)


# ---------------------------------------------------------------- embeddings
def _check_set(words: Sequence[str], name: str) -> list[str]:
    out = [str(w).strip() for w in words or [] if str(w).strip()]
    if len(out) < 2:
        raise InputError(f"Word set {name} needs at least 2 words (has {len(out)}).")
    if len(out) > MAX_WORDS_PER_SET:
        raise InputError(f"Word set {name} has {len(out)} words; the limit is {MAX_WORDS_PER_SET}.")
    return out


def embed_texts(loaded: LoadedModel, texts: Sequence[str], pooling: str = "mean", progress=None) -> np.ndarray:
    """Pooled hidden states of every layer: [L + 1, n, hidden] (index 0 = embedding output).

    Texts go through the model EMBED_BATCH at a time; ``progress(n)`` gets the number done after each batch."""
    import torch

    if pooling not in POOLINGS:
        raise InputError(f"Unknown pooling '{pooling}'. Choose one of {', '.join(POOLINGS)}.")
    tok = loaded.tokenizer
    out = []
    for start in range(0, len(texts), EMBED_BATCH):
        chunk = list(texts[start : start + EMBED_BATCH])
        ids, att = pad_batch([tok(t)["input_ids"] for t in chunk], pad_id(tok))  # right padding, [B, T]
        keep = {"input_ids": ids.to(loaded.device), "attention_mask": att.to(loaded.device)}
        with torch.inference_mode():
            hs = loaded.model(**keep, output_hidden_states=True).hidden_states
        h = torch.stack([x.float() for x in hs])  # [L+1, B, T, hidden]
        att = keep["attention_mask"].float()  # [B, T]
        if pooling == "mean":
            pooled = (h * att[None, :, :, None]).sum(2) / att.sum(1)[None, :, None]
        elif pooling == "first":
            pooled = h[:, :, 0]
        else:
            last = att.sum(1).long() - 1  # [B] index of the last real token (right padding)
            pooled = h[:, torch.arange(h.shape[1]), last]
        out.append(pooled.cpu().numpy())
        if progress:
            progress(len(chunk))
    return np.concatenate(out, axis=1).astype(np.float64)


def embed_shapes(loaded: LoadedModel, texts: Sequence[str]) -> list[tuple[int, int]]:
    """(rows, padded width) of each forward pass :func:`embed_texts` makes (tokenises, runs no model)."""
    lengths = [len(loaded.tokenizer(t)["input_ids"]) for t in texts]
    return [(len(c), max(c)) for c in (lengths[i : i + EMBED_BATCH] for i in range(0, len(lengths), EMBED_BATCH))]


def embed_words(
    loaded: LoadedModel,
    words: Sequence[str],
    mode: str = "weat",
    pooling: str = "mean",
    templates: Sequence[str] | None = None,
) -> np.ndarray:
    """[L + 1, n_words, hidden]: each word alone (WEAT) or averaged over its SEAT template sentences."""
    if mode == "weat":
        return embed_texts(loaded, list(words), pooling)
    templates = [t for t in (templates or word_sets()["seat_templates"]) if t.strip()]
    if not templates or any(t.count("{}") != 1 for t in templates):
        raise InputError("Each SEAT template needs exactly one {} slot for the word, e.g. 'This is {}.'")
    sents = [t.format(w) for w in words for t in templates]
    emb = embed_texts(loaded, sents, pooling)  # [L+1, n*k, d]
    return emb.reshape(emb.shape[0], len(words), len(templates), -1).mean(axis=2)


@dataclass
class WeatResult:
    """WEAT/SEAT at every layer. effect_size, p_value: [L + 1]; s_x: [L + 1, nx]; s_y: [L + 1, ny]."""

    X: list[str]
    Y: list[str]
    A: list[str]
    B: list[str]
    names: dict[str, str]
    mode: str
    pooling: str
    effect_size: np.ndarray
    p_value: np.ndarray
    s_x: np.ndarray
    s_y: np.ndarray
    exact: bool
    n_partitions: int
    facts: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [
            {"layer": i, "effect_size": float(d), "p_value": float(p)}
            for i, (d, p) in enumerate(zip(self.effect_size, self.p_value))
        ]


def weat_from_embeddings(EX, EY, EA, EB, n_samples: int = N_SAMPLES, seed: int = 0):
    """Per-layer WEAT on stacked embeddings [L, n, d]. Returns (d [L], p [L], s_x, s_y, exact, partitions)."""
    Ls = EX.shape[0]
    d, p = np.zeros(Ls), np.zeros(Ls)
    sx_all, sy_all = np.zeros((Ls, EX.shape[1])), np.zeros((Ls, EY.shape[1]))
    exact, parts = True, 0
    for layer in range(Ls):
        sx, sy = association(EX[layer], EA[layer], EB[layer]), association(EY[layer], EA[layer], EB[layer])
        sx_all[layer], sy_all[layer] = sx, sy
        d[layer] = effect_size_from_s(sx, sy)
        p[layer], exact, parts = permutation_p(sx, sy, n_samples, seed)
    return d, p, sx_all, sy_all, exact, parts


def weat_test(
    loaded: LoadedModel,
    X,
    Y,
    A,
    B,
    mode: str = "weat",
    pooling: str = "mean",
    templates: Sequence[str] | None = None,
    names: dict[str, str] | None = None,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
) -> WeatResult:
    """Run WEAT (``mode="weat"``) or SEAT (``mode="seat"``) on every layer of ``loaded``."""
    if mode not in ("weat", "seat"):
        raise InputError("mode must be 'weat' or 'seat'.")
    sets = {k: _check_set(v, k) for k, v in (("X", X), ("Y", Y), ("A", A), ("B", B))}
    words = sets["X"] + sets["Y"] + sets["A"] + sets["B"]
    emb = embed_words(loaded, words, mode, pooling, templates)
    cuts = np.cumsum([len(sets[k]) for k in "XYA"])
    EX, EY, EA, EB = np.split(emb, cuts, axis=1)
    d, p, sx, sy, exact, parts = weat_from_embeddings(EX, EY, EA, EB, n_samples, seed)
    facts = {
        "model_id": loaded.facts.model_id,
        "kind": loaded.facts.kind,
        "n_samples": n_samples,
        "seed": seed,
        "templates": list(templates or word_sets()["seat_templates"]) if mode == "seat" else None,
    }
    return WeatResult(
        sets["X"], sets["Y"], sets["A"], sets["B"], dict(names or {}), mode, pooling, d, p, sx, sy, exact, parts, facts
    )
