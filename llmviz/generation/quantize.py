"""Weight-only int8 for fast generation: a quantised twin of a loaded model.

At batch 1 each generated token reads every weight once, so generation is bound by memory bandwidth: int8
weights read a quarter of float32's bytes. Each linear layer (attention q/k/v/o, the MLP, and the LM head)
keeps ``W ≈ q · s``: ``q`` int8 ``[out, in]`` and one scale ``s`` per output channel (symmetric, ``s`` =
max |row| / 127 rounded *up* to bfloat16, so every weight is within ``s/2`` of its dequantised value and
none is clipped). The product runs in torch's ``_weight_int8pack_mm`` on bfloat16 activations (float32
activations take a path about 5× slower) and returns float32; embeddings, norms, rotary tables and the
attention arithmetic stay float32. The LM head tied to the embedding gets its own int8 copy; the embedding
lookup stays float32.

The loaded model is shared between sessions and never changed: :func:`int8_twin` builds, once per model (kept
while the model lives), a copy of the module tree that shares every float32 parameter and buffer with it and
has only its linear layers replaced. Whether the kernel works here is :func:`llmviz.precision.int8_support`.
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch import nn

from llmviz.precision import INT8_K_MULTIPLE, int8_kernel, linear_twin, linear_weight

QMAX = 127  # symmetric int8: -127..127 (-128 unused, so q and -q are both representable)
_TWINS: "weakref.WeakKeyDictionary[nn.Module, nn.Module]" = weakref.WeakKeyDictionary()  # shared model -> twin
_LOCK = threading.Lock()


def quantise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8 of ``weight`` ``[out, in]``: (``q`` int8 ``[out, in]``, ``scales``
    bfloat16 ``[out]``), ``weight ≈ q · scales[:, None]`` with every entry within ``scales/2``."""
    w = weight.detach().float()
    s = (w.abs().amax(dim=1) / QMAX).clamp(min=torch.finfo(torch.float32).tiny)
    # round the scale up to bfloat16 (the kernel takes bf16 scales): then |w| / s <= 127, nothing is clipped
    s16 = (s * (1 + 2**-7)).to(torch.bfloat16)
    q = torch.round(w / s16.float()[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return q, s16


def dequantise(q: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """float32 ``[out, in]`` weight that ``q`` and ``scales`` stand for."""
    return q.float() * scales.float()[:, None]


class Int8Linear(nn.Module):
    """``y = x Wᵀ + b`` with ``W`` as int8 + per-channel scales. ``x`` ``[..., in]`` (any float dtype) is
    multiplied in bfloat16; ``y`` ``[..., out]`` comes back in ``x``'s dtype."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        q, scales = quantise(weight)
        self.out_features, self.in_features = q.shape
        self.register_buffer("q", q)
        self.register_buffer("scales", scales)
        self.bias = None if bias is None else bias.detach()  # shared with the source layer, not copied
        # input widths the kernel gets wrong multiply by the dequantised weight (small models only)
        self.kernel = int8_kernel() if self.in_features % INT8_K_MULTIPLE == 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()  # [rows, in]
        if self.kernel is not None:
            y = self.kernel(x2, self.q, self.scales)  # [rows, out] bf16
        else:
            y = x2 @ dequantise(self.q, self.scales).to(torch.bfloat16).T
        y = y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def build_int8_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s module tree sharing all its parameters and buffers, with every linear layer
    replaced by an :class:`Int8Linear` (``model`` is left as it was; :func:`llmviz.precision.linear_twin`)."""
    return linear_twin(model, Int8Linear)


def int8_twin(model: nn.Module) -> nn.Module:
    """The int8 twin of ``model``, built on first use and kept as long as ``model`` lives."""
    with _LOCK:
        twin = _TWINS.get(model)
        if twin is None:
            with torch.no_grad():
                twin = build_int8_twin(model)
            _TWINS[model] = twin
    return twin


def linear_count(model: nn.Module) -> tuple[int, int]:
    """(int8 layers, linear layers left in float) of a model or twin."""
    modules = list(model.modules())
    return (
        sum(isinstance(m, Int8Linear) for m in modules),
        sum(linear_weight(m) is not None for m in modules),
    )
