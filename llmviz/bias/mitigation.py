"""Projection debiasing demo (Bolukbasi et al. 2016) and its limits (Gonen & Goldberg 2019).

1. Bias direction: the first principal component of the definitional pair differences
   (``she - he``, ``woman - man``, ...): the top right singular vector of D [k, d]
   (Bolukbasi's PCA over the pair-centred vectors (a - mu, b - mu) has the same first component).
2. Removal: ``e' = e - (e . v) v`` for every embedding (``v`` unit length).
3. Before/after: the WEAT/SEAT effect size, the nearest neighbours of neutral words, and how well
   the ORIGINAL bias labels (sign of each neutral word's projection on v) can still be recovered from
   the debiased embeddings by a k-nearest-neighbour classifier (leave-one-out). Gonen & Goldberg
   showed such recoverability stays high: projection removes the direction, not the bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from llmviz.bias import weat
from llmviz.errors import InputError
from llmviz.models.loading import LoadedModel

N_NEIGHBOURS = 5
KNN_K = 5


def bias_direction(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit bias direction [d] and explained-variance ratios [k] from paired embeddings [k, d].

    The direction points from ``second`` towards ``first`` on average (e.g. from "he" to "she").
    """
    if first.shape != second.shape or first.ndim != 2 or first.shape[0] < 1:
        raise InputError("Definitional pairs need two equally long lists of embeddings.")
    D = first - second  # [k, d]
    _, sv, vt = np.linalg.svd(D, full_matrices=False)
    v = vt[0]
    if np.mean(D @ v) < 0:
        v = -v
    var = sv**2
    return v / np.linalg.norm(v), var / var.sum() if var.sum() > 0 else var


def project_out(E: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Remove the component along unit vector v from every row of E [n, d] -> [n, d]."""
    v = v / np.linalg.norm(v)
    return E - np.outer(E @ v, v)


def neighbours(E: np.ndarray, pool: np.ndarray, k: int = N_NEIGHBOURS, exclude_self: np.ndarray | None = None):
    """Indices [n, k] of the k pool rows most cosine-similar to each row of E."""
    sims = weat._unit(E) @ weat._unit(pool).T  # [n, pool]
    if exclude_self is not None:
        sims[np.arange(len(E)), exclude_self] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def knn_recoverability(E: np.ndarray, labels: np.ndarray, k: int = KNN_K) -> float:
    """Leave-one-out accuracy of a cosine k-NN classifier predicting binary ``labels`` from E [n, d]."""
    n = len(E)
    if n < 3 or len(set(labels.tolist())) < 2:
        return float("nan")
    k = min(k, n - 1)
    sims = weat._unit(E) @ weat._unit(E).T
    np.fill_diagonal(sims, -np.inf)
    nn = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    votes = labels[nn].mean(axis=1)
    pred = np.where(votes == 0.5, labels[nn[:, 0]], votes > 0.5)
    return float(np.mean(pred == labels))


@dataclass
class MitigationResult:
    """Before/after a projection debiasing at one layer.

    direction [d]; explained [k] variance ratios of the pair differences; projection [n_neutral] of
    each neutral word on the direction before removal; neighbours_before/after: per neutral word its
    N_NEIGHBOURS nearest words in the pool.
    """

    layer: int
    pairs: list[tuple[str, str]]
    direction: np.ndarray
    explained: np.ndarray
    effect_before: float
    effect_after: float
    p_before: float
    p_after: float
    neutral: list[str]
    projection: np.ndarray
    neighbours_before: list[list[str]]
    neighbours_after: list[list[str]]
    recover_before: float
    recover_after: float
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def n_changed(self) -> int:
        return sum(set(a) != set(b) for a, b in zip(self.neighbours_before, self.neighbours_after))

    def neighbour_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "word": w,
                "projection": float(p),
                "before": ", ".join(b),
                "after": ", ".join(a),
                "changed": set(a) != set(b),
            }
            for w, p, b, a in zip(self.neutral, self.projection, self.neighbours_before, self.neighbours_after)
        ]


def mitigation_demo(
    loaded: LoadedModel,
    pairs: Sequence[Sequence[str]],
    X,
    Y,
    A,
    B,
    neutral: Sequence[str],
    layer: int = -1,
    mode: str = "weat",
    pooling: str = "mean",
    templates: Sequence[str] | None = None,
    n_samples: int = weat.N_SAMPLES,
    seed: int = 0,
) -> MitigationResult:
    """Estimate the bias direction from ``pairs`` at ``layer``, remove it, compare before/after."""
    pairs = [
        (str(a).strip(), str(b).strip())
        for a, b in (tuple(p)[:2] for p in pairs if len(p) >= 2)
        if str(a).strip() and str(b).strip()
    ]
    if len(pairs) < 2:
        raise InputError("Give at least 2 definitional pairs (e.g. she,he and woman,man), one pair per line.")
    sets = {k: weat._check_set(v, k) for k, v in (("X", X), ("Y", Y), ("A", A), ("B", B))}
    neutral = weat._check_set(neutral, "neutral words")
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    words = first + second + sets["X"] + sets["Y"] + sets["A"] + sets["B"] + neutral
    emb = weat.embed_words(loaded, words, mode, pooling, templates)  # [L+1, n, d]
    n_layers = emb.shape[0]
    if not -n_layers <= layer < n_layers:
        raise InputError(f"Layer {layer} does not exist; choose 0..{n_layers - 1}.")
    layer = layer % n_layers
    E = emb[layer]
    cuts = np.cumsum([len(first), len(second), len(sets["X"]), len(sets["Y"]), len(sets["A"]), len(sets["B"])])
    EF, ES, EX, EY, EA, EB, EN = np.split(E, cuts)
    v, explained = bias_direction(EF, ES)
    deb = {name: project_out(M, v) for name, M in (("X", EX), ("Y", EY), ("A", EA), ("B", EB), ("N", EN))}
    sx, sy = weat.association(EX, EA, EB), weat.association(EY, EA, EB)
    sx2, sy2 = weat.association(deb["X"], deb["A"], deb["B"]), weat.association(deb["Y"], deb["A"], deb["B"])
    p0 = weat.permutation_p(sx, sy, n_samples, seed)[0]
    p1 = weat.permutation_p(sx2, sy2, n_samples, seed)[0]
    # neighbours among all non-definitional words (the pool), excluding the word itself
    pool_words = sets["X"] + sets["Y"] + sets["A"] + sets["B"] + neutral
    pool, pool_deb = np.concatenate([EX, EY, EA, EB, EN]), project_out(np.concatenate([EX, EY, EA, EB, EN]), v)
    self_idx = np.arange(len(pool_words) - len(neutral), len(pool_words))
    k = min(N_NEIGHBOURS, len(pool_words) - 1)
    nb0 = neighbours(EN, pool, k, self_idx)
    nb1 = neighbours(deb["N"], pool_deb, k, self_idx)
    proj = weat._unit(EN) @ v
    labels = (proj > np.median(proj)).astype(int)  # balanced "leans to first / second" labels
    facts = {"model_id": loaded.facts.model_id, "mode": mode, "pooling": pooling, "n_samples": n_samples, "seed": seed}
    return MitigationResult(
        layer=layer,
        pairs=pairs,
        direction=v,
        explained=explained,
        effect_before=weat.effect_size_from_s(sx, sy),
        effect_after=weat.effect_size_from_s(sx2, sy2),
        p_before=p0,
        p_after=p1,
        neutral=neutral,
        projection=proj,
        neighbours_before=[[pool_words[j] for j in row] for row in nb0],
        neighbours_after=[[pool_words[j] for j in row] for row in nb1],
        recover_before=knn_recoverability(EN, labels),
        recover_after=knn_recoverability(deb["N"], labels),
        facts=facts,
    )
