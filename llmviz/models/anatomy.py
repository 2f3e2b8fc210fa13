"""One model anatomy: the one place that knows where a Hugging Face model keeps its parts.

``anatomy(model)`` returns an :class:`Anatomy`; every other module of llmviz asks it for layers, attention
projections, MLPs, norms, the unembedding and the position modules instead of walking attribute paths itself.
Supported families (what :attr:`Anatomy.family` and :attr:`LayerAttention.family` report):

- ``bert`` (BERT, RoBERTa, ELECTRA, MiniLM, the training lab's masked LMs): ``encoder.layer[l]``, attention
  ``attention.self.{query,key,value}``, W^O ``attention.output.dense``; post-norm (``norm_style == "post"``):
  the attention block's output is ``attention.output.LayerNorm(x + dense(...))``, the MLP's ``output.dense``
  goes through ``output.LayerNorm`` the same way; learned absolute positions ``embeddings.position_embeddings``.
- ``gpt2`` (GPT-2 and the training lab's causal LMs): ``h[l]``, one fused ``attn.c_attn`` = [W_Q | W_K | W_V],
  W^O ``attn.c_proj``; pre-norm (``ln_1``, ``ln_2``), final ``ln_f``; learned positions ``wpe``.
- ``llama`` (Llama, Mistral, Qwen2, SmolLM2): ``layers[l]``, ``self_attn.{q,k,v,o}_proj``, GQA (``n_kv_heads`` <
  ``n_heads``: query head ``h`` reads kv head ``h // (n_heads / n_kv_heads)``); pre-norm (``input_layernorm``
  before attention, ``post_attention_layernorm`` before the MLP), final ``norm``; ``rotary_emb``.
- ``gemma3`` (Gemma 3): Llama-style projections plus RMSNorm on every query and key head vector (``q_norm``,
  ``k_norm``); sandwich norms (``norm_style == "sandwich"``: ``post_attention_layernorm`` and
  ``post_feedforward_layernorm`` normalise each sublayer's *output* before it is added to the residual stream,
  ``pre_feedforward_layernorm`` is the norm before the MLP); sliding-window layers (``LayerAttention.sliding_window``)
  and one RoPE table per layer type (:attr:`Anatomy.rope_layer_types`).

Layers, W^O, MLPs and the final norm are also found for other families with the same names (GPT-NeoX's
``attention.dense``, BART's ``out_proj``...); the q/k/v projections only for the four families above
(:meth:`Anatomy.attn` raises :class:`~llmviz.errors.UnsupportedModelError` otherwise).

Only attribute lookups happen here (no forward pass); an :class:`Anatomy` is cheap to build.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from llmviz.errors import UnsupportedModelError

BERT, GPT2, LLAMA, GEMMA3 = "bert", "gpt2", "llama", "gemma3"
FAMILIES = (BERT, GPT2, LLAMA, GEMMA3)
PRE, POST, SANDWICH = "pre", "post", "sandwich"  # norm styles

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
# Module whose output is the MLP's contribution [B, T, D] (BERT: the dense before LayerNorm(x + ·)).
MLP_PATHS = ("mlp", "output.dense", "feed_forward", "ffn")
FINAL_NORM_PATHS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "decoder.final_layer_norm")
# Module names that hold a learned absolute position table, most specific first.
LEARNED_NAMES = ("position_embeddings", "wpe", "embed_positions")
ROTARY_NAME = "rotary_emb"
ROPE_LAYER_TYPES = ("full_attention", "sliding_attention")


def _get(obj: Any, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _first(obj: Any, paths: tuple[str, ...]):
    for path in paths:
        mod = _get(obj, path)
        if mod is not None:
            return mod
    return None


@dataclass
class LayerAttention:
    """Where one layer's attention lives.

    ``module`` computes Q, K and V; ``q``/``k``/``v`` are the projections (the same fused ``c_attn`` for GPT-2,
    ``fused_qkv`` True: its output columns are [Q | K | V]); ``o`` is W^O, whose input is the heads' outputs
    concatenated head-major ``[B, T, n_heads * head_dim]``; ``block`` is the module whose output is "the attention
    block output" (BERT: ``attention``, which adds the input and applies ``out_norm``; others: ``module``,
    before the residual add). ``scaling`` multiplies Q K^T. ``sliding_window``: this layer's window (None:
    global). ``q_norm``/``k_norm``: per-head RMSNorm modules (Gemma 3, Qwen 3) or None."""

    family: str
    module: Any
    q: Any
    k: Any
    v: Any
    o: Any
    block: Any
    scaling: float
    n_heads: int
    n_kv_heads: int
    head_dim: int
    sliding_window: int | None = None
    q_norm: Any = None
    k_norm: Any = None
    out_norm: Any = None  # BERT: the LayerNorm applied to x + W^O(...) inside ``block``
    fused_qkv: bool = False


@dataclass(frozen=True)
class LayerNorms:
    """The norms of one block (None where the block has none).

    ``pre_attn`` / ``pre_mlp``: applied to the residual stream before the sublayer (pre-norm and sandwich);
    ``post_attn`` / ``post_mlp``: sandwich (Gemma 3): applied to the sublayer's output before it is added;
    post-norm (BERT): applied to ``x + sublayer output``."""

    pre_attn: Any = None
    pre_mlp: Any = None
    post_attn: Any = None
    post_mlp: Any = None


class Anatomy:
    """Where ``model`` (a transformers model, with or without a head) keeps its parts. Build with :func:`anatomy`.

    Attributes: ``model``, ``base`` (the base transformer), ``config``, ``layers`` (the blocks, in order),
    ``n_layers``, ``n_heads`` / ``n_kv_heads`` / ``head_dim`` / ``hidden_size`` (from the config), ``family``
    (one of :data:`FAMILIES`, or None), ``norm_style`` (``pre`` | ``post`` | ``sandwich``), ``final_norm``,
    ``unembed`` (the vocabulary projection, None for base models), ``embed`` (token embeddings),
    ``position_embeddings`` (+ ``position_embeddings_name``), ``rotary`` (+ ``rotary_name``), ``rope_layer_types``,
    ``qk_norm``, ``embed_norm``. Per layer: :meth:`attn`, :meth:`q_proj`, :meth:`k_proj`, :meth:`v_proj`,
    :meth:`o_proj`, :meth:`projection` (the weights as plain matrices), :meth:`mlp`, :meth:`norms`,
    :meth:`sandwich_norms`."""

    def __init__(self, model):
        self.model = model
        self.base = getattr(model, "base_model", model)
        self.config = getattr(model, "config", None)

    def __repr__(self) -> str:
        return (
            f"Anatomy({type(self.model).__name__}: family={self.family}, norm_style={self.norm_style}, "
            f"heads={self.n_heads}/{self.n_kv_heads}x{self.head_dim})"
        )

    # ------------------------------------------------------------ head layout (from the config)
    def _cfg(self, *names, default=None):
        for name in names:
            value = getattr(self.config, name, None)
            if value:
                return value
        return default

    @cached_property
    def n_heads(self) -> int:
        """Query heads per layer."""
        return int(self._cfg("num_attention_heads", "n_head", default=0))

    @cached_property
    def n_kv_heads(self) -> int:
        """Key/value heads per layer (< ``n_heads`` with grouped-query attention, 1 with MQA)."""
        return int(self._cfg("num_key_value_heads", default=self.n_heads))

    @cached_property
    def hidden_size(self) -> int:
        return int(self._cfg("hidden_size", "n_embd", default=0))

    @cached_property
    def head_dim(self) -> int:
        return int(self._cfg("head_dim", default=self.hidden_size // self.n_heads if self.n_heads else 0))

    # ------------------------------------------------------------ blocks
    @cached_property
    def layers(self) -> list:
        """The transformer blocks, in order."""
        for path in LAYER_PATHS:
            layers = _get(self.base, path)
            if layers is not None and hasattr(layers, "__len__") and len(layers) > 0:
                return list(layers)
        raise UnsupportedModelError(
            f"Cannot find the transformer layers of {type(self.model).__name__}; "
            "head ablation and the logit lens support BERT, Llama and GPT-2 style models."
        )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def o_proj(self, layer: int):
        """W^O of ``layer``: the module whose input is ``[B, T, n_heads * head_dim]`` (the heads concatenated)."""
        block = self.layers[layer]
        mod = _first(block, OUT_PROJ_PATHS)
        if mod is None:
            raise UnsupportedModelError(f"Cannot find the attention output projection in {type(block).__name__}.")
        return mod

    def mlp(self, layer: int):
        """The module whose output is ``layer``'s MLP contribution ``[B, T, D]`` (BERT: ``output.dense``,
        before ``LayerNorm(x + ·)``)."""
        block = self.layers[layer]
        mod = _first(block, MLP_PATHS)
        if mod is None:
            raise UnsupportedModelError(
                f"Cannot find the MLP of {type(block).__name__}; patching supports BERT, Llama and GPT-2 style models."
            )
        return mod

    def attn(self, layer: int) -> LayerAttention:
        """The attention of ``layer``: projections, head layout, scaling, window, QK-norm."""
        if layer not in self._attn:
            self._attn[layer] = self._find_attention(self.layers[layer])
        return self._attn[layer]

    def q_proj(self, layer: int):
        return self.attn(layer).q

    def k_proj(self, layer: int):
        return self.attn(layer).k

    def v_proj(self, layer: int):
        return self.attn(layer).v

    def attention_layers(self) -> list[LayerAttention]:
        """:meth:`attn` of every layer, in order."""
        return [self.attn(i) for i in range(self.n_layers)]

    @cached_property
    def _attn(self) -> dict[int, LayerAttention]:
        return {}

    def _find_attention(self, block) -> LayerAttention:
        n_heads, n_kv = self.n_heads, self.n_kv_heads
        named = dict(block.named_modules())
        for name, mod in named.items():
            if all(hasattr(mod, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj")):
                head_dim = int(getattr(mod, "head_dim", None) or mod.q_proj.out_features // n_heads)
                qn, kn = getattr(mod, "q_norm", None), getattr(mod, "k_norm", None)
                gemma = qn is not None and kn is not None and "Gemma" in type(qn).__name__
                return LayerAttention(
                    GEMMA3 if gemma else LLAMA,
                    mod,
                    mod.q_proj,
                    mod.k_proj,
                    mod.v_proj,
                    mod.o_proj,
                    mod,
                    float(getattr(mod, "scaling", head_dim**-0.5)),
                    n_heads,
                    n_kv,
                    head_dim,
                    getattr(mod, "sliding_window", None) or None,
                    qn,
                    kn,
                )
            if hasattr(mod, "c_attn") and hasattr(mod, "c_proj") and not getattr(mod, "is_cross_attention", False):
                head_dim = int(getattr(mod, "head_dim", mod.c_proj.weight.shape[0] // n_heads))
                return LayerAttention(
                    GPT2,
                    mod,
                    mod.c_attn,
                    mod.c_attn,
                    mod.c_attn,
                    mod.c_proj,
                    mod,
                    float(getattr(mod, "scaling", head_dim**-0.5)),
                    n_heads,
                    n_heads,
                    head_dim,
                    fused_qkv=True,
                )
            if all(hasattr(mod, a) for a in ("query", "key", "value")) and name.split(".")[-1] == "self":
                parent = named.get(name.rpartition(".")[0])
                dense = _get(parent, "output.dense")
                if parent is None or dense is None:
                    continue
                head_dim = int(getattr(mod, "attention_head_size", mod.query.out_features // n_heads))
                return LayerAttention(
                    BERT,
                    mod,
                    mod.query,
                    mod.key,
                    mod.value,
                    dense,
                    parent,
                    float(getattr(mod, "scaling", head_dim**-0.5)),
                    n_heads,
                    n_heads,
                    head_dim,
                    out_norm=_get(parent, "output.LayerNorm"),
                )
        raise UnsupportedModelError(
            f"{type(self.model).__name__}: {type(block).__name__} has no BERT-, GPT-2- or Llama-style attention."
        )

    @cached_property
    def family(self) -> str | None:
        """``bert`` | ``gpt2`` | ``llama`` | ``gemma3`` (the first layer's attention), or None."""
        try:
            return self.attn(0).family
        except UnsupportedModelError:
            return None

    @cached_property
    def norm_style(self) -> str:
        """``post`` (BERT: LayerNorm(x + sublayer)), ``sandwich`` (Gemma 3: x + norm(sublayer(norm(x)))) or
        ``pre`` (GPT-2, Llama: x + sublayer(norm(x)))."""
        block = self.layers[0]
        if _get(block, "attention.output.LayerNorm") is not None or self.family == BERT:
            return POST
        if hasattr(block, "pre_feedforward_layernorm") and hasattr(block, "post_feedforward_layernorm"):
            return SANDWICH
        return PRE

    def norms(self, layer: int) -> LayerNorms:
        """The norms of block ``layer`` (see :class:`LayerNorms`)."""
        block = self.layers[layer]
        if self.norm_style == POST:
            return LayerNorms(
                post_attn=_get(block, "attention.output.LayerNorm"), post_mlp=_get(block, "output.LayerNorm")
            )
        pre_attn = _first(block, ("input_layernorm", "ln_1"))
        if self.norm_style == SANDWICH:
            return LayerNorms(
                pre_attn,
                block.pre_feedforward_layernorm,
                block.post_attention_layernorm,
                block.post_feedforward_layernorm,
            )
        return LayerNorms(pre_attn, _first(block, ("post_attention_layernorm", "ln_2")))

    def sandwich_norms(self, layer: int) -> tuple[Any, Any]:
        """``(post-attention norm, post-MLP norm)`` applied to the sublayers' outputs before they are added to
        the residual stream (sandwich norms, Gemma 2/3); ``(None, None)`` for pre- and post-norm blocks (in
        Llama, ``post_attention_layernorm`` is the norm *before* the MLP and must not be applied to outputs)."""
        if self.norm_style != SANDWICH:
            return None, None
        n = self.norms(layer)
        return n.post_attn, n.post_mlp

    def projection(self, layer: int, which: str):
        """``(W [out, in], b [out] or None)`` of ``layer``'s ``q``/``k``/``v``/``o`` projection as a plain matrix
        (``y = x W^T + b``), whatever the storage: ``nn.Linear`` or GPT-2's ``Conv1D`` (``[in, out]``; the fused
        ``c_attn`` is cut into its Q, K and V thirds). q/k rows are head-major (query head ``h``: rows
        ``h*head_dim:(h+1)*head_dim``); W^O's columns are the heads' outputs concatenated head-major."""
        la = self.attn(layer)
        mod = getattr(la, which)
        weight, bias = mod.weight, getattr(mod, "bias", None)
        if type(mod).__name__ == "Conv1D":  # GPT-2 stores [in, out]
            weight = weight.T
        if la.fused_qkv and which in ("q", "k", "v"):
            n = weight.shape[0] // 3
            part = "qkv".index(which)
            weight = weight[part * n : (part + 1) * n]
            bias = None if bias is None else bias[part * n : (part + 1) * n]
        return weight, bias

    @cached_property
    def embed_norm(self):
        """The norm inside the embedding block (BERT: ``embeddings.LayerNorm``), or None."""
        return _get(self.base, "embeddings.LayerNorm")

    # ------------------------------------------------------------ ends of the model
    @cached_property
    def final_norm(self):
        """The norm applied to the residual stream before the unembedding (pre-norm models)."""
        mod = _first(self.base, FINAL_NORM_PATHS)
        if mod is None:
            raise UnsupportedModelError(
                f"Cannot find the final norm of {type(self.model).__name__}, "
                "so the logit lens cannot be computed for it."
            )
        return mod

    @property
    def unembed(self):
        """The vocabulary projection (``lm_head``, BERT's ``decoder``), or None for a model without a head."""
        get = getattr(self.model, "get_output_embeddings", None)
        return get() if get is not None else None

    @property
    def embed(self):
        """The token embedding module (``[B, T] -> [B, T, D]``; Gemma's scales by sqrt(hidden) inside)."""
        get = getattr(self.model, "get_input_embeddings", None)
        return get() if get is not None else None

    # ------------------------------------------------------------ positions
    @cached_property
    def _position(self) -> tuple[str, Any] | None:
        import torch

        for suffix in LEARNED_NAMES:
            for name, mod in self.model.named_modules():
                if name.split(".")[-1] == suffix and isinstance(mod, torch.nn.Embedding):
                    return name, mod
        return None

    @property
    def position_embeddings(self):
        """The learned absolute position table (``nn.Embedding`` [max_positions, hidden]), or None."""
        return self._position[1] if self._position else None

    @property
    def position_embeddings_name(self) -> str | None:
        """Its module name (``bert.embeddings.position_embeddings``, ``transformer.wpe``), or None."""
        return self._position[0] if self._position else None

    @cached_property
    def _rotary(self) -> tuple[str, Any] | None:
        for name, mod in self.model.named_modules():
            if name.split(".")[-1] == ROTARY_NAME and (
                hasattr(mod, "inv_freq") or any(hasattr(mod, f"{lt}_inv_freq") for lt in ROPE_LAYER_TYPES)
            ):
                return name, mod
        return None

    @property
    def rotary(self):
        """The rotary embedding module (called as ``rotary(x, position_ids[, layer_type]) -> (cos, sin)``), or None.
        Gemma 3's holds one table per layer type (``full_attention_inv_freq``, ``sliding_attention_inv_freq``)."""
        return self._rotary[1] if self._rotary else None

    @property
    def rotary_name(self) -> str | None:
        """Its module name (``model.rotary_emb``), or None."""
        return self._rotary[0] if self._rotary else None

    @property
    def rope_layer_types(self) -> tuple[str | None, ...]:
        """The layer types with their own RoPE table, global first; ``(None,)`` for one table (or none)."""
        mod = self.rotary
        if mod is None or hasattr(mod, "inv_freq"):
            return (None,)
        return tuple(lt for lt in ROPE_LAYER_TYPES if hasattr(mod, f"{lt}_inv_freq"))

    @cached_property
    def qk_norm(self) -> bool:
        """True when attention normalises every query and key head vector (Gemma 3, Qwen 3)."""
        first = next((m for m in self.model.modules() if hasattr(m, "q_proj") and hasattr(m, "k_proj")), None)
        return first is not None and hasattr(first, "q_norm") and hasattr(first, "k_norm")


def anatomy(model) -> Anatomy:
    """The :class:`Anatomy` of a transformers model (base model or with a head)."""
    return Anatomy(model)


# ---------------------------------------------------------------- how the model is called
@lru_cache(maxsize=32)
def forward_params(model_class) -> frozenset[str]:
    """The keyword names ``model_class.forward`` accepts."""
    return frozenset(inspect.signature(model_class.forward).parameters)


def cache_keyword(model) -> str | None:
    """The keyword a model's forward takes its KV cache by: ``cache`` (transformers >= 5.2x) or the older
    ``past_key_values``; None where it takes neither."""
    params = forward_params(type(model))
    return "cache" if "cache" in params else "past_key_values" if "past_key_values" in params else None
