"""Finding the modules to hook, and hooks that never outlive their ``with`` block.

Cached models are shared by every browser session, so a hook only acts in the thread that registered
it: another session's forward pass through the same model is left untouched.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from llmviz.errors import UnsupportedModelError

LAYER_PATHS = ("layers", "encoder.layer", "h", "decoder.layers", "layer")
# Module whose *input* is the concatenation of the heads' outputs [B, T, heads * head_dim].
OUT_PROJ_PATHS = (
    "self_attn.o_proj",
    "attention.output.dense",
    "attn.c_proj",
    "self_attn.out_proj",
    "attention.dense",
    "attn.out_proj",
)
FINAL_NORM_PATHS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "decoder.final_layer_norm")


def _get(obj: Any, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def transformer_layers(model) -> list:
    """The list of transformer blocks of any supported HF model (base model or with a head)."""
    base = model.base_model
    for path in LAYER_PATHS:
        layers = _get(base, path)
        if layers is not None and hasattr(layers, "__len__") and len(layers) > 0:
            return list(layers)
    raise UnsupportedModelError(
        f"Cannot find the transformer layers of {type(model).__name__}; "
        "head ablation and the logit lens support BERT, Llama and GPT-2 style models."
    )


def attention_out_proj(layer):
    """The attention output projection whose input is ``[B, T, n_heads * head_dim]``."""
    for path in OUT_PROJ_PATHS:
        mod = _get(layer, path)
        if mod is not None:
            return mod
    raise UnsupportedModelError(f"Cannot find the attention output projection in {type(layer).__name__}.")


def final_norm(model):
    """The norm applied to the residual stream before the unembedding (causal LMs)."""
    base = model.base_model
    for path in FINAL_NORM_PATHS:
        mod = _get(base, path)
        if mod is not None:
            return mod
    raise UnsupportedModelError(
        f"Cannot find the final norm of {type(model).__name__}, so the logit lens cannot be computed for it."
    )


@contextmanager
def scoped_hooks(pre: list[tuple[Any, Callable]] = (), post: list[tuple[Any, Callable]] = ()) -> Iterator[None]:
    """Register forward pre-hooks / hooks for the duration of the block; always removed in ``finally``.
    Hooks run only in the registering thread."""
    owner = threading.get_ident()

    def only_here(fn):
        def wrapped(*args):
            return fn(*args) if threading.get_ident() == owner else None

        return wrapped

    handles = []
    try:
        for module, fn in pre:
            handles.append(module.register_forward_pre_hook(only_here(fn)))
        for module, fn in post:
            handles.append(module.register_forward_hook(only_here(fn)))
        yield
    finally:
        for h in handles:
            h.remove()
