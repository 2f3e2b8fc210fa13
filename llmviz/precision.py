"""Exact and fast arithmetic for batched work.

``exact`` (the default, and the only mode for audits and checked figures) is float32 throughout. ``bf16`` runs
the forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)``: matrix products in bfloat16 on CPUs
with AMX or AVX-512 BF16 units, accumulations and the final scores in float32. Whether the CPU has those units
is read at run time (``/proc/cpuinfo`` and torch's own CPU capability), never assumed; where it lacks them the
mode is off and :func:`bf16_support` says why. A run in ``bf16`` also measures its own deviation: the first
item again in float32 (:func:`max_deviation`), shown beside the result.

Generation has its own pair of modes (:data:`GENERATION_MODES`): ``exact`` and ``int8``, weight-only int8 with
per-output-channel scales (``llmviz.generation.quantize``), which reads a quarter of the bytes per weight at
batch 1, where generation is bound by memory bandwidth. Its kernel (``torch.ops.aten._weight_int8pack_mm``) is
tried once at run time (:func:`int8_support`), never assumed; its deviation from float32 is measured
(``llmviz.generation.deviation``).
"""

from __future__ import annotations

import platform
import threading
import weakref
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from llmviz.errors import InputError

EXACT, BF16 = "exact", "bf16"
MODES: dict[str, str] = {
    EXACT: "float32 throughout (default; audits and checked figures)",
    BF16: "bfloat16 matrix products under autocast (AMX / AVX-512 BF16), deviation measured on the first item",
}
INT8 = "int8"
GENERATION_MODES: dict[str, str] = {
    EXACT: "float32 throughout (default)",
    INT8: "int8 weights with per-channel scales, bfloat16 activations into each linear layer; top-1 agreement "
    "with float32 measured",
}
# The int8 kernel gave wrong numbers, or crashed, on input widths that are not a multiple of 16 (torch 2.13,
# AVX-512): such layers multiply by their dequantised weight instead (llmviz.generation.quantize).
INT8_K_MULTIPLE = 16
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bfloat16 matrix instructions


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@lru_cache(maxsize=1)
def bf16_facts() -> dict[str, object]:
    """What the fast mode depends on, read now: ``units`` (the bf16 flags this CPU reports), ``capability``
    (torch's CPU kernel level), ``available`` (both suffice)."""
    import torch

    flags = _cpu_flags()
    units = [f for f in BF16_FLAGS if f in flags]
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch: no capability query
        capability = "unknown"
    kernels = capability.startswith("AVX512") or capability == "AMX"
    return {"units": units, "capability": capability, "available": bool(units) and kernels}


@lru_cache(maxsize=1)
def bf16_support() -> tuple[bool, str]:
    """(available, reason): whether the fast mode can run on this machine, and a sentence (English, for the CLI
    and logs; the app words it from :func:`bf16_facts`) saying which units it uses or why it is off."""
    facts = bf16_facts()
    units, capability = facts["units"], facts["capability"]
    if not units:
        machine = platform.machine() or "this CPU"
        return False, (
            f"The fast mode is off: {machine} reports neither AMX nor AVX-512 BF16 "
            f"(torch CPU capability: {capability}), so bfloat16 would be emulated and slower than float32."
        )
    if not facts["available"]:
        return False, (
            f"The fast mode is off: the CPU has {', '.join(units)} but this torch build uses {capability} kernels."
        )
    return True, f"bfloat16 on {', '.join(units)} (torch CPU capability: {capability})"


def check_mode(mode: str) -> str:
    """``mode`` if known and available here; else an InputError naming the choices or why bf16 is off."""
    if mode not in MODES:
        raise InputError(f"Unknown precision '{mode}'. Choose one of {', '.join(MODES)}.")
    if mode == BF16:
        ok, why = bf16_support()
        if not ok:
            raise InputError(why)
    return mode


@contextmanager
def arithmetic(mode: str = EXACT) -> Iterator[None]:
    """The block's forward passes in ``mode`` (exact: unchanged)."""
    import torch

    check_mode(mode)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode == BF16 else nullcontext()
    with ctx:
        yield


def deviation_text(mode: str, deviation: float | None, quantity: str, where: str) -> str:
    """A fast run's measured deviation in words for reports and summary lines ("" for exact), e.g.
    ``bf16: max |Δ score| 0.064 nats on the first pair against float32``."""
    if mode == EXACT:
        return ""
    return f"{mode}: max {quantity} {deviation:.3g} {where} against float32"


def max_deviation(fast, exact) -> float:
    """max |fast − exact| over the items both runs computed (NaN entries ignored)."""
    a, b = np.asarray(fast, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    both = ~(np.isnan(a) | np.isnan(b))
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else float("nan")


# ---------------------------------------------------------------- weight-only int8 for generation
def int8_kernel():
    """``torch.ops.aten._weight_int8pack_mm(x [M, K] bf16, w [N, K] int8, scales [N] bf16) -> [M, N]`` (a
    seam: tests replace it to see the mode switch off). Raises AttributeError where torch has no such op."""
    import torch

    return torch.ops.aten._weight_int8pack_mm


@lru_cache(maxsize=1)
def int8_facts() -> dict[str, object]:
    """What the fast generation mode depends on, read now by one small trial call of the kernel, checked
    against the same product in float32 (an op that exists but gives wrong numbers is off too): ``torch``
    (version), ``capability`` (torch's CPU kernel level), ``error`` (why the call failed, "" if it ran),
    ``correct`` (its numbers matched), ``available``."""
    import torch

    error, correct = "", False
    try:
        mm = int8_kernel()
        g = torch.Generator().manual_seed(0)
        k = 3 * INT8_K_MULTIPLE  # an odd multiple: the widths real models have (576 = 36 x 16)
        x = torch.randn(3, k, generator=g).to(torch.bfloat16)
        w = torch.randint(-127, 128, (9, k), generator=g, dtype=torch.int8)
        s = (torch.rand(9, generator=g) + 0.5).to(torch.bfloat16)
        y = mm(x, w, s).float()
        ref = x.float() @ (w.float() * s.float()[:, None]).T
        correct = tuple(y.shape) == (3, 9) and bool(
            torch.allclose(y, ref, rtol=2e-2, atol=2e-2 * float(ref.abs().max()))
        )
    except Exception as err:  # no such op in this torch build, or it refuses these tensors
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'}"
    return {
        "torch": torch.__version__,
        "capability": bf16_facts()["capability"],
        "error": error,
        "correct": correct,
        "available": not error and correct,
    }


@lru_cache(maxsize=1)
def int8_support() -> tuple[bool, str]:
    """(available, reason): whether weight-only int8 generation can run here (:func:`int8_facts`), and a
    sentence (English, for the CLI and logs; the app words it from the facts) saying what it uses or why it
    is off."""
    facts = int8_facts()
    if facts["error"]:
        return False, (
            f"The fast generation mode is off: this torch build ({facts['torch']}) cannot multiply by int8 "
            f"weights ({facts['error']})."
        )
    if not facts["correct"]:
        return False, (
            f"The fast generation mode is off: the int8 weight kernel of torch {facts['torch']} gave wrong "
            "numbers in a trial multiplication on this CPU."
        )
    return True, f"int8 weights (torch {facts['torch']}, CPU capability {facts['capability']})"


def check_generation_mode(mode: str, device: str = "cpu") -> str:
    """``mode`` if it is a generation mode available here for a model on ``device``; else an InputError naming the
    choices or why it is off (the int8 kernel is tried on the CPU only: on a GPU, float32 is fast already)."""
    if mode not in GENERATION_MODES:
        raise InputError(f"Unknown generation precision '{mode}'. Choose one of {', '.join(GENERATION_MODES)}.")
    if mode == INT8:
        if str(device) != "cpu":
            raise InputError(f"The fast generation mode runs on the CPU only; this model is on {device}: use exact.")
        ok, why = int8_support()
        if not ok:
            raise InputError(why)
    return mode


_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # shared model -> its bfloat16 copy
_TWIN_LOCK = threading.Lock()


def linear_weight(module):
    """The ``[out, in]`` weight of a linear layer: ``nn.Linear``, or transformers' ``Conv1D`` (GPT-2, stored
    ``[in, out]``); None for anything else."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return module.weight
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        return module.weight.T
    return None


def linear_twin(model, make):
    """A copy of ``model``'s module tree sharing all its parameters and buffers, with every linear layer replaced
    by ``make(weight [out, in], bias)`` (``model`` is left as it was). Hooks present on ``model`` (another
    session's scoped hooks) are not carried over; transformers' own output-capturing hooks are installed afresh
    on the twin's first call."""
    import copy
    import itertools

    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    twin = copy.deepcopy(model, memo=shared)  # new modules, the same tensors
    for module in twin.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks):
            hooks.clear()
        # transformers records hidden states and attentions by hooks it installs on first use, marked by this
        # flag: cleared with the hooks above, so it installs them again on the twin
        module.__dict__.pop("_output_capturing_hooks_installed", None)
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            weight = linear_weight(child)
            if weight is not None:
                setattr(parent, name, make(weight, getattr(child, "bias", None)))
    return twin.eval()


def _bf16_linear_class():
    import torch

    class Bf16Linear(torch.nn.Module):
        """``y = x Wᵀ + b`` with ``W`` stored once in bfloat16: ``x`` is cast to bfloat16 for the product and
        ``y`` comes back in ``x``'s dtype (the bias, shared with the source layer, is added there)."""

        def __init__(self, weight, bias=None):
            super().__init__()
            self.register_buffer("weight", weight.detach().to(torch.bfloat16).contiguous())
            self.bias = None if bias is None else bias.detach()
            self.out_features, self.in_features = self.weight.shape

        def forward(self, x):
            y = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)
            return y if self.bias is None else y + self.bias

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, bfloat16 weight"

    return Bf16Linear


def bf16_twin(model):
    """The model with its matrix products in bfloat16, for batched work (built on first use, kept as long as
    ``model`` lives; the shared float32 model is left as it was): every linear layer's weight is cast once to
    bfloat16 and multiplies its input cast to bfloat16; everything else (norms, attention's products and softmax,
    activations, embeddings) is the model's own float32 arithmetic on the same tensors. Measured on smollm2's
    patching sweep: a whole bfloat16 copy lost most of the gain in bfloat16 element-wise kernels (a multiply
    ~10x, attention's batched products ~18x slower than float32), and autocast in per-call weight casts."""
    import torch

    with _TWIN_LOCK:
        twin = _TWINS.get(model)
        if twin is None:
            with torch.no_grad():
                twin = linear_twin(model, _bf16_linear_class())
            _TWINS[model] = twin
    return twin


def on_precision(loaded, mode: str = EXACT):
    """The loaded model a batched run in ``mode`` uses: ``loaded`` itself for exact; for bf16 the same
    ``LoadedModel`` (tokenizer, facts, device) on the model's :func:`bf16_twin`. An InputError where the mode is
    unknown or off on this CPU (:func:`check_mode`)."""
    from dataclasses import replace

    check_mode(mode)
    return loaded if mode == EXACT else replace(loaded, model=bf16_twin(loaded.model))
