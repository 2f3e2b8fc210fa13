"""Attribution methods behind one signature, in one registry.

Every method is ``fn(problem: Problem, **params) -> Attribution`` and returns one score per input
token (``[T]``; special tokens get 0 for the perturbation methods because they are never changed).
:data:`METHODS` maps the name to a :class:`Method` (function, defaults, description); pages build their
choices from it; :func:`attribute` validates the name and parameters, fills defaults and bounds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from llmviz.attention.extract import extract_attention, rollout
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.explain.ig_defaults import GAP_WARN as IG_GAP_WARN  # noqa: F401 - re-exported for pages
from llmviz.explain.ig_defaults import MAX_STEPS as MAX_IG_STEPS  # IG steps are bounded (forward + backward each)
from llmviz.explain.ig_defaults import RULES as IG_RULES
from llmviz.explain.targets import Problem, score_value, token_limit
from llmviz.precision import EXACT, arithmetic

log = logging.getLogger(__name__)

MAX_OCCLUSION_WINDOW = 8


@dataclass
class Attribution:
    """Per-token attributions of one method for one Problem.

    ``scores``: float64 ``[T]`` (positive = pushes the target up). For integrated gradients
    ``f_x``/``f_baseline`` are the score at the input and the baseline and ``completeness_gap`` is
    ``|Σ scores − (f_x − f_baseline)| / |f_x − f_baseline|``.
    """

    method: str
    tokens: list[str]
    scores: np.ndarray
    special_mask: np.ndarray
    label: str
    params: dict[str, Any]
    f_x: float | None = None
    f_baseline: float | None = None
    completeness_gap: float | None = None
    seconds: float = 0.0
    note: str = ""
    label_parts: dict[str, Any] = field(default_factory=dict)  # the target, for targets.target_label

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "target": self.label,
            "tokens": self.tokens,
            "scores": [float(s) for s in self.scores],
            "special": [bool(s) for s in self.special_mask],
            "f_x": self.f_x,
            "f_baseline": self.f_baseline,
            "completeness_gap": self.completeness_gap,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    fn: Callable[..., Attribution]
    defaults: dict[str, Any]
    description: str
    linear: bool  # linear in the score: contrastive(A, B) == attribution(A) − attribution(B)
    target_aware: bool = True  # attention methods only see the position, not the target token
    limits: dict[str, tuple[int, int]] = field(default_factory=dict)


# ---------------------------------------------------------------- gradient methods
def _grad(problem: Problem, points):
    """Scores and gradients for a batch of inputs ``[B, T, D]`` -> (``[B]``, ``[B, T, D]``)."""
    import torch

    with torch.enable_grad():
        pts = points.detach().clone().requires_grad_(True)
        out = problem.score(pts)  # [B]; samples are independent, so d(sum)/d(pts[b]) = d(out[b])/d(pts[b])
        (g,) = torch.autograd.grad(out.sum(), pts)
    return out.detach(), g


def gradient_x_input(problem: Problem) -> Attribution:
    """``a_t = Σ_d x_td · ∂f/∂x_td`` at the input (first-order Taylor term, baseline zero)."""
    x = problem.embeds
    _, g = _grad(problem, x[None])
    scores = (g[0] * x).sum(-1).double().cpu().numpy()  # [T]
    return _result(problem, "grad_x_input", scores, {})


def _nodes(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes α ∈ (0, 1) and weights (summing to 1) for ∫₀¹ g(α) dα."""
    if rule == "gauss_legendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return (x + 1) / 2, w / 2
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)


def integrated_gradients(
    problem: Problem,
    steps: int = 32,
    baseline: str = "zero",
    rule: str = "gauss_legendre",
    batch_size: int = 16,
    keep_first: bool = False,
    precision: str = EXACT,
) -> Attribution:
    """IG (Sundararajan et al. 2017) in embedding space:
    ``a_t = Σ_d (x − x')_td · ∫₀¹ ∂f(x' + α(x − x'))/∂x_td dα``, the integral by quadrature with
    ``steps`` nodes, evaluated ``batch_size`` nodes per forward/backward pass.
    Completeness: ``Σ_t a_t = f(x) − f(x')`` up to the quadrature error reported as the gap.

    ``keep_first``: the baseline keeps the first token's own embedding (its attribution is then 0). A causal
    LM without a BOS token uses its first token as the attention sink; moving it along the path makes the
    output jump (SmolLM2: f falls from 25 to 1 and back to 23 within 6 % of the path), which no number of steps
    integrates (llmviz.explain.ig_defaults has the measured gaps).

    ``precision="bf16"``: the path's forward/backward passes under bfloat16 autocast (:mod:`llmviz.precision`);
    the first batch of nodes is also run in float32 and ``deviation`` is the largest difference of its
    contribution to an attribution, relative to the largest such contribution."""
    import torch

    if rule not in IG_RULES:
        raise InputError(f"Unknown integration rule '{rule}'. Choose one of {', '.join(IG_RULES)}.")
    x = problem.embeds
    ref = problem.baseline(baseline)
    if keep_first:
        ref = torch.cat([x[:1], ref[1:]])  # [T, D]; position 0 stays at the input
    delta = x - ref  # [T, D]
    alphas, weights = _nodes(steps, rule)
    avg_grad = torch.zeros_like(x, dtype=torch.float64)
    deviation = None

    def part(start):  # the nodes' weighted gradient sum [T, D] (float64)
        a = torch.tensor(alphas[start : start + batch_size], dtype=x.dtype, device=x.device)[:, None, None]
        w = torch.tensor(weights[start : start + batch_size], dtype=torch.float64, device=x.device)
        _, g = _grad(problem, ref[None] + a * delta[None])  # [b, T, D]
        return (g.double() * w[:, None, None]).sum(0)

    first = None
    with arithmetic(precision):  # one autocast region: bf16 weight copies are made once
        for start in range(0, steps, batch_size):
            g = part(start)
            first = g if first is None else first
            avg_grad += g
    if precision != EXACT:  # the first batch again in float32
        fast, exact = (delta.double() * first).sum(-1), (delta.double() * part(0)).sum(-1)
        deviation = float((fast - exact).abs().max() / max(float(exact.abs().max()), 1e-12))
    scores = (delta.double() * avg_grad).sum(-1).cpu().numpy()  # [T]
    f_x, f_b = score_value(problem), score_value(problem, ref)
    diff = f_x - f_b
    gap = abs(scores.sum() - diff) / max(abs(diff), 1e-12)
    note = ""
    if abs(diff) < 1e-6:
        note = "f(x) and f(baseline) are almost equal, so the relative completeness gap is not meaningful."
    res = _result(
        problem,
        "integrated_gradients",
        scores,
        {
            "steps": steps,
            "baseline": baseline,
            "rule": rule,
            "batch_size": batch_size,
            "keep_first": bool(keep_first),
            "precision": precision,
            "deviation": deviation,
        },
        note,
    )
    res.f_x, res.f_baseline, res.completeness_gap = f_x, f_b, float(gap)
    return res


# ---------------------------------------------------------------- perturbation
def occlusion(problem: Problem, window: int = 1, baseline: str = "pad", batch_size: int = 32) -> Attribution:
    """Replace ``window`` consecutive (non-special) tokens by the baseline embedding and record the drop
    ``f(x) − f(x_occluded)``; a token's score is the mean drop over the windows that cover it.
    ``window=1`` is leave-one-out."""
    import torch

    x = problem.embeds
    ref = problem.baseline(baseline)
    free = np.flatnonzero(~problem.special_mask)
    if free.size == 0:
        raise InputError("Every token is a special token; there is nothing to occlude.")
    window = min(window, int(free.size))
    spans = [free[s : s + window] for s in range(free.size - window + 1)]
    f_x = score_value(problem)
    drops = []
    with torch.inference_mode():
        for start in range(0, len(spans), batch_size):
            chunk = spans[start : start + batch_size]
            batch = x[None].repeat(len(chunk), 1, 1)  # [b, T, D]
            for row, span in enumerate(chunk):
                batch[row, span] = ref[span]
            drops.append(f_x - problem.score(batch).double().cpu().numpy())
    drops = np.concatenate(drops)
    total, count = np.zeros(problem.n_tokens), np.zeros(problem.n_tokens)
    for span, d in zip(spans, drops):
        total[span] += d
        count[span] += 1
    scores = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return _result(problem, "occlusion", scores, {"window": window, "baseline": baseline, "batch_size": batch_size})


# ---------------------------------------------------------------- attention
def _attention(problem: Problem):
    if problem.loaded is None:
        raise UnsupportedModelError("Attention methods need a transformer model, not a hand-built problem.")
    res = extract_attention(problem.loaded, problem.text, None, max_tokens=token_limit(problem.loaded))
    if res.token_ids != problem.token_ids:
        raise UnsupportedModelError(
            f"The attention run saw {res.n_tokens} tokens, the explanation {problem.n_tokens}; they must match."
        )
    return res.attention  # [L, H, T, T]


def _read_row(matrix: np.ndarray, problem: Problem) -> np.ndarray:
    """Row of the target position (``[T]``); pooled targets average all rows, as mean pooling does."""
    return matrix.mean(axis=0) if problem.position is None else matrix[problem.position]


def attention_rollout(problem: Problem) -> Attribution:
    """Row of the attention rollout (:func:`llmviz.attention.extract.rollout`) at the target position."""
    scores = _read_row(rollout(_attention(problem)).astype(np.float64), problem)
    return _result(
        problem,
        "attention_rollout",
        scores,
        {"add_residual": True},
        "Attention weights do not depend on the target token (only on the position).",
    )


def last_layer_attention(problem: Problem) -> Attribution:
    """Last layer's attention at the target position, averaged over heads."""
    att = _attention(problem)[-1].mean(axis=0).astype(np.float64)  # [T, T]
    return _result(
        problem,
        "last_layer_attention",
        _read_row(att, problem),
        {"layer": -1, "heads": "mean"},
        "Attention weights do not depend on the target token (only on the position).",
    )


def _result(problem: Problem, method: str, scores: np.ndarray, params: dict, note: str = "") -> Attribution:
    return Attribution(
        method=method,
        tokens=list(problem.tokens),
        scores=np.asarray(scores, dtype=np.float64),
        special_mask=np.asarray(problem.special_mask, dtype=bool),
        label=problem.label,
        params=params,
        note=note,
        label_parts=dict(problem.label_parts),
    )


# ---------------------------------------------------------------- registry
METHODS: dict[str, Method] = {}


def register(method: Method) -> None:
    if method.name in METHODS:
        raise ValueError(f"Attribution method '{method.name}' is already registered.")
    METHODS[method.name] = method


register(
    Method(
        "grad_x_input",
        "Gradient × input",
        gradient_x_input,
        {},
        "Gradient of the target times the token's embedding, summed over dimensions. Fast (one "
        "backward pass) but only a local, first-order view.",
        linear=True,
    )
)
register(
    Method(
        "integrated_gradients",
        "Integrated gradients",
        integrated_gradients,
        {
            "steps": 32,
            "baseline": "zero",
            "rule": "gauss_legendre",
            "batch_size": 16,
            "keep_first": False,
            "precision": EXACT,
        },
        "Gradients averaged along a straight path from a baseline to the input. Satisfies "
        "completeness: the scores add up to f(input) − f(baseline); the gap shows how well the "
        "integral was computed.",
        linear=True,
        limits={"steps": (1, MAX_IG_STEPS), "batch_size": (1, MAX_IG_STEPS)},
    )
)
register(
    Method(
        "occlusion",
        "Occlusion",
        occlusion,
        {"window": 1, "baseline": "pad", "batch_size": 32},
        "How much the target drops when a token (or a window of tokens) is replaced by the "
        "baseline. Model-agnostic but blind to interactions between distant tokens.",
        linear=True,
        limits={"window": (1, MAX_OCCLUSION_WINDOW), "batch_size": (1, 256)},
    )
)
register(
    Method(
        "attention_rollout",
        "Attention rollout",
        attention_rollout,
        {},
        "Attention multiplied through the layers (with the residual connection). Shows where "
        "information flows from, not what the target token depends on.",
        linear=False,
        target_aware=False,
    )
)
register(
    Method(
        "last_layer_attention",
        "Last-layer attention",
        last_layer_attention,
        {},
        "Attention of the target position in the last layer, mean over heads. Cheap and often "
        "misleading: attention is not explanation.",
        linear=False,
        target_aware=False,
    )
)


def attribute(problem: Problem, method: str, **params) -> Attribution:
    """Run registered ``method`` on ``problem``; unknown methods/parameters and out-of-range values raise
    :class:`InputError` with the valid choices."""
    if method not in METHODS:
        raise InputError(f"Unknown attribution method '{method}'. Choose one of {', '.join(METHODS)}.")
    spec = METHODS[method]
    unknown = set(params) - set(spec.defaults)
    if unknown:
        raise InputError(
            f"{spec.title} has no parameter(s) {', '.join(sorted(unknown))}; it takes "
            f"{', '.join(spec.defaults) or 'none'}."
        )
    full = {**spec.defaults, **params}
    for name, (lo, hi) in spec.limits.items():
        value = int(full[name])
        if not lo <= value <= hi:
            raise InputError(f"{spec.title}: {name} must be between {lo} and {hi} (got {value}).")
        full[name] = value
    t0 = time.perf_counter()
    res = spec.fn(problem, **full)
    res.seconds = time.perf_counter() - t0
    return res


def attribute_all(
    problem: Problem,
    methods: list[str],
    params: dict[str, dict] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    each: Callable[[Attribution], None] | None = None,
) -> list[Attribution]:
    """Run several methods on one problem; ``each(result)`` as each method finishes (pages show them one by
    one), then ``progress(done, total, name)``."""
    out = []
    for i, name in enumerate(methods):
        out.append(attribute(problem, name, **(params or {}).get(name, {})))
        if each:
            each(out[-1])
        if progress:
            progress(i + 1, len(methods), name)
    return out


# ---------------------------------------------------------------- comparing methods
def spearman_matrix(results: list[Attribution]) -> np.ndarray:
    """Spearman rank correlation between methods over the non-special tokens: ``[M, M]``
    (NaN where a method gives the same score to every token)."""
    from scipy.stats import spearmanr

    m = len(results)
    out = np.eye(m)
    keep = ~results[0].special_mask if results else None
    for i in range(m):
        for j in range(i + 1, m):
            a, b = results[i].scores[keep], results[j].scores[keep]
            if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
                rho = math.nan
            else:
                rho = float(spearmanr(a, b).statistic)
            out[i, j] = out[j, i] = rho
    return out


def disagreement_notes(results: list[Attribution], rho: np.ndarray, low: float = 0.3) -> list[str]:
    """Plain-language notes on which methods disagree (rank correlation below ``low``)."""
    notes = []
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            r = rho[i, j]
            if math.isnan(r):
                continue
            if r < low:
                a, b = METHODS[results[i].method].title, METHODS[results[j].method].title
                notes.append(f"{a} and {b} rank the tokens differently (ρ = {r:.2f}).")
    # A large IG completeness gap is not repeated here: the page shows it with llmviz.explain.ig_defaults.gap_advice.
    return notes


def to_rows(results: list[Attribution]) -> list[dict[str, Any]]:
    """Long-format rows (one per method × token) for CSV/JSON export, with each method's parameters."""
    rows = []
    for res in results:
        for i, (tok, s) in enumerate(zip(res.tokens, res.scores)):
            rows.append(
                {
                    "method": res.method,
                    "position": i,
                    "token": tok,
                    "score": float(s),
                    "special": bool(res.special_mask[i]),
                    "target": res.label,
                    "params": ";".join(f"{k}={v}" for k, v in res.params.items()),
                    "completeness_gap": res.completeness_gap,
                }
            )
    return rows
