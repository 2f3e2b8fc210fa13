"""QK attribution: why does a head attend where it does?

The pre-softmax score of head ``h`` in layer ``l`` from query ``i`` to key ``j`` is ``s = scaling · q_i · k_j``.
The residual stream entering the layer is a sum of components (:func:`llmviz.explain.decompose.components`: the
embeddings, every earlier head or layer's attention, every earlier MLP, biases). With the pre-attention norm's
scale frozen at the clean run (and Gemma 3's QK-norm likewise), ``q_i`` and ``k_j`` are linear in those components;
RoPE is a rotation, linear too. So ``s = Σ_a Σ_b T[a, b]`` with ``T[a, b] = scaling · R_i q_a · R_j k_b``: one
term per (query-side component, key-side component). ``content[a, b]`` is the same product without the rotation;
``T − content`` is the positional part RoPE adds (zero for models without RoPE, whose learned positions are a
component of their own). One forward pass, then a few matrix products.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.explain.decompose import BIASES, MAX_FLOW_TOKENS, capture_run, check_text, components, freeze, inference
from llmviz.models.loading import CAUSAL_LM, LoadedModel


@dataclass
class QKResult:
    """``names`` ``[C]`` the components (the last is ``biases``); ``terms`` ``[C_query, C_key]`` their score terms,
    ``content`` ``[C, C]`` without RoPE; ``score`` = Σ terms; ``attention``: the model's own weight ``A[h, i, j]``;
    ``softmax_error``: max |softmax(recomputed row of scores) − the model's attention row| (a check)."""

    tokens: list[str]
    text: str
    model_id: str
    layer: int
    head: int
    query: int
    key: int
    per_head: bool
    names: list[str]
    terms: np.ndarray
    content: np.ndarray
    score: float
    attention: float
    softmax_error: float
    rope: bool
    seconds: float = 0.0

    @property
    def positional(self) -> np.ndarray:
        """``[C, C]`` the part of each term that RoPE adds."""
        return self.terms - self.content

    def top_terms(self, k: int = 10) -> list[tuple[str, str, float]]:
        """The ``k`` largest terms by size: ``(query component, key component, term)``."""
        flat = np.argsort(-np.abs(self.terms), axis=None)[:k]
        rows, cols = np.unravel_index(flat, self.terms.shape)
        return [(self.names[a], self.names[b], float(self.terms[a, b])) for a, b in zip(rows, cols)]

    def params(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model_id,
            "layer": self.layer,
            "head": self.head,
            "query": self.query,
            "key": self.key,
            "per_head": self.per_head,
            "score": self.score,
            "content_score": float(self.content.sum()),
            "positional_score": float(self.positional.sum()),
            "attention": self.attention,
            "softmax_error": self.softmax_error,
        }

    def rows(self) -> list[dict[str, Any]]:
        """Every (query component, key component) term, largest first, for CSV export."""
        pos = self.positional
        order = np.argsort(-np.abs(self.terms), axis=None)
        return [
            {
                "query_component": self.names[a],
                "key_component": self.names[b],
                "term": float(self.terms[a, b]),
                "content": float(self.content[a, b]),
                "positional": float(pos[a, b]),
            }
            for a, b in zip(*np.unravel_index(order, self.terms.shape))
        ]


def _rotate_half(v):
    import torch

    h = v.shape[-1] // 2
    return torch.cat((-v[..., h:], v[..., :h]), dim=-1)


def _rope(anat, layer: int, positions, like):
    """``(cos, sin)`` ``[P, d]`` of ``layer``'s rotary table at ``positions`` (None without RoPE)."""
    import torch

    rot = anat.rotary
    if rot is None:
        return None
    ids = torch.tensor([list(positions)], device=like.device)
    types = anat.rope_layer_types
    with torch.inference_mode():
        if types == (None,):
            cos, sin = rot(like[None], ids)
        else:
            layer_types = getattr(anat.config, "layer_types", None) or [types[0]] * anat.n_layers
            cos, sin = rot(like[None], ids, layer_types[layer])
    return cos[0].float(), sin[0].float()


def visible(loaded: LoadedModel, anat, layer: int, query: int, key: int) -> bool:
    """Whether the model lets ``query`` see ``key`` in ``layer`` (causal mask, sliding window)."""
    if loaded.facts.kind == CAUSAL_LM and key > query:
        return False
    window = anat.attn(layer).sliding_window
    return not (window and abs(query - key) >= window)


@inference
def _side(anat, layer: int, head_rows: slice, which: str, rows, x):
    """Project the components ``rows`` ``[C, D]`` (the stream ``x`` ``[1, D]`` at that position) to one head's
    query or key ``[C, d]`` through the frozen pre-attention norm, the projection and the frozen QK-norm; the
    constants (norm β, projection bias) join the last row (biases)."""
    import torch

    la = anat.attn(layer)
    norm = anat.norms(layer).pre_attn
    const = torch.zeros_like(x[0])
    if norm is not None:
        f = freeze(norm, x)
        rows = f(rows)
        if f.bias is not None:
            const = const + f.bias
    w, b = anat.projection(layer, which)
    w = w.float()[head_rows]  # [d, D]
    out = rows @ w.T  # [C, d]
    extra = const @ w.T + (b.float()[head_rows] if b is not None else 0)
    out[-1] = out[-1] + extra
    qk_norm = la.q_norm if which == "q" else la.k_norm
    if qk_norm is not None:
        out = freeze(qk_norm, out.sum(0, keepdim=True))(out)
    return out


def qk_attribution(
    loaded: LoadedModel,
    text: str,
    layer: int,
    head: int,
    query: int,
    key: int,
    per_head: bool = True,
    max_tokens: int = MAX_FLOW_TOKENS,
) -> QKResult:
    """Split head ``head``'s pre-softmax score from ``query`` to ``key`` in ``layer`` into (query component × key
    component) terms. Positions count tokens from 0 (negative: from the end)."""
    import torch

    t0 = time.perf_counter()
    cap = capture_run(loaded, check_text(text), max_tokens)
    anat, T, L = cap.anat, cap.n_tokens, cap.n_layers
    H = cap.attn[0].shape[0]
    if not 0 <= layer < L:
        raise InputError(f"Layer {layer} does not exist: the model has layers 0 to {L - 1}.")
    if not 0 <= head < H:
        raise InputError(f"Head {head} does not exist: the model has heads 0 to {H - 1}.")
    query, key = (p + T if p < 0 else p for p in (query, key))
    if not (0 <= query < T and 0 <= key < T):
        raise InputError(f"Positions must lie between 0 and {T - 1} ({T} tokens).")
    if not visible(loaded, anat, layer, query, key):
        raise InputError(
            f"In layer {layer} the token at {query} cannot attend to the token at {key} (it is later, or outside "
            "this layer's sliding window), so that score is masked."
        )
    if getattr(anat.config, "attn_logit_softcapping", None):
        raise UnsupportedModelError("This model caps attention scores with tanh, so they do not split into terms.")
    la = anat.attn(layer)
    d = la.head_dim
    kv = head // (la.n_heads // la.n_kv_heads)
    with torch.inference_mode():
        positions = sorted({query, key})
        names, comps = components(cap, layer, positions, per_head)  # [C, P, D]
        x = cap.x[layer]
        qi, ki = positions.index(query), positions.index(key)
        q = _side(anat, layer, slice(head * d, (head + 1) * d), "q", comps[:, qi], x[query : query + 1])
        k = _side(anat, layer, slice(kv * d, (kv + 1) * d), "k", comps[:, ki], x[key : key + 1])
        content = la.scaling * q @ k.T  # [C, C]
        rope = _rope(anat, layer, [query, key], q)
        if rope is not None:
            cos, sin = rope
            q = q * cos[0] + _rotate_half(q) * sin[0]
            k = k * cos[1] + _rotate_half(k) * sin[1]
        terms = la.scaling * q @ k.T
        err = _softmax_check(loaded, cap, layer, head, query, q.sum(0))
    return QKResult(
        tokens=cap.tokens,
        text=cap.text,
        model_id=loaded.facts.model_id,
        layer=layer,
        head=head,
        query=query,
        key=key,
        per_head=per_head,
        names=names,
        terms=terms.cpu().numpy().astype(np.float64),
        content=content.cpu().numpy().astype(np.float64),
        score=float(terms.sum()),
        attention=float(cap.attn[layer][head, query, key]),
        softmax_error=err,
        rope=rope is not None,
        seconds=time.perf_counter() - t0,
    )


@inference
def _softmax_check(loaded, cap, layer: int, head: int, query: int, q_total) -> float:
    """Recompute the whole row of scores (the query from the terms, every key from the model's own modules),
    softmax it over the visible keys and compare with the model's attention weights."""
    import torch

    anat = cap.anat
    la = anat.attn(layer)
    d = la.head_dim
    kv = head // (la.n_heads // la.n_kv_heads)
    T = cap.n_tokens
    x = cap.x[layer]
    norm = anat.norms(layer).pre_attn
    h = norm(x[None])[0].float() if norm is not None else x
    w, b = anat.projection(layer, "k")
    k = h @ w.float()[kv * d : (kv + 1) * d].T + (b.float()[kv * d : (kv + 1) * d] if b is not None else 0)
    if la.k_norm is not None:
        k = la.k_norm(k).float()
    rope = _rope(anat, layer, range(T), k)
    if rope is not None:
        k = k * rope[0] + _rotate_half(k) * rope[1]
    scores = la.scaling * k @ q_total  # [T]
    ok = torch.tensor([visible(loaded, anat, layer, query, j) for j in range(T)], device=scores.device)
    probs = torch.softmax(scores.masked_fill(~ok, float("-inf")), -1)
    return float((probs - cap.attn[layer][head, query]).abs().max())


__all__ = ["BIASES", "QKResult", "qk_attribution", "visible"]
