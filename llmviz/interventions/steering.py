"""Steering vectors (activation addition): a direction in the residual stream entering layer ``L``,
the mean activation over one set of prompts minus the mean over another, added as ``α·v`` while the
model runs.

What this shows: that moving the residual stream along one direction changes what the model writes or
how it scores a probe. What it does not show: that the direction *is* the concept, or that a model
steered to move a bias probe is a debiased model (other behaviours and other probes may not move, or
may get worse).

Steered generation runs exact (float32) or in the fast generation mode (``precision="int8"``,
:mod:`llmviz.generation.quantize`): the hook then sits on the int8 twin's layer, and the run is measured against
float32 steered the same way (top-1 agreement and max |Δ log p|, ``Generation.deviation``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from llmviz.bias import stats
from llmviz.bias.pairs import score_pairs
from llmviz.bias.templates import template_probe
from llmviz.errors import InputError
from llmviz.explain.targets import resolve_token
from llmviz.generation.deviation import with_deviation
from llmviz.generation.generate import build_prompt, generate
from llmviz.generation.quantize import int8_twin
from llmviz.interventions.sites import require_positional_input
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel
from llmviz.precision import EXACT, INT8, check_generation_mode
from llmviz.tokens import display_token

MAX_PROMPTS = 64  # per set
MAX_PROMPT_TOKENS = 64
MAX_ALPHAS = 9
DEFAULT_SETS: dict[str, tuple[list[str], list[str]]] = {
    "sentiment": (
        [
            "I love this, it is wonderful.",
            "What a great and happy day.",
            "This film was brilliant.",
            "The food was delicious and the staff were kind.",
            "I am so glad and grateful.",
            "An excellent, beautiful performance.",
        ],
        [
            "I hate this, it is terrible.",
            "What an awful and sad day.",
            "This film was dreadful.",
            "The food was disgusting and the staff were rude.",
            "I am so angry and upset.",
            "A horrible, ugly performance.",
        ],
    ),
    "he_she": (
        [
            "He went to the shop.",
            "He said that he was tired.",
            "My brother told me he would come.",
            "He is a father of two.",
            "The man said he liked tea.",
            "He fixed it himself.",
        ],
        [
            "She went to the shop.",
            "She said that she was tired.",
            "My sister told me she would come.",
            "She is a mother of two.",
            "The woman said she liked tea.",
            "She fixed it herself.",
        ],
    ),
}


@dataclass
class SteeringVector:
    """``vector``: ``[D]`` mean(set A) − mean(set B) of the residual stream entering ``layer`` (float32);
    each prompt's activation is the mean over its tokens."""

    vector: np.ndarray
    layer: int
    prompts_a: list[str]
    prompts_b: list[str]
    model_id: str
    mean_norm: float  # typical |resid| (median over prompts and tokens), for choosing a sensible α scale

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.vector))

    def params(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "n_a": len(self.prompts_a),
            "n_b": len(self.prompts_b),
            "norm": self.norm,
            "mean_resid_norm": self.mean_norm,
            "prompts_a": self.prompts_a,
            "prompts_b": self.prompts_b,
        }


def parse_prompts(text: str, what: str = "prompts") -> list[str]:
    """One prompt per line, blanks dropped; bounded."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"The {what} are empty. Type one sentence per line.")
    if len(lines) > MAX_PROMPTS:
        raise InputError(f"At most {MAX_PROMPTS} {what} (got {len(lines)}).")
    return lines


def _check_layer(loaded: LoadedModel, layer: int) -> None:
    n = loaded.facts.n_layers
    if not 0 <= int(layer) < n:
        raise InputError(f"Layer must be between 0 and {n - 1} (got {layer}).")


def _ids(loaded: LoadedModel, text: str) -> list[int]:
    tok = loaded.tokenizer
    ids = tok(text, add_special_tokens=loaded.facts.kind != CAUSAL_LM)["input_ids"][:MAX_PROMPT_TOKENS]
    if loaded.facts.kind == CAUSAL_LM and tok.bos_token_id is not None:
        ids = [tok.bos_token_id] + ids
    return list(ids)


def _forward_ids(loaded: LoadedModel, ids: list[int]):
    import torch

    t = torch.tensor([ids], device=loaded.device)
    kw = {"use_cache": False} if loaded.facts.kind == CAUSAL_LM else {}
    return loaded.model(input_ids=t, attention_mask=torch.ones_like(t), **kw)


def residual_means(loaded: LoadedModel, prompts: Sequence[str], layer: int) -> tuple[np.ndarray, float]:
    """``[N, D]`` mean over tokens of the residual stream entering ``layer`` for each prompt, and a typical
    token norm."""
    import torch

    _check_layer(loaded, layer)
    block = anatomy(loaded.model).layers[layer]
    got: list = []

    def grab(_m, args):
        require_positional_input("resid", args)
        got.append(args[0][0].detach().float())

    rows, norms = [], []
    with scoped_hooks(pre=[(block, grab)]), torch.inference_mode():
        for text in prompts:
            got.clear()
            _forward_ids(loaded, _ids(loaded, text))
            rows.append(got[0].mean(0).cpu().numpy())
            # median over tokens after the first: the first token is often an attention sink with a huge norm
            tail = got[0][1:] if got[0].shape[0] > 1 else got[0]
            norms.append(float(tail.norm(dim=-1).median()))
    return np.stack(rows), float(np.median(norms))


def steering_vector(
    loaded: LoadedModel, prompts_a: Sequence[str], prompts_b: Sequence[str], layer: int
) -> SteeringVector:
    """Mean-difference direction at ``layer``: mean(A) − mean(B)."""
    if not prompts_a or not prompts_b:
        raise InputError("Both prompt sets need at least one prompt.")
    a, na = residual_means(loaded, prompts_a, layer)
    b, nb = residual_means(loaded, prompts_b, layer)
    return SteeringVector(
        (a.mean(0) - b.mean(0)).astype(np.float32),
        int(layer),
        list(prompts_a),
        list(prompts_b),
        loaded.facts.model_id,
        (na + nb) / 2,
    )


@contextmanager
def steering(
    loaded: LoadedModel,
    vector: np.ndarray,
    layer: int,
    alpha,
    from_pos: int = 0,
    incremental: bool = False,
    models: Sequence | None = None,
) -> Iterator[dict]:
    """Add ``alpha · vector`` to the residual stream entering ``layer`` at absolute positions ≥ ``from_pos``.

    ``alpha``: a number, or one value per batch row. ``incremental``: the model is called with a KV cache
    (generation), so positions continue from one call to the next. ``models``: the module trees to steer
    (default ``[loaded.model]``; e.g. its int8 twin, or both for a side-by-side check without a cache). The
    hooks are removed when the block exits, also on an exception.
    """
    import torch

    _check_layer(loaded, layer)
    blocks = [anatomy(m).layers[layer] for m in (models or [loaded.model])]
    state = {"offset": 0, "calls": 0}
    v = torch.as_tensor(np.asarray(vector), dtype=torch.float32, device=loaded.device)
    a = torch.as_tensor(np.atleast_1d(np.asarray(alpha, dtype=np.float32)), device=loaded.device)

    def hook(_m, args):
        require_positional_input("resid", args)
        x = args[0]  # [B, T, D]
        b, t, _ = x.shape
        start = state["offset"] if incremental else 0
        pos = torch.arange(start, start + t, device=x.device)
        on = (pos >= int(from_pos)).to(x.dtype)[None, :, None]  # [1, T, 1]
        scale = (a if a.numel() == b else a[:1].expand(b)).to(x.dtype)[:, None, None]  # [B, 1, 1]
        state["offset"] = start + t
        state["calls"] += 1
        return (x + scale * on * v.to(x.dtype), *args[1:])

    with scoped_hooks(pre=[(block, hook) for block in blocks]):
        yield state


# ---------------------------------------------------------------- generation side by side
@dataclass
class SteeredGenerations:
    """One :class:`~llmviz.generation.generate.Generation` per α, same prompt, seed and settings."""

    alphas: list[float]
    generations: list
    layer: int
    from_pos: int
    prompt: str
    seconds: float
    precision: str = EXACT  # llmviz.precision.GENERATION_MODES; each generation carries its deviation

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"alpha": a, "step": s.index, "token": s.token, "token_id": s.token_id, "prob": s.model_prob}
            for a, g in zip(self.alphas, self.generations)
            for s in g.steps
        ]


def _alphas(alphas: Sequence[float]) -> list[float]:
    vals = [float(a) for a in alphas]
    if not vals:
        raise InputError("Give at least one α value.")
    if len(vals) > MAX_ALPHAS:
        raise InputError(f"At most {MAX_ALPHAS} α values (got {len(vals)}).")
    return vals


def steered_generate(
    loaded: LoadedModel,
    prompt,
    params,
    vector: np.ndarray,
    layer: int,
    alpha: float,
    from_pos: int = 0,
    stop: Callable[[], bool] | None = None,
    precision: str = EXACT,
    **kwargs,
):
    """One generation with the steering hook active for the whole run (prefill and every new token);
    ``kwargs`` go to :class:`~llmviz.generation.generate.GenerationStream`. ``precision="int8"``: on the int8
    twin, steered at the same layer; its ``deviation`` is measured against float32 steered the same way (the
    run's tokens through both models in one forward each)."""
    check_generation_mode(precision, loaded.device)
    models = [int8_twin(loaded.model)] if precision == INT8 else None
    with steering(loaded, vector, layer, alpha, from_pos, incremental=True, models=models):
        gen = generate(loaded, prompt, params, stop=stop, precision=precision, **kwargs)
    if precision == EXACT:
        return gen
    with steering(loaded, vector, layer, alpha, from_pos, models=[loaded.model, *models]):
        return with_deviation(loaded, gen, presets=False)


def generations_by_alpha(
    loaded: LoadedModel,
    text: str,
    vec: SteeringVector,
    alphas: Sequence[float],
    params,
    from_pos: int = 0,
    use_chat_template: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    precision: str = EXACT,
) -> SteeredGenerations:
    """Generate from ``text`` once per α (same seed), side by side; ``precision``: see :func:`steered_generate`."""
    vals = _alphas(alphas)
    prompt = build_prompt(loaded, text, use_chat_template=use_chat_template)
    t0 = time.perf_counter()
    gens = []
    for i, a in enumerate(vals):
        if stop is not None and stop():
            break
        gens.append(steered_generate(loaded, prompt, params, vec.vector, vec.layer, a, from_pos, precision=precision))
        if progress:
            progress(i + 1, len(vals))
    return SteeredGenerations(vals[: len(gens)], gens, vec.layer, from_pos, text, time.perf_counter() - t0, precision)


# ---------------------------------------------------------------- a token's log-probability as α varies
@dataclass
class AlphaCurve:
    """``logprobs``: ``[n_alpha, n_tokens]`` log p(token) at the answer position (next token for causal
    LMs, the [MASK] for masked LMs) with α·v added."""

    alphas: np.ndarray
    tokens: list[str]
    logprobs: np.ndarray
    text: str
    layer: int

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"alpha": float(a), "token": tok, "log_prob": float(self.logprobs[i, j])}
            for i, a in enumerate(self.alphas)
            for j, tok in enumerate(self.tokens)
        ]


def logprob_curve(
    loaded: LoadedModel,
    text: str,
    tokens: Sequence[str],
    vec: SteeringVector,
    alphas: Sequence[float],
    from_pos: int = 0,
) -> AlphaCurve:
    """One batched forward pass: row ``i`` runs ``text`` with ``alphas[i]·v`` added."""
    import torch

    if loaded.facts.kind not in (CAUSAL_LM, MASKED_LM):
        raise InputError("A token's probability needs a language-model head (causal or masked LM).")
    if not tokens:
        raise InputError("Type at least one token to follow.")
    if not str(text or "").strip():
        raise InputError("The text is empty.")
    alphas = np.asarray([float(a) for a in alphas], dtype=np.float32)
    if alphas.size == 0 or alphas.size > 64:
        raise InputError("Give between 1 and 64 α values.")
    tok = loaded.tokenizer
    if loaded.facts.kind == MASKED_LM:
        text = text.replace("[MASK]", tok.mask_token)
    ids = _ids(loaded, text)
    if loaded.facts.kind == MASKED_LM:
        where = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
        if len(where) != 1:
            raise InputError("Put exactly one [MASK] in the text.")
        position = where[0]
    else:
        position = len(ids) - 1
    tids = [resolve_token(loaded, t, text)[0] for t in tokens]
    batch = torch.tensor([ids] * len(alphas), device=loaded.device)
    kw = {"use_cache": False} if loaded.facts.kind == CAUSAL_LM else {}
    with steering(loaded, vec.vector, vec.layer, alphas, from_pos), torch.inference_mode():
        logits = loaded.model(input_ids=batch, attention_mask=torch.ones_like(batch), **kw).logits[:, position]
        lp = torch.log_softmax(logits.float(), -1)[:, tids]
    return AlphaCurve(
        alphas.astype(float), [display_token(tok, t) for t in tids], lp.double().cpu().numpy(), text, vec.layer
    )


# ---------------------------------------------------------------- bias probes with the hook active
@dataclass
class SteeredProbe:
    """A bias probe run without (α = 0) and with steering. ``before``/``after``: ``{"value", "ci95"}``;
    template probe: mean over targets of score(group A) − score(group B) with a bootstrap CI; minimal
    pairs: % of pairs where the stereotypical sentence is more likely, with a bootstrap CI."""

    probe: str
    alpha: float
    layer: int
    before: dict[str, Any]
    after: dict[str, Any]
    per_item: list[dict[str, Any]] = field(default_factory=list)
    what: str = ""


def _template_summary(res, a: int = 0, b: int = 1) -> tuple[dict, np.ndarray]:
    d = res.log_ratio(a, b)
    lo, hi = stats.bootstrap_ci(d)
    return {"value": float(d.mean()), "ci95": [lo, hi], "n": int(d.size)}, d


def steered_template_probe(
    loaded: LoadedModel, template: str, groups: list[str], targets: list[str], vec: SteeringVector, alpha: float
) -> SteeredProbe:
    """The template probe with and without ``alpha·v`` added at every position of every sentence."""
    before = template_probe(loaded, template, groups, targets)
    with steering(loaded, vec.vector, vec.layer, alpha):
        after = template_probe(loaded, template, groups, targets)
    sb, db = _template_summary(before)
    sa, da = _template_summary(after)
    items = [{"target": t, "before": float(x), "after": float(y)} for t, x, y in zip(before.targets, db, da)]
    what = (
        f"mean over targets of score('{before.groups[0]}') − score('{before.groups[1]}') "
        f"({'Kurita' if before.method == 'mlm_kurita' else 'log p(target)'})"
    )
    return SteeredProbe("templates", float(alpha), vec.layer, sb, sa, items, what)


def steered_pairs_probe(loaded: LoadedModel, frame, vec: SteeringVector, alpha: float) -> SteeredProbe:
    """The minimal-pairs probe with and without steering."""
    before = score_pairs(loaded, frame)
    with steering(loaded, vec.vector, vec.layer, alpha):
        after = score_pairs(loaded, frame)

    def summ(ps):
        s = stats.pct_summary(ps.score_more, ps.score_less)
        return {"value": s["pct_stereotype"], "ci95": s["ci95"], "n": s["n"]}

    items = [
        {"sent_more": m, "sent_less": s, "before": float(x), "after": float(y)}
        for m, s, x, y in zip(before.frame["sent_more"], before.frame["sent_less"], before.diff, after.diff)
    ]
    return SteeredProbe(
        "pairs",
        float(alpha),
        vec.layer,
        summ(before),
        summ(after),
        items,
        "% of pairs where the more stereotypical sentence is more likely",
    )
