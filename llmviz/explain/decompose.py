"""Exact decompositions of the residual stream, from one forward pass: the shared core of the information-flow
graph (:mod:`llmviz.explain.flow`) and QK attribution (:mod:`llmviz.explain.qk_attribution`).

One clean run is captured (:func:`capture_run`); everything else is linear algebra on what it captured. At layer
``l`` and position ``i`` the attention block adds ``Σ_h Σ_j A[l,h,i,j] · v_j^h W_O^h + b_O`` (exact: attention is
linear in the values once the weights ``A`` are known; grouped-query attention: query head ``h`` reads the value
head the model gives it) and the MLP adds its output. Norms that act on a sum are linearised at the clean run:

- sandwich norms (Gemma 3): ``post_norm(y) = g ⊙ y / rms(y)`` with ``rms(y)`` frozen, so each share of ``y`` is
  scaled by the same per-position factor and the shares still sum to the block's real output;
- post-norm (BERT): ``LayerNorm(x + y) = γ ⊙ (x + y − mean) / σ + β`` with ``σ`` frozen (centring is linear), so
  the residual, every share of ``y`` and the bias ``β`` are separate terms;
- pre-norm (GPT-2, Llama): the pre-attention / pre-MLP norm acts *inside* the sublayer (on the values), nothing
  to freeze for the update itself; QK attribution freezes the pre-attention norm's scale (and Gemma 3's QK-norm).

Shapes: ``T`` tokens, ``D`` hidden size, ``H`` query heads, ``d`` head size. Work is float32 on the model's device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from llmviz.attention.extract import encode, forward_inputs
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.anatomy import POST, SANDWICH, anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import LoadedModel
from llmviz.tokens import display_token

MAX_FLOW_TOKENS = 64  # the graph keeps [L, H, T, T] importances: longer texts are cut with a notice
CHECK_TOL = 1e-4  # relative: terms vs the model's own hooked outputs


def inference(fn):
    """Run ``fn`` under ``torch.inference_mode()`` (the captured tensors are inference tensors)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        import torch  # lazy: importing llmviz stays light

        with torch.inference_mode():
            return fn(*args, **kwargs)

    return wrapped


def _first_tensor(out):
    return out[0] if isinstance(out, (tuple, list)) else out


@dataclass
class Capture:
    """What one clean forward pass left behind (batch removed, float32). Per layer ``l`` (lists of length L):
    ``x[l]`` the residual stream entering the layer ``[T, D]`` (``x[L]``: after the last layer, before the final
    norm), ``attn[l]`` the attention weights ``[H, T, T]`` (masks and windows applied by the model), ``v[l]`` the
    value vectors ``[T, n_kv * d]``, ``o_out[l]`` W^O's output (bias included) ``[T, D]``, ``mid[l]`` the residual
    after the attention block ``[T, D]``, ``mlp[l]`` the MLP's raw output ``[T, D]``. ``emb_pos`` / ``emb_in``: the
    learned position embedding ``[T, D]`` and the input of the embedding norm (BERT), when the model has them."""

    loaded: Any
    anat: Any
    ids: list[int]
    tokens: list[str]
    truncated: bool
    n_original: int
    logits: Any
    x: list = field(default_factory=list)
    attn: list = field(default_factory=list)
    v: list = field(default_factory=list)
    o_out: list = field(default_factory=list)
    mid: list = field(default_factory=list)
    mlp: list = field(default_factory=list)
    emb_pos: Any = None
    emb_in: Any = None
    text: str = ""

    @property
    def n_layers(self) -> int:
        return len(self.attn)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


def capture_run(loaded: LoadedModel, text: str, max_tokens: int = MAX_FLOW_TOKENS) -> Capture:
    """Tokenise ``text`` (cut to ``max_tokens``) and run the model once, capturing every layer's input, attention
    weights, values, W^O output, residual after attention and MLP output."""
    import torch

    enc, _special, _segment, n_original, truncated = encode(loaded, text, None, max_tokens)
    inputs = forward_inputs(loaded, enc)
    anat = anatomy(loaded.model)
    L = anat.n_layers
    got: dict[str, dict[int, Any]] = {k: {} for k in ("v", "o", "mid", "mlp", "out")}

    def post(kind, i, fused=False):
        def hook(_m, _args, output):
            t = _first_tensor(output)[0].detach().float()
            got[kind][i] = t[:, 2 * t.shape[-1] // 3 :] if fused else t

        return hook

    def pre(kind, i):
        def hook(_m, args):
            got[kind][i] = args[0][0].detach().float()

        return hook

    posts, pres = [], []
    for i in range(L):
        la = anat.attn(i)
        posts += [(la.v, post("v", i, la.fused_qkv)), (la.o, post("o", i)), (anat.mlp(i), post("mlp", i))]
        posts.append((anat.layers[i], post("out", i)))
        if anat.norm_style == POST:
            posts.append((la.block, post("mid", i)))
        else:
            pres.append((anat.norms(i).pre_mlp, pre("mid", i)))
    extra: dict[str, Any] = {}
    if anat.position_embeddings is not None:
        posts.append((anat.position_embeddings, lambda _m, _a, o: extra.__setitem__("pos", o.detach().float())))
    if anat.embed_norm is not None:
        pres.append((anat.embed_norm, lambda _m, a: extra.__setitem__("emb_in", a[0][0].detach().float())))
    kw = {"use_cache": False} if loaded.facts.kind == "causal_lm" else {}
    with scoped_hooks(pre=pres, post=posts), torch.inference_mode():
        out = loaded.model(**inputs, output_attentions=True, output_hidden_states=True, **kw)
    att = getattr(out, "attentions", None)
    if not att or any(a is None for a in att) or any(len(got[k]) != L for k in got):
        raise UnsupportedModelError(
            f"{loaded.facts.model_id}: could not capture every layer's attention weights and outputs, so its "
            "information flow cannot be decomposed."
        )
    ids = inputs["input_ids"][0].tolist()
    cap = Capture(
        loaded,
        anat,
        ids,
        [display_token(loaded.tokenizer, i) for i in ids],
        truncated,
        n_original,
        getattr(out, "logits", None),
        text=str(text),
    )
    cap.x = [out.hidden_states[0][0].float()] + [got["out"][i] for i in range(L)]
    cap.attn = [a[0].detach().float() for a in att]
    for kind, name in (("v", "v"), ("o", "o_out"), ("mid", "mid"), ("mlp", "mlp")):
        setattr(cap, name, [got[kind][i] for i in range(L)])
    if "pos" in extra:
        pos = extra["pos"]
        cap.emb_pos = (pos[0] if pos.dim() == 3 else pos)[-len(ids) :]
    cap.emb_in = extra.get("emb_in")
    return cap


# ------------------------------------------------------------------ frozen norms
@dataclass
class FrozenNorm:
    """A norm linearised at the clean input: ``lin(v) = gain ⊙ centre(v) · scale`` with ``scale`` ``[P, 1]`` the
    clean ``1/rms`` (RMSNorm) or ``1/σ`` (LayerNorm, ``centre`` subtracts the mean); ``bias``: LayerNorm's β or
    None. ``lin(x_clean) + bias`` equals ``norm(x_clean)``; ``lin`` is exactly linear, so shares add up."""

    gain: Any
    scale: Any
    centre: bool
    bias: Any

    def __call__(self, v):
        """``v``: ``[..., P, D]`` (positions on the second-to-last axis)."""
        if self.centre:
            v = v - v.mean(-1, keepdim=True)
        return v * self.scale * self.gain

    def at(self, v, positions):
        """``v`` ``[..., P, D]`` whose row ``p`` belongs to position ``positions[p]``."""
        if self.centre:
            v = v - v.mean(-1, keepdim=True)
        return v * self.scale[positions] * self.gain


@inference
def freeze(norm, x) -> FrozenNorm:
    """``norm`` (LayerNorm or any RMSNorm) frozen at its clean input ``x`` ``[P, D]``."""
    import torch

    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    if isinstance(norm, torch.nn.LayerNorm):
        gain = norm.weight.float() if norm.weight is not None else torch.ones(x.shape[-1], device=x.device)
        scale = 1.0 / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
        return FrozenNorm(gain, scale, True, None if norm.bias is None else norm.bias.float())
    with torch.inference_mode():  # the gain of y = g ⊙ x / rms(x), read on a vector of ones (rms = 1)
        ones = torch.ones(1, x.shape[-1], dtype=next(norm.parameters()).dtype, device=x.device)
        gain = norm(ones)[0].float() * float((1.0 + eps) ** 0.5)
    scale = 1.0 / torch.sqrt((x**2).mean(-1, keepdim=True) + eps)
    return FrozenNorm(gain, scale, False, None)


# ------------------------------------------------------------------ the updates, term by term
def _values_by_head(cap: Capture, layer: int):
    """``[H, T, d]`` the value vector each query head reads (GQA: shared as the model shares them)."""
    la = cap.anat.attn(layer)
    v = cap.v[layer]
    T = v.shape[0]
    v = v.view(T, la.n_kv_heads, la.head_dim)  # [T, n_kv, d]
    group = la.n_heads // la.n_kv_heads
    return v.permute(1, 0, 2).repeat_interleave(group, dim=0)  # [H, T, d]


@inference
def head_outputs(cap: Capture, layer: int):
    """``vo`` ``[H, T, D]``: ``v_j^h W_O^h`` for every head ``h`` and source ``j``; and W^O's bias ``[D]`` (zeros)."""
    import torch

    la = cap.anat.attn(layer)
    w, b = cap.anat.projection(layer, "o")  # w: [D, H * d]
    w_heads = w.float().view(w.shape[0], la.n_heads, la.head_dim).permute(1, 2, 0)  # [H, d, D]
    vo = torch.einsum("htd,hde->hte", _values_by_head(cap, layer), w_heads)
    bias = b.float() if b is not None else torch.zeros(w.shape[0], device=w.device)
    return vo, bias


@dataclass
class Update:
    """One residual update at every position, term by term: ``y[i] = resid[i] + Σ_{h,p: rows[p] = i} shares[h, p]
    + bias[i]`` (``resid``, ``bias``, ``y``: ``[T, D]``). Attention: ``shares`` ``[H, P, D]``, one row per visible
    (query ``rows[p]``, source ``cols[p]``) pair and head (pairs no head can see are left out: they are zero);
    MLP: ``shares`` ``[1, T, D]``, ``rows = cols = 0..T-1``. ``y``: the model's own residual after the block
    (hooked)."""

    resid: Any
    shares: Any
    rows: Any
    cols: Any
    bias: Any
    y: Any

    def total(self):
        import torch

        summed = torch.zeros_like(self.resid).index_add_(0, self.rows, self.shares.sum(0))
        return self.resid + summed + self.bias

    def dense(self):
        """``shares`` as ``[H, T_j, T_i, D]`` (head, source, query), zeros where masked."""
        import torch

        H, _, D = self.shares.shape
        T = self.resid.shape[0]
        out = torch.zeros(H, T, T, D, dtype=self.shares.dtype, device=self.shares.device)
        out[:, self.cols, self.rows] = self.shares
        return out

    def rel_error(self) -> float:
        """Largest ``|Σ terms − y| / max|y|`` over positions."""
        err = (self.total() - self.y).abs().amax(-1)
        return float((err / self.y.abs().amax(-1).clamp_min(1e-12)).max())


@inference
def attention_update(cap: Capture, layer: int) -> Update:
    """The attention block of ``layer`` as ``resid + Σ_{h,j} share[h, (i, j)] + bias`` at every position ``i``."""
    anat = cap.anat
    A = cap.attn[layer]  # [H, T_i, T_j]
    rows, cols = (A > 0).any(0).nonzero(as_tuple=True)  # [P] the (query, source) pairs some head sees
    vo, b = head_outputs(cap, layer)
    shares = A[:, rows, cols][..., None] * vo[:, cols]  # [H, P, D]
    x = cap.x[layer]
    bias = b.expand_as(x)
    if anat.norm_style == SANDWICH:
        f = freeze(anat.norms(layer).post_attn, cap.o_out[layer])
        return Update(x, f.at(shares, rows), rows, cols, f(bias), cap.mid[layer])
    if anat.norm_style == POST:
        f = freeze(anat.norms(layer).post_attn, x + cap.o_out[layer])
        return Update(f(x), f.at(shares, rows), rows, cols, f(bias) + f.bias, cap.mid[layer])
    return Update(x, shares, rows, cols, bias, cap.mid[layer])


@inference
def mlp_update(cap: Capture, layer: int) -> Update:
    """The MLP block of ``layer`` as ``resid + mlp + bias`` at every position."""
    import torch

    anat = cap.anat
    mid, m = cap.mid[layer], cap.mlp[layer]
    zero = torch.zeros_like(mid)
    at = torch.arange(mid.shape[0], device=mid.device)
    if anat.norm_style == SANDWICH:  # one term: the post-MLP norm applied as the model does (exact)
        m = anat.norms(layer).post_mlp(m).float()
        return Update(mid, m[None], at, at, zero, cap.x[layer + 1])
    if anat.norm_style == POST:
        f = freeze(anat.norms(layer).post_mlp, mid + m)
        return Update(f(mid), f(m)[None], at, at, zero + f.bias, cap.x[layer + 1])
    return Update(mid, m[None], at, at, zero, cap.x[layer + 1])


# ------------------------------------------------------------------ the residual stream as a sum of components
EMBED, TOKEN_EMBED, POS_EMBED, BIASES = "embed", "token embed", "position embed", "biases"


@inference
def components(cap: Capture, layer: int, positions: list[int], per_head: bool = True) -> tuple[list[str], Any]:
    """The residual stream entering ``layer`` at ``positions`` as a sum of components: ``(names, [C, P, D])``.

    Components: the token embedding (and the learned position embedding, apart, where the model has one), each
    earlier layer's attention heads (``L3.h2``; ``per_head=False``: ``L3 attn``) and MLPs (``L3 mlp``), and one
    ``biases`` row (W^O biases, LayerNorm β). Norms on the way are frozen at the clean run (see the module
    docstring), so the rows sum to the captured stream."""
    import torch

    anat = cap.anat
    P = list(positions)
    names: list[str] = []
    rows: list[Any] = []
    x0 = cap.x[0][P]
    bias = torch.zeros_like(x0)
    if cap.emb_pos is not None and cap.emb_in is not None and anat.embed_norm is not None:
        f = freeze(anat.embed_norm, cap.emb_in[P])
        pos = cap.emb_pos[P]
        names += [TOKEN_EMBED, POS_EMBED]
        rows += [f(cap.emb_in[P] - pos), f(pos)]
        bias = bias + (f.bias if f.bias is not None else 0)
    elif cap.emb_pos is not None:
        names += [TOKEN_EMBED, POS_EMBED]
        rows += [x0 - cap.emb_pos[P], cap.emb_pos[P]]
    else:
        names.append(EMBED)
        rows.append(x0)

    def through(f):  # post-norm: everything so far goes through the frozen LayerNorm
        nonlocal rows, bias
        rows = [f(r) for r in rows]
        bias = f(bias) + (f.bias if f.bias is not None else 0)

    for lay in range(layer):
        A = cap.attn[lay][:, P, :]  # [H, P, T]
        vo, b = head_outputs(cap, lay)
        heads = torch.einsum("hpt,htd->hpd", A, vo)  # [H, P, D]
        hb = b.expand_as(x0)
        if anat.norm_style == SANDWICH:
            f = freeze(anat.norms(lay).post_attn, cap.o_out[lay][P])
            heads, hb = f(heads), f(hb)
        elif anat.norm_style == POST:
            f = freeze(anat.norms(lay).post_attn, (cap.x[lay] + cap.o_out[lay])[P])
            through(f)
            heads, hb = f(heads), f(hb)
        bias = bias + hb
        if per_head:
            names += [f"L{lay}.h{h}" for h in range(heads.shape[0])]
            rows += list(heads)
        else:
            names.append(f"L{lay} attn")
            rows.append(heads.sum(0))
        m = cap.mlp[lay][P]
        if anat.norm_style == SANDWICH:
            with torch.inference_mode():
                m = anat.norms(lay).post_mlp(m).float()
        elif anat.norm_style == POST:
            f = freeze(anat.norms(lay).post_mlp, (cap.mid[lay] + cap.mlp[lay])[P])
            through(f)
            m = f(m)
        names.append(f"L{lay} mlp")
        rows.append(m)
    names.append(BIASES)
    rows.append(bias)
    return names, torch.stack(rows)


def check_text(text: str | None) -> str:
    if text is None or not str(text).strip():
        raise InputError("The text is empty. Type a sentence to see how information flows through the model.")
    return str(text)
