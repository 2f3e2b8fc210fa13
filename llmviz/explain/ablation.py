"""Head ablation: zero one head's output (or a whole layer's heads) and measure the change in the target.

A head's output is its slice ``[h * head_dim, (h + 1) * head_dim)`` of the input to the attention output
projection (W^O, :meth:`llmviz.models.anatomy.Anatomy.o_proj`); zeroing it removes exactly that head's
contribution to the residual stream. This works unchanged for grouped-query attention, because the
projection's input still has one slice per *query* head. Many ablations run as one batch: row ``b`` of
the batch carries its own head mask.

``precision="bf16"`` (:mod:`llmviz.precision`) runs the ablated forwards under one bfloat16 autocast region; the
first batch runs again in float32 and the largest score difference is kept as the result's ``deviation``. The
clean score and the check row (hooks in place, nothing zeroed) stay exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from llmviz.errors import UnsupportedModelError
from llmviz.explain.targets import SIMILARITY, Problem, Target, build_problem, score_value
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import LoadedModel
from llmviz.precision import BF16, EXACT, arithmetic, max_deviation

Unit = tuple[int, Sequence[int]]  # (layer, heads to zero in that layer)


@dataclass
class AblationResult:
    """``head_delta``: ``[L, H]`` score(with head zeroed) − score(clean); ``layer_delta``: ``[L]`` the same
    with every head of the layer zeroed (None when not computed)."""

    tokens: list[str]
    label: str
    base_score: float
    head_delta: np.ndarray
    layer_delta: np.ndarray | None
    seconds: float
    batch_size: int
    text: str = ""
    truncated: bool = False
    null_delta: float = 0.0  # |score with the hooks in place but no head zeroed − clean score|: should be 0
    label_parts: dict[str, Any] = field(default_factory=dict)  # the target, for targets.target_label
    precision: str = EXACT
    deviation: float | None = None  # bf16: max |Δ score| against float32 on the first batch of units

    def params(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.label,
            "batch_size": self.batch_size,
            "base_score": self.base_score,
            "truncated": self.truncated,
            "precision": self.precision,
            "deviation": self.deviation,
        }

    def rows(self) -> list[dict[str, Any]]:
        out = [
            {"layer": layer, "head": head, "delta": float(self.head_delta[layer, head])}
            for layer in range(self.head_delta.shape[0])
            for head in range(self.head_delta.shape[1])
        ]
        if self.layer_delta is not None:
            out += [{"layer": layer, "head": "all", "delta": float(d)} for layer, d in enumerate(self.layer_delta)]
        return out


def ablation_problem(loaded: LoadedModel, text: str, target: Target) -> Problem:
    """The problem ablation measures: log-probability for token targets (contrastive and similarity
    targets keep their own score)."""
    return build_problem(loaded, text, target if target.kind == "similarity" else replace(target, score="log_prob"))


def ablate(
    problem: Problem,
    units: list[Unit],
    n_heads: int,
    batch_size: int = 32,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    share_prefix: bool | None = None,
    precision: str = EXACT,
) -> np.ndarray:
    """Score of ``problem`` with each unit's heads zeroed: ``[len(units)]``. ``n_heads`` = query heads.
    ``share_prefix`` (default: on for causal and masked LMs): a zeroed head at layer ``l`` leaves the layers
    before ``l`` as they are, so those run once at batch 1 and their output is copied to the batch's rows
    (units are batched in the order given; sorted by layer, a sweep costs about half). ``False``: every row
    through every layer (the reference the tests compare with).
    ``progress(done, total, scores)`` after each batch, ``scores`` ``[len(units)]`` so far (NaN where not yet run;
    the same array, filled in place). ``precision``: a mode of :mod:`llmviz.precision` (exact float32 by default)."""
    anat = anatomy(problem.loaded.model)
    projections = [anat.o_proj(layer) for layer in range(anat.n_layers)]
    scores = np.full(len(units), np.nan)
    if share_prefix is None:  # the similarity score pools with a mask the size of its input: every row
        share_prefix = problem.target.kind != SIMILARITY
    # one autocast region for the whole loop: bf16 copies of the weights are made once, not per batch
    with arithmetic(precision):
        for start in range(0, len(units), batch_size):
            chunk = units[start : start + batch_size]
            scores[start : start + len(chunk)] = _ablate_batch(problem, chunk, anat, projections, n_heads, share_prefix)
            if progress:
                progress(min(start + batch_size, len(units)), len(units), scores)
    return scores


def _ablate_batch(problem: Problem, chunk: Sequence[Unit], anat, projections, n_heads: int, share_prefix: bool):
    """Scores ``[len(chunk)]`` (float64 numpy) of one batch, row ``b`` with ``chunk[b]``'s heads zeroed."""
    import torch

    n_layers = len(projections)
    keep = torch.ones(n_layers, len(chunk), n_heads, dtype=problem.embeds.dtype, device=problem.embeds.device)
    for row, (layer, heads) in enumerate(chunk):
        keep[layer, row, list(heads)] = 0.0
    touched = sorted({layer for layer, _ in chunk})  # every row passes a hook, even an empty one

    def make_hook(layer):
        def hook(_module, args):
            x = args[0]  # [b, T, n_heads * head_dim], heads concatenated head-major
            b, t, width = x.shape
            mask = keep[layer].to(x.dtype)[:, None, :, None]  # [b, 1, H, 1]
            return (x.view(b, t, n_heads, width // n_heads) * mask).view(b, t, width), *args[1:]

        return hook

    hooks = [(projections[layer], make_hook(layer)) for layer in touched]
    batch = problem.embeds[None].expand(len(chunk), -1, -1)
    if share_prefix and touched and anat.layers:  # layers before the first ablated one: once, at batch 1
        hooks.insert(0, (anat.layers[touched[0]], _widen(len(chunk))))
        batch = problem.embeds[None]
    with scoped_hooks(pre=hooks), torch.inference_mode():
        return problem.score(batch).double().cpu().numpy()


def head_units(n_layers: int, n_heads: int, whole_layers: bool = True) -> list[Unit]:
    """The units :func:`head_ablation` runs, in its order: every head, optionally every whole layer, then the
    sanity row (hooks run, nothing zeroed)."""
    units: list[Unit] = [(layer, (head,)) for layer in range(n_layers) for head in range(n_heads)]
    if whole_layers:
        units += [(layer, tuple(range(n_heads))) for layer in range(n_layers)]
    return units + [(0, ())]


def ablation_work(units: Sequence[Unit], n_layers: int, n_tokens: int, batch_size: int = 32, share_prefix=True):
    """The work :func:`ablate` does (an :class:`llmviz.estimate.Work`): one call per batch and, in full-forward
    token units, each layer's rows × positions / the layer count (the shared prefix at batch 1)."""
    from llmviz.estimate import Work

    size, L, tokens = max(1, batch_size), max(1, n_layers), 0.0
    calls = 0
    for start in range(0, len(units), size):
        chunk = units[start : start + size]
        lo = min(layer for layer, _ in chunk) if share_prefix else 0
        tokens += (lo + (L - lo) * len(chunk)) * n_tokens / L
        calls += 1
    return Work(calls, tokens)


def _widen(n_rows: int):
    """A block pre-hook copying a batch-1 hidden state ``[1, T, D]`` to ``n_rows`` rows."""

    def hook(_m, args):
        if not args:
            raise UnsupportedModelError("This model passes the hidden states to its layers by keyword.")
        return (args[0].expand(n_rows, -1, -1).contiguous(), *args[1:])

    return hook


def head_ablation(
    problem: Problem,
    whole_layers: bool = True,
    batch_size: int = 32,
    progress: Callable[[int, int, AblationResult], None] | None = None,
    precision: str = EXACT,
) -> AblationResult:
    """Zero every head in turn (``L × H`` runs, batched), and optionally every whole layer (``L`` runs).
    ``progress(done, total, partial)`` after each batch, ``partial`` the result so far (NaN where not yet run).
    ``precision="bf16"``: the ablations under bfloat16 autocast; the first batch runs again in float32 and the
    largest score difference is the result's ``deviation``. The clean score and the check row stay exact."""
    facts = problem.loaded.facts
    n_layers, n_heads = facts.n_layers, facts.n_heads
    units = head_units(n_layers, n_heads, whole_layers)
    t0 = time.perf_counter()
    base = score_value(problem)

    def result(scores: np.ndarray, deviation: float | None = None) -> AblationResult:
        res = _result(problem, scores, base, n_heads, whole_layers, batch_size, time.perf_counter() - t0)
        res.precision, res.deviation = precision, deviation
        return res

    def partial(done: int, total: int, scores: np.ndarray) -> None:  # pages draw the heatmap as it fills
        progress(done, total, result(scores))

    scores = ablate(problem, units, n_heads, batch_size, partial if progress else None, precision=precision)
    deviation = None
    if precision == BF16:
        n_first = min(max(1, batch_size), len(units))
        again = units[:n_first] if n_first == len(units) else units[:n_first] + units[-1:]  # + the check row
        exact = ablate(problem, again, n_heads, batch_size)  # the first batch as formed above
        deviation = max_deviation(scores[:n_first], exact[:n_first])
        scores[-1] = exact[-1]  # the check row stays exact: hooks in place, nothing zeroed
    return result(scores, deviation)


def _result(
    problem: Problem, scores: np.ndarray, base: float, n_heads: int, whole_layers: bool, batch_size: int, seconds: float
) -> AblationResult:
    """The result from the scores of :func:`head_ablation`'s units ``[L·H (+ L) + 1]`` (NaN where not yet run)."""
    n_layers = problem.loaded.facts.n_layers
    delta, null = scores[:-1] - base, float(abs(scores[-1] - base))
    head_delta = delta[: n_layers * n_heads].reshape(n_layers, n_heads)  # [L, H]
    layer_delta = delta[n_layers * n_heads :] if whole_layers else None  # [L]
    return AblationResult(
        tokens=list(problem.tokens),
        label=problem.label,
        label_parts=dict(problem.label_parts),
        base_score=base,
        head_delta=head_delta,
        layer_delta=layer_delta,
        seconds=seconds,
        batch_size=batch_size,
        text=problem.text,
        truncated=problem.truncated,
        null_delta=null,
    )


def top_heads(result: AblationResult, k: int = 5) -> list[tuple[int, int, float]]:
    """The ``k`` heads whose removal changes the score most, as (layer, head, delta), by |delta|."""
    flat = np.argsort(-np.abs(result.head_delta), axis=None)[:k]
    return [
        (int(i // result.head_delta.shape[1]), int(i % result.head_delta.shape[1]), float(result.head_delta.flat[i]))
        for i in flat
    ]
