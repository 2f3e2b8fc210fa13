"""Time estimates for heavy work ("about N s on this machine") from measured throughput.

Three parts:

- **Calibration** (per model, per process, redone after :data:`CALIBRATION_TTL_S`): two small forwards of
  the model itself are timed, ``1 × 8`` and ``4 × 32`` tokens, giving the cost of one call (``c_call``,
  Python and hook overhead, dominant on tiny models) and of one token (``c_tok``). A model that cannot be
  called that way falls back to a FLOP count at a matmul rate measured once.
- **Work**: each heavy action says how much it does as a :class:`Work` (model calls, token-forwards; a
  forward+backward counts :data:`BACKWARD_FACTOR` forwards), from its own loop structure (``*_work``).
- **Learning from completed jobs**: the queue (``llmviz.jobs``) reports each finished job's seconds with the
  :class:`Estimate` it was started with; the median of the last :data:`KEEP_OBSERVED` ratios taken/predicted
  per (model, kind of work) scales later estimates, so a loaded server, hooks or a kind's own overhead are
  learnt after one job.

An estimate, not a promise: shown before the user starts the work (with the queue ahead, see ``llmviz.jobs``).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

FORWARD_FLOPS_PER_PARAM_TOKEN = 2.0  # one multiply-add per weight per token (fallback only)
BACKWARD_FACTOR = 3.0  # forward + backward ≈ 3 forwards
EFFICIENCY = 0.25  # fallback: a transformer forward reaches about a quarter of the matmul rate on CPU
CALIBRATION_TTL_S = 600.0  # the machine's load changes: calibrate again after this long
KEEP_OBSERVED = 5  # completed jobs remembered per (model, kind)
CAL_SHAPES = ((1, 8), (4, 32))  # (batch, tokens) of the two timed forwards
# Prior ratio taken/predicted per kind before any job of that kind completed (measured on tiny and
# bundled models: per-step sampling and records in generation, hooks in ablation and patching; attribution:
# smollm2 IG at 64 steps took 0.71x the calibrated prediction in bench/anchors.py, load 0.6-2; the bias
# scorers' bf16 twin took 0.61-0.67x of their float32 time on smollm2 and minilm, load 1-2).
KIND_PRIOR = {
    "generate": 1.6,
    "generate_fast": 0.7,
    "ablation": 1.2,
    "patching": 1.1,
    "attribution": 0.8,
    "pairs_bf16": 0.65,
    "stereoset_bf16": 0.65,
    "seat_bf16": 0.65,
}


@dataclass(frozen=True)
class Work:
    """How much a run does: ``calls`` model calls and ``tokens`` token-forwards (rows × positions summed
    over calls); backward passes are counted as :data:`BACKWARD_FACTOR` forwards in both."""

    calls: float = 0.0
    tokens: float = 0.0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.calls + other.calls, self.tokens + other.tokens)

    def __mul__(self, k: float) -> "Work":
        return Work(self.calls * k, self.tokens * k)


@dataclass(frozen=True)
class Calibration:
    c_call: float  # seconds per model call
    c_tok: float  # seconds per token-forward
    at: float  # time.monotonic() when measured
    measured: bool  # False: the FLOP fallback


class Estimate(float):
    """Seconds (a float, so pages format it as before) carrying what the queue needs to learn from the job:
    ``key`` (model, kind) and ``base`` (the calibrated prediction before the learnt ratio)."""

    key: tuple[str, str]
    base: float

    def __new__(cls, seconds: float, key: tuple[str, str], base: float):
        obj = super().__new__(cls, seconds)
        obj.key, obj.base = key, base
        return obj


_LOCK = threading.Lock()
_CAL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model module -> Calibration
_OBSERVED: dict[tuple[str, str], deque] = {}


@lru_cache(maxsize=1)
def measured_flops() -> float:
    """Float32 multiply-add rate of this machine now (FLOP/s), from a 384×384 matmul (the fallback)."""
    import torch

    a = torch.randn(384, 384)
    b = torch.randn(384, 384)
    torch.mm(a, b)  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        torch.mm(a, b)
        n += 1
    return max(2 * 384**3 * n / (time.perf_counter() - t0), 1e8)


def estimate_seconds(
    n_params: int, n_tokens: int, forward_passes: float = 1.0, backward_passes: float = 0.0, flops: float | None = None
) -> float:
    """FLOP-count estimate (the fallback where a model cannot be calibrated)."""
    rate = (flops or measured_flops()) * EFFICIENCY
    work = FORWARD_FLOPS_PER_PARAM_TOKEN * n_params * max(n_tokens, 1)
    return work * (forward_passes + BACKWARD_FACTOR * backward_passes) / rate


def _time_forward(loaded, batch: int, n: int, repeats: int = 4) -> float:
    """Median seconds of one forward of ``batch × n`` tokens, as the heavy actions call the model."""
    import torch

    model = loaded.model
    vocab = int(getattr(loaded.facts, "vocab_size", 0) or 2)
    ids = torch.full((batch, n), min(5, vocab - 1), dtype=torch.long, device=getattr(loaded, "device", "cpu"))
    kw = {"attention_mask": torch.ones_like(ids)}
    if getattr(loaded.facts, "kind", "") == "causal_lm":
        kw.update(use_cache=False, logits_to_keep=1)
    from llmviz.threads import job_threads

    times = []
    with torch.inference_mode(), job_threads(running=1):  # the thread count a job would run with now
        model(input_ids=ids, **kw)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(input_ids=ids, **kw)
            times.append(time.perf_counter() - t0)
    return min(times)  # other processes only ever add time: the fastest run is the machine's own speed


def calibrate(loaded, force: bool = False) -> Calibration:
    """The model's call and token costs on this machine now (cached per model; see the module doc)."""
    model = loaded.model
    with _LOCK:
        cal = _CAL.get(model)
    if cal is not None and not force and time.monotonic() - cal.at < CALIBRATION_TTL_S:
        return cal
    try:
        (b1, n1), (b2, n2) = CAL_SHAPES
        t1, t2 = _time_forward(loaded, b1, n1), _time_forward(loaded, b2, n2)
        # a load spike can make the small forward look as slow as the big one: a token costs at least half
        # of the big forward's per-token time (its call overhead is at most half of it)
        c_tok = max((t2 - t1) / (b2 * n2 - b1 * n1), 0.5 * t2 / (b2 * n2))
        cal = Calibration(max(t1 - b1 * n1 * c_tok, 1e-5), c_tok, time.monotonic(), True)
    except Exception:  # not callable with input ids (e.g. the lab's translator): count FLOPs
        n_params = int(getattr(loaded.facts, "n_params", 0) or sum(p.numel() for p in model.parameters()))
        c_tok = FORWARD_FLOPS_PER_PARAM_TOKEN * n_params / (measured_flops() * EFFICIENCY)
        cal = Calibration(1e-3, c_tok, time.monotonic(), False)
    with _LOCK:
        _CAL[model] = cal
    return cal


def _model_key(loaded) -> str:
    return str(getattr(loaded.facts, "model_id", None) or type(loaded.model).__name__)


def ratio(key: tuple[str, str]) -> float:
    """Learnt taken/predicted ratio for (model, kind): the median of the last completed jobs, else the prior."""
    with _LOCK:
        seen = list(_OBSERVED.get(key, ()))
    return statistics.median(seen) if seen else KIND_PRIOR.get(key[1], 1.0)


def estimate(loaded, kind: str, work: Work) -> Estimate:
    """Seconds ``work`` of kind ``kind`` takes on ``loaded`` (calibrated, scaled by what completed jobs took)."""
    cal = calibrate(loaded)
    base = work.calls * cal.c_call + work.tokens * cal.c_tok
    key = (_model_key(loaded), kind)
    return Estimate(base * ratio(key), key, base)


def observe(est, seconds: float) -> None:
    """A job started with estimate ``est`` took ``seconds``: remember the ratio (plain floats are ignored)."""
    key, base = getattr(est, "key", None), getattr(est, "base", 0.0)
    if key is None or not base or base <= 0 or not math.isfinite(seconds) or seconds <= 0:
        return
    with _LOCK:
        _OBSERVED.setdefault(key, deque(maxlen=KEEP_OBSERVED)).append(seconds / base)


def reset() -> None:
    """Forget calibrations and observations (tests)."""
    with _LOCK:
        _CAL.clear()
        _OBSERVED.clear()


# ---------------------------------------------------------------- the work of each heavy action
def _passes(n: int, batch: int) -> int:
    return math.ceil(max(n, 0) / max(batch, 1))


def forward_work(n_tokens: int, rows: int = 1, calls: int = 1) -> Work:
    """``calls`` forwards of ``rows × n_tokens`` tokens in all."""
    return Work(calls, rows * n_tokens)


def ig_work(n_tokens: int, steps: int, batch_size: int) -> Work:
    """Integrated gradients: ``steps`` path points, ``batch_size`` per forward+backward, plus 3 forwards."""
    back = Work(_passes(steps, batch_size), steps * n_tokens) * BACKWARD_FACTOR
    return back + forward_work(n_tokens, calls=3, rows=3)


def grad_x_input_work(n_tokens: int) -> Work:
    return Work(1, n_tokens) * BACKWARD_FACTOR + forward_work(n_tokens)


def occlusion_work(n_tokens: int, window: int, batch_size: int) -> Work:
    spans = max(n_tokens - window + 1, 1) if window > 1 else n_tokens
    return Work(_passes(spans, batch_size) + 2, (spans + 2) * n_tokens)


def generation_work(prompt_tokens: int, new_tokens: int) -> Work:
    """The prompt once, then one call per new token (KV cache)."""
    return Work(1 + new_tokens, prompt_tokens + new_tokens)


def attribution_work(methods, n_tokens: int, params: dict) -> Work:
    """The Explain page's attribution run: each method of ``methods`` with its ``params[method]``."""
    work = forward_work(n_tokens)  # the problem's own forward (top prediction)
    for m in methods:
        p = params.get(m, {})
        if m == "integrated_gradients":
            work += ig_work(n_tokens, int(p.get("steps", 32)), int(p.get("batch_size", 16)))
        elif m == "occlusion":
            work += occlusion_work(n_tokens, int(p.get("window", 1)), int(p.get("batch_size", 32)))
        elif m == "grad_x_input":
            work += grad_x_input_work(n_tokens)
        else:  # attention methods: one forward with the weights
            work += forward_work(n_tokens)
    return work


def _shapes_work(shapes) -> Work:
    """One model call per ``(rows, padded width)`` shape, ``rows × width`` token-forwards each."""
    return Work(len(shapes), sum(rows * width for rows, width in shapes))


def pairs_work(shapes) -> Work:
    """CrowS-Pairs scoring (``llmviz.bias.pairs.score_pairs``): ``shapes`` = ``pairs.call_shapes(loaded, frame)``,
    the padded batches of 32-pair chunks — a causal LM one row per sentence, a masked LM one row per shared
    token of each sentence with that token masked (pseudo-log-likelihood)."""
    return _shapes_work(shapes)


def stereoset_work(shapes) -> Work:
    """StereoSet scoring (``llmviz.bias.stereoset.score_dataset``): ``shapes`` =
    ``stereoset.call_shapes(loaded, data)``, batches of 64-sentence chunks — a causal LM one row per candidate
    (with its context), a masked LM one row per scored token, masked."""
    return _shapes_work(shapes)


def seat_work(shapes) -> Work:
    """SEAT tests (``llmviz.bias.seat.run_test_full``): ``shapes`` = ``seat.call_shapes(loaded, tests)``, every
    item of the four sets embedded 64 at a time with all hidden states. The permutation tests run no model:
    their time is learnt in the kind's ratio taken/predicted."""
    return _shapes_work(shapes)
