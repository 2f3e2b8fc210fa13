"""Integrated-gradients settings per model: defaults measured on the bundled models, and what to change when
the completeness gap is still large.

The gap is ``|Σ attributions − (f(x) − f(baseline))| / |f(x) − f(baseline)|``
(:func:`llmviz.explain.attribution.integrated_gradients`). It is small when the straight path from the
baseline to the input is smooth enough for the quadrature; steps only help once it is. :func:`ig_defaults`
picks the settings for a loaded model (by model id, then by kind); :func:`gap_advice` lists changes to try,
never the option already chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from llmviz.models.base import CAUSAL_LM, ENCODER, MASKED_LM

GAP_WARN = 0.05  # relative completeness gap above which the UI gives advice
MAX_STEPS = 256  # same bound as llmviz.explain.attribution.MAX_IG_STEPS (each step is a forward + backward)
RULES = ("gauss_legendre", "riemann_midpoint")


@dataclass(frozen=True)
class IGSettings:
    """``baseline``: a key of llmviz.explain.targets.BASELINES; ``steps``: quadrature nodes; ``rule``: one of
    RULES; ``keep_first``: the baseline keeps the first token (the attention sink of a causal LM without BOS)."""

    baseline: str
    steps: int
    rule: str = "gauss_legendre"
    keep_first: bool = False

    def as_params(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "steps": self.steps, "rule": self.rule, "keep_first": self.keep_first}


GENERIC = IGSettings("zero", 32)  # the registry defaults; the tiny test models reach a gap < 1 % with them

# Measured 2026-12-02 with llmviz.explain.attribution.integrated_gradients, top-prediction targets, torch on one
# CPU thread of a shared 2-core machine (load average 6-22 while measuring, so the times are upper bounds).
# Texts: D "The doctor told the nurse that" (the page default), M "The movie was not good at all." (the tour),
# E "The Eiffel Tower is in the city of"; smollm2 also P "Paris is the capital of", S "She went to the store to
# buy"; minilm: sentence pairs (the page default pair, M vs "I did not like the film.", D vs "A physician spoke
# to a nurse."). Gaps per text; GL = Gauss–Legendre.
#
# smollm2 (no BOS token: the first word is the attention sink, see integrated_gradients' keep_first):
#   zero, first token moved (the old default), GL 32: D 157 % (the 157 %), 64: D 140 %.
#   Any baseline with the first token moved, GL 16-64: 39 %-19 000 %, not shrinking with steps (the path jumps).
#   First token held, GL 64:  mean D 4.9 M 0.1 E 2.3 P 6.9 S 296 % | zero D 15 M 30 E 6.2 P 55 S 6.9 %
#                             pad D 52 M 0.1 E 433 % | bos D 82 M 1.3 E 97 %
#   First token held, GL 128: mean D 7.1 M 0.0 E 0.1 P 2.7 S 39 % | zero D 0.0 M 0.2 E 1.0 P 1517 S 0.1 %
#   -> mean, 128 steps, held: median 2.7 %, no catastrophic text (zero has one: P). S is ill-conditioned for the
#   mean baseline: f(x) − f(baseline) is only 0.59 logits there (absolute error 0.23). 128 steps on 9 tokens took
#   9-120 s (load 10-20); the page cuts smollm2 inputs to 16 tokens.
# gemma3 (BOS is a special token, so the sink is never moved), GL 64: mean D 0.0 M 2.6 E 0.0 % | pad D 0.0 M 5.2
#   E 0.2 % | mask D 0.4 M 4.4 E 0.7 % | zero D 20 M 16 E 13 % | bos D 88 M 41 E 120 %; GL 32: mean D 0.1 M 24
#   E 0.05 %. -> mean, 64 steps (6-50 s per run at load 6-8).
# minilm ([CLS]/[SEP] kept), GL 32: zero 0.00 / 0.02 / 0.01 %, pad, mean, mask all <= 0.04 %; GL 16: <= 2.6 %.
#   -> zero, 32 steps (under 1 s).
IG_DEFAULTS: dict[str, IGSettings] = {
    "smollm2": IGSettings("mean", 128, keep_first=True),
    "gemma3": IGSettings("mean", 64),
    "minilm": IGSettings("zero", 32),
}
# Other models of a kind (folders, hub ids, training-lab models) start from what worked for the bundled one.
KIND_DEFAULTS: dict[str, IGSettings] = {
    CAUSAL_LM: IG_DEFAULTS["smollm2"],
    ENCODER: IG_DEFAULTS["minilm"],
    MASKED_LM: GENERIC,
}


def ig_defaults(facts) -> IGSettings:
    """Default IG settings for a model (``ModelFacts``): by model id, else by kind, else GENERIC."""
    model_id = getattr(facts, "model_id", None)
    if model_id in IG_DEFAULTS:
        return IG_DEFAULTS[model_id]
    return KIND_DEFAULTS.get(getattr(facts, "kind", None), GENERIC)


@dataclass(frozen=True)
class Advice:
    """One change to try: ``what`` is "steps" (value: the step count), "rule" (value: a rule), "keep_first"
    (value: True) or "baseline" (value: a baseline name)."""

    what: str
    value: Any


def gap_advice(
    gap: float | None,
    current: IGSettings,
    baselines: Sequence[str],
    preferred: IGSettings | None = None,
    first_is_special: bool = False,
    max_steps: int = MAX_STEPS,
) -> list[Advice]:
    """Changes to try when ``gap`` is above GAP_WARN, most promising first; each differs from ``current``.

    More steps (doubled, up to ``max_steps``) unless at the limit; Gauss–Legendre unless chosen; holding the
    first token unless held (or special anyway, then holding changes nothing); the other ``baselines``,
    ``preferred.baseline`` (the model's measured default) first."""
    if gap is None or gap <= GAP_WARN:
        return []
    out: list[Advice] = []
    if current.rule != "gauss_legendre":
        out.append(Advice("rule", "gauss_legendre"))
    if not current.keep_first and not first_is_special:
        out.append(Advice("keep_first", True))
    order = list(baselines)
    if preferred is not None and preferred.baseline in order:
        order.remove(preferred.baseline)
        order.insert(0, preferred.baseline)
    others = [Advice("baseline", b) for b in order if b != current.baseline]
    if preferred is not None and others and others[0].value == preferred.baseline:
        out.append(others.pop(0))  # the model's measured baseline before "more steps"
    if current.steps < max_steps:
        out.append(Advice("steps", min(max_steps, 2 * current.steps)))
    return out + others
