"""Time estimates for heavy work ("about N s on this machine"): model size × tokens × passes at
a rate measured once per process with a small float32 matmul (so a loaded or slow machine gives
a longer estimate). An estimate, not a promise: shown before the user starts the work."""

from __future__ import annotations

import time
from functools import lru_cache

FORWARD_FLOPS_PER_PARAM_TOKEN = 2.0  # one multiply-add per weight per token
BACKWARD_FACTOR = 3.0  # forward + backward ≈ 3 forwards
EFFICIENCY = 0.25  # a transformer forward pass reaches about a quarter of the matmul rate on CPU


@lru_cache(maxsize=1)
def measured_flops() -> float:
    """Float32 multiply-add rate of this machine now (FLOP/s), from a 384×384 matmul."""
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
    """Seconds for ``forward_passes`` forward and ``backward_passes`` forward+backward passes."""
    rate = (flops or measured_flops()) * EFFICIENCY
    work = FORWARD_FLOPS_PER_PARAM_TOKEN * n_params * max(n_tokens, 1)
    return work * (forward_passes + BACKWARD_FACTOR * backward_passes) / rate
