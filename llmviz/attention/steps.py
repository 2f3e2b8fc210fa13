"""One attention head recomputed step by step from the model's own weights, and the neuron view.

``formula_steps(loaded, text, layer, head)`` captures the attention module's input with forward
hooks, then recomputes ``softmax(Q K^T / sqrt(d_k) + mask) V`` for every head and
``Concat(head_1..h) W^O`` in float64 numpy, next to what the model itself returned, so a test (and
the page) can show that the formula *is* the model. Supported families:

- ``bert`` (BERT, RoBERTa, ELECTRA...: ``query/key/value`` + sibling ``output.dense``; post-norm, so X is
  the layer input; the block output is ``LayerNorm(X + Concat·W^O + b)``);
- ``llama`` (Llama, Mistral, Qwen2, SmolLM...: ``q_proj/k_proj/v_proj/o_proj``; X is the layer input after
  ``input_layernorm``; RoPE rotates Q and K; GQA: query head ``h`` reads kv head ``h // (H / H_kv)``);
- ``gemma3`` (Gemma 3: Llama-style projections plus RMSNorm on every query and key head vector before RoPE,
  ``x / sqrt(mean(x^2) + eps) * (1 + w)``; scores scaled by ``query_pre_attn_scalar^-1/2``; sliding-window layers
  let query i see keys j with ``0 <= i - j < window``; each layer type has its own RoPE base, and the cos/sin
  tables are rebuilt here from that base, not taken from the model; MQA: one KV head for all query heads);
- ``gpt2`` (GPT-2 and the training lab's causal models: one fused ``c_attn`` = [W_Q | W_K | W_V], ``c_proj`` =
  W^O; X is the layer input after ``ln_1``; the scaling may include GPT-2's 1/(layer+1) option).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz.attention.extract import MAX_TOKENS, encode, forward_inputs
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.anatomy import LayerAttention, anatomy
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.positional.encodings import rope_cos_sin, rope_inv_freq
from llmviz.tokens import display_token

MAX_STEP_TOKENS = 128  # the step-by-step view draws T x T and T x d matrices; keep them readable


AttentionSite = LayerAttention  # where one layer's attention lives (see llmviz.models.anatomy)


@dataclass
class FormulaSteps:
    """Every intermediate of one layer's attention. Shapes (T tokens, d = d_model, d_k = head dim):

    x [T, d]; w_q/w_k/w_v [d, d_k] (this head's slice, ``X @ W`` convention), b_* [d_k] or None;
    q_raw/k_raw [T, d_k] before RoPE, q/k [T, d_k] after RoPE (same as raw without RoPE), v [T, d_k];
    cos/sin [T, d_k] (rotary models) or None; scores = Q K^T [T, T]; scaled = scores * scaling;
    mask [T, T] (0 or -inf); weights [T, T] = softmax(scaled + mask); head_out [T, d_k] = weights @ V;
    all_weights [H, T, T] recomputed for every head; concat [T, H*d_k]; w_o [H*d_k, d]; b_o [d] or None;
    projected [T, d] = concat @ w_o + b_o; block_output [T, d] (bert: LayerNorm(x + projected));
    model_weights [H, T, T], model_projected [T, d], model_block_output [T, d]: what the model returned.
    """

    tokens: list[str]
    layer: int
    head: int
    kv_head: int
    family: str
    scaling: float
    x: np.ndarray
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray | None
    b_k: np.ndarray | None
    b_v: np.ndarray | None
    q_raw: np.ndarray
    k_raw: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    cos: np.ndarray | None
    sin: np.ndarray | None
    scores: np.ndarray
    scaled: np.ndarray
    mask: np.ndarray
    weights: np.ndarray
    head_out: np.ndarray
    all_weights: np.ndarray
    concat: np.ndarray
    w_o: np.ndarray
    b_o: np.ndarray | None
    projected: np.ndarray
    block_output: np.ndarray
    model_weights: np.ndarray
    model_projected: np.ndarray
    model_block_output: np.ndarray
    truncated: bool = False
    # Gemma 3 details: q_lin/k_lin [T, d_k] before the per-head RMSNorm (q_raw/k_raw are then after it)
    q_lin: np.ndarray | None = None
    k_lin: np.ndarray | None = None
    qk_norm_eps: float | None = None
    sliding_window: int | None = None
    rope_theta: float | None = None
    rope_table_max_diff: float | None = None  # |our cos/sin from rope_theta - the model's tables|

    @property
    def attention_max_abs_diff(self) -> float:
        """Largest |recomputed - model| over all heads of this layer."""
        return float(np.abs(self.all_weights - self.model_weights).max())

    @property
    def block_max_abs_diff(self) -> float:
        return float(np.abs(self.block_output - self.model_block_output).max())


@dataclass
class NeuronView:
    """q∘k per dimension for one query token: ``q`` [d_k], ``k`` [T, d_k], ``products`` [T, d_k]
    (= q * k elementwise), ``scores`` [T] = products.sum(-1) * scaling (+ mask), ``weights`` [T] softmax."""

    tokens: list[str]
    layer: int
    head: int
    query_index: int
    q: np.ndarray
    k: np.ndarray
    products: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    scaling: float


# ---------------------------------------------------------------- locating modules
def attention_sites(model) -> list[AttentionSite]:
    """One :class:`AttentionSite` per layer, in layer order (from the model's anatomy)."""
    try:
        return anatomy(model).attention_layers()
    except UnsupportedModelError as err:
        raise UnsupportedModelError(
            f"The step-by-step view supports BERT-, GPT-2- and Llama-style attention; "
            f"{type(model).__name__} has neither. The other attention views still work."
        ) from err


@contextmanager
def _captured(site: AttentionSite):
    """Forward hooks on one layer's attention; removed in ``finally``."""
    store: dict[str, Any] = {}

    def on_attn(_mod, args, kwargs, output):
        store["x"] = (args[0] if args else kwargs["hidden_states"]).detach()
        store["pos"] = kwargs.get("position_embeddings")
        store["weights"] = (
            output[1].detach() if isinstance(output, tuple) and len(output) > 1 and output[1] is not None else None
        )
        if site.family in ("llama", "gemma3", "gpt2"):
            store["block"] = output[0].detach()

    def on_o(_mod, args, output):
        store["concat"] = args[0].detach()
        store["projected"] = output.detach()

    def on_block(_mod, _args, output):
        store["block"] = (output[0] if isinstance(output, tuple) else output).detach()

    handles = [site.module.register_forward_hook(on_attn, with_kwargs=True), site.o.register_forward_hook(on_o)]
    if site.family == "bert":
        handles.append(site.block.register_forward_hook(on_block))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _linear(lin, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x @ W + b, W [in, out], b [out] or None) in float64. nn.Linear stores W^T; GPT-2's Conv1D stores W."""
    w = _np(lin.weight) if type(lin).__name__ == "Conv1D" else _np(lin.weight).T
    b = _np(lin.bias) if getattr(lin, "bias", None) is not None else None
    y = x @ w + (b if b is not None else 0.0)
    return y, w, b


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def gemma_rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Gemma's RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * (1 + w)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (1.0 + weight)


def causal_mask(t: int, window: int | None = None) -> np.ndarray:
    """[T, T] additive mask: 0 where query i may see key j (j <= i, and i - j < window when windowed), -inf else."""
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= (i - j) < int(window)
    return np.where(allowed, 0.0, -np.inf)


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax that tolerates -inf entries. ``z``: [..., T]."""
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    return e / e.sum(axis=-1, keepdims=True)


def _check(loaded: LoadedModel, layer: int, head: int) -> None:
    f = loaded.facts
    if not 0 <= int(layer) < f.n_layers:
        raise InputError(f"Layer {layer} does not exist: {f.model_id} has layers 0–{f.n_layers - 1}.")
    if not 0 <= int(head) < f.n_heads:
        raise InputError(f"Head {head} does not exist: {f.model_id} has heads 0–{f.n_heads - 1}.")


# ---------------------------------------------------------------- recomputation
def formula_steps(
    loaded: LoadedModel, text: str, layer: int, head: int, text_b: str | None = None, max_tokens: int = MAX_STEP_TOKENS
) -> FormulaSteps:
    """Recompute layer ``layer``'s attention (all heads; ``head`` is the one to display)."""
    import torch

    _check(loaded, layer, head)
    enc, _special, _segment, _n, truncated = encode(loaded, text, text_b, min(max_tokens, MAX_TOKENS))
    site = attention_sites(loaded.model)[int(layer)]
    with _captured(site) as store, torch.inference_mode():
        loaded.model(**forward_inputs(loaded, enc), output_attentions=True)
    tokens = [display_token(loaded.tokenizer, i) for i in enc["input_ids"][0].tolist()]
    x = _np(store["x"][0])  # [T, d]
    t = x.shape[0]
    n_h, n_kv, d_k = site.n_heads, site.n_kv_heads, site.head_dim
    if site.family == "gpt2":  # one fused projection: columns are [Q | K | V]
        qkv, w, b = _linear(site.q, x)
        d = n_h * d_k
        (q_all, k_all, v_all), (wq, wk, wv) = np.split(qkv, 3, axis=1), np.split(w, 3, axis=1)
        bq, bk, bv = np.split(b, 3) if b is not None else (None, None, None)
        assert q_all.shape[1] == d
    else:
        q_all, wq, bq = _linear(site.q, x)  # [T, H*d_k]
        k_all, wk, bk = _linear(site.k, x)  # [T, H_kv*d_k]
        v_all, wv, bv = _linear(site.v, x)
    q_raw = q_all.reshape(t, n_h, d_k).transpose(1, 0, 2)  # [H, T, d_k]
    k_raw = k_all.reshape(t, n_kv, d_k).transpose(1, 0, 2)  # [H_kv, T, d_k]
    v = v_all.reshape(t, n_kv, d_k).transpose(1, 0, 2)
    cos = sin = None
    q_lin = k_lin = None
    eps = theta = table_diff = None
    if site.family == "gemma3":
        q_lin, k_lin = q_raw, k_raw
        eps = float(site.q_norm.eps)
        q_raw = gemma_rms_norm(q_lin, _np(site.q_norm.weight), float(site.q_norm.eps))
        k_raw = gemma_rms_norm(k_lin, _np(site.k_norm.weight), float(site.k_norm.eps))
    q, k = q_raw, k_raw
    if site.family == "gemma3":
        theta = loaded.facts.layer_rope_theta(int(layer))
        positions = np.arange(t)
        cos, sin = rope_cos_sin(positions, rope_inv_freq(d_k, theta))  # from the layer's own base
        if store.get("pos") is not None:
            table_diff = float(
                max(np.abs(cos - _np(store["pos"][0][0])).max(), np.abs(sin - _np(store["pos"][1][0])).max())
            )
        q = q_raw * cos + _rotate_half(q_raw) * sin
        k = k_raw * cos + _rotate_half(k_raw) * sin
    elif site.family == "llama" and store.get("pos") is not None:
        cos, sin = (_np(p[0]) for p in store["pos"])  # [T, d_k] each, the model's rotary tables
        q = q_raw * cos + _rotate_half(q_raw) * sin
        k = k_raw * cos + _rotate_half(k_raw) * sin
    group = n_h // n_kv
    kv_of = np.arange(n_h) // group  # GQA: query head h reads kv head h // group
    scores = np.einsum("htd,hsd->hts", q, k[kv_of])  # [H, T, T]
    scaled = scores * site.scaling
    mask = np.zeros((t, t))
    if loaded.facts.kind == CAUSAL_LM:
        mask = causal_mask(t, site.sliding_window)
    weights = softmax_rows(scaled + mask)  # [H, T, T]
    head_out = weights @ v[kv_of]  # [H, T, d_k]
    concat = head_out.transpose(1, 0, 2).reshape(t, n_h * d_k)  # [T, H*d_k]
    projected, wo, bo = _linear(site.o, concat)
    block = projected
    if site.family == "bert":
        ln = site.out_norm
        z = projected + x
        mu, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        block = (z - mu) / np.sqrt(var + ln.eps) * _np(ln.weight) + _np(ln.bias)
    if store.get("weights") is None:
        raise UnsupportedModelError("The model did not return attention weights for this layer.")
    h, kv = int(head), int(kv_of[int(head)])
    sl = slice(h * d_k, (h + 1) * d_k)
    kl = slice(kv * d_k, (kv + 1) * d_k)
    return FormulaSteps(
        tokens=tokens,
        layer=int(layer),
        head=h,
        kv_head=kv,
        family=site.family,
        scaling=site.scaling,
        x=x,
        w_q=wq[:, sl],
        w_k=wk[:, kl],
        w_v=wv[:, kl],
        b_q=None if bq is None else bq[sl],
        b_k=None if bk is None else bk[kl],
        b_v=None if bv is None else bv[kl],
        q_raw=q_raw[h],
        k_raw=k_raw[kv],
        q=q[h],
        k=k[kv],
        v=v[kv],
        cos=cos,
        sin=sin,
        scores=scores[h],
        scaled=scaled[h],
        mask=mask,
        weights=weights[h],
        head_out=head_out[h],
        all_weights=weights,
        concat=concat,
        w_o=wo,
        b_o=bo,
        projected=projected,
        block_output=block,
        model_weights=_np(store["weights"][0]),
        model_projected=_np(store["projected"][0]),
        model_block_output=_np(store["block"][0]),
        truncated=truncated,
        q_lin=None if q_lin is None else q_lin[h],
        k_lin=None if k_lin is None else k_lin[kv],
        qk_norm_eps=eps,
        sliding_window=site.sliding_window,
        rope_theta=theta,
        rope_table_max_diff=table_diff,
    )


def neuron_view(steps: FormulaSteps, query_index: int) -> NeuronView:
    """Elementwise q∘k for query token ``query_index`` against every key (from hooked activations)."""
    t = len(steps.tokens)
    if not 0 <= int(query_index) < t:
        raise InputError(f"Query token {query_index} does not exist: the input has tokens 0–{t - 1}.")
    i = int(query_index)
    q = steps.q[i]  # [d_k]
    products = q[None, :] * steps.k  # [T, d_k]
    scores = products.sum(axis=-1) * steps.scaling + steps.mask[i]
    return NeuronView(
        tokens=steps.tokens,
        layer=steps.layer,
        head=steps.head,
        query_index=i,
        q=q,
        k=steps.k,
        products=products,
        scores=scores,
        weights=softmax_rows(scores),
        scaling=steps.scaling,
    )
