"""How far the fast generation mode moves from float32: measured on the run itself and on the preset prompts.

Both measures are *teacher-forced*: one token sequence is fed to the float32 model and to the fast twin, and
at each generated position the two next-token distributions are compared, so one early difference does not
count again at every later step (as comparing two free-running generations would).

- **This run** (:func:`run_deviation`): the run's prompt and tokens through float32 in one forward. Top-1
  agreement = the fraction of steps where float32's most likely token is the fast model's (the fast side read
  from the run's own records: what the user saw); max |Δ log p| of the token the run chose.
- **The presets** (:func:`fast_agreement`): for each preset prompt of the Playground, float32 greedy decoding
  for ``n_tokens`` tokens (stopping at end of text); then both models teacher-forced on that sequence; top-1
  agreement over all steps. Computed once per process, model, mode and length (kept while the model lives).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from llmviz.generation.generate import Generation, GenerationStream, SamplingParams, build_prompt
from llmviz.generation.presets import presets_for
from llmviz.generation.quantize import int8_twin
from llmviz.models.anatomy import forward_params
from llmviz.models.loading import LoadedModel
from llmviz.precision import EXACT, INT8, check_generation_mode

PRESET_TOKENS = 32  # float32 greedy tokens per preset prompt
_AGREEMENT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {(mode, n, chat): Agreement}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Agreement:
    """Top-1 agreement of a fast mode with float32 over the preset prompts (teacher-forced on float32's greedy
    text). ``per_preset``: preset key -> (agreeing steps, steps)."""

    precision: str
    n_tokens: int
    agree: int
    total: int
    per_preset: dict[str, tuple[int, int]]
    max_abs_dlogprob: float  # max |Δ log p| of float32's greedy token, nats

    @property
    def fraction(self) -> float:
        return self.agree / self.total if self.total else math.nan


@dataclass(frozen=True)
class Deviation:
    """A fast run measured against float32 (``Generation.deviation``). ``agree`` of ``total`` steps had the
    same most likely next token; ``max_abs_dlogprob``: max over steps of |log p_fast − log p_float32| of the
    token the run chose (nats); ``presets``: the mode's agreement over the preset prompts, if measured."""

    precision: str
    agree: int
    total: int
    max_abs_dlogprob: float
    presets: Agreement | None = None

    @property
    def fraction(self) -> float:
        return self.agree / self.total if self.total else math.nan


def _fast_model(loaded: LoadedModel, precision: str):
    check_generation_mode(precision, loaded.device)
    return int8_twin(loaded.model) if precision == INT8 else loaded.model


def next_token_logprobs(model, ids: list[int], n_new: int, device="cpu"):
    """log-softmax of the next-token logits at the positions that predict the last ``n_new`` tokens of
    ``ids``, float32 ``[n_new, vocab]`` (one forward of ``ids[:-1]``, no cache)."""
    import torch

    kwargs = {"input_ids": torch.tensor([ids[:-1]], device=device), "use_cache": False}
    if "logits_to_keep" in forward_params(type(model)):
        kwargs["logits_to_keep"] = n_new
    with torch.inference_mode():
        return model(**kwargs).logits[0, -n_new:].float().log_softmax(-1).cpu()


def compare(exact_lp, fast_lp, chosen: list[int]) -> tuple[int, float]:
    """(steps where the argmax agrees, max |Δ log p| of ``chosen``) of two ``[n, vocab]`` log-prob arrays."""
    import torch

    idx = torch.tensor(chosen)[:, None]
    agree = int((exact_lp.argmax(-1) == fast_lp.argmax(-1)).sum())
    diff = (exact_lp.gather(1, idx) - fast_lp.gather(1, idx)).abs()
    return agree, float(diff.max()) if diff.numel() else 0.0


def run_deviation(loaded: LoadedModel, gen: Generation) -> tuple[int, int, float]:
    """(agreeing steps, steps, max |Δ log p| of the chosen tokens) of a fast run against float32: the run's
    sequence through float32 in one forward; the fast side from the run's records (or, where it kept none,
    one forward of the fast model)."""
    import torch

    steps = gen.steps
    if not steps:
        return 0, 0, 0.0
    ids = list(gen.prompt.ids) + [s.token_id for s in steps]
    chosen = [s.token_id for s in steps]
    exact_lp = next_token_logprobs(loaded.model, ids, len(steps), loaded.device)
    if all(s.alternatives for s in steps):
        fast_top = np.array([s.alternatives[0].token_id for s in steps])
        fast_chosen = np.log(np.maximum([s.model_prob for s in steps], np.finfo(np.float64).tiny))
        exact_chosen = exact_lp.gather(1, torch.tensor(chosen)[:, None])[:, 0].double().numpy()
        agree = int((exact_lp.argmax(-1).numpy() == fast_top).sum())
        return agree, len(steps), float(np.max(np.abs(fast_chosen - exact_chosen)))
    fast_lp = next_token_logprobs(_fast_model(loaded, gen.precision), ids, len(steps), loaded.device)
    agree, diff = compare(exact_lp, fast_lp, chosen)
    return agree, len(steps), diff


def fast_agreement(
    loaded: LoadedModel,
    precision: str = INT8,
    n_tokens: int = PRESET_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> Agreement:
    """Top-1 agreement of ``precision`` with float32 over the preset prompts (see the module doc); computed
    once per process, model, mode and ``n_tokens``. ``progress(done, total)`` after each preset."""
    chat = bool(loaded.facts.has_chat_template)
    key = (precision, int(n_tokens), chat)
    with _LOCK:
        hit = _AGREEMENT.get(loaded.model, {}).get(key)
    if hit is not None:
        return hit
    fast = _fast_model(loaded, precision)
    presets = presets_for(chat, "en")
    per, worst = {}, 0.0
    for i, (name, preset) in enumerate(presets.items()):
        prompt = build_prompt(loaded, preset.user, preset.system)
        stream = GenerationStream(loaded, prompt, SamplingParams(greedy=True, max_new_tokens=n_tokens), record=False)
        for _ in stream:
            pass
        chosen = stream.token_ids
        if chosen:
            ids = prompt.ids + chosen
            exact_lp = next_token_logprobs(loaded.model, ids, len(chosen), loaded.device)
            fast_lp = next_token_logprobs(fast, ids, len(chosen), loaded.device)
            agree, diff = compare(exact_lp, fast_lp, chosen)
            per[name], worst = (agree, len(chosen)), max(worst, diff)
        if progress is not None:
            progress(i + 1, len(presets))
    result = Agreement(
        precision,
        int(n_tokens),
        sum(a for a, _ in per.values()),
        sum(n for _, n in per.values()),
        per,
        worst,
    )
    with _LOCK:
        _AGREEMENT.setdefault(loaded.model, {})[key] = result
    return result


def with_deviation(
    loaded: LoadedModel,
    gen: Generation,
    presets: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Generation:
    """``gen`` with its :class:`Deviation` filled in (a float32 run is returned as it is). ``presets``: also
    the mode's agreement over the preset prompts (the first time in a process and model: float32 greedy
    decoding of every preset, some seconds; ``progress(done, total)`` after each)."""
    if gen.precision == EXACT:
        return gen
    agree, total, diff = run_deviation(loaded, gen)
    over = fast_agreement(loaded, gen.precision, progress=progress) if presets else None
    return replace(gen, deviation=Deviation(gen.precision, agree, total, diff, over))
