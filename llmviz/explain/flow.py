"""Information flow routes (Ferrando & Voita 2024): which earlier tokens and which components a prediction used.

Every residual update is split into exact terms (:mod:`llmviz.explain.decompose`): at layer ``l`` and position
``i`` the attention block adds one share per source position ``j`` (summed over heads; and per head for the
"top heads" table) plus W^O's bias, on top of the residual; the MLP adds one term. The importance of a term
``c`` in an update ``y = Σ terms`` is the paper's proportion rule ``max(0, ‖y‖₁ − ‖y − c‖₁)``, normalised over the
update's terms, so importances lie in [0, 1] and sum to 1 per update. Edges above a threshold τ make the graph;
the route is what the output node reaches walking those edges backwards. One forward pass, then linear algebra.

Nodes: ``x{l}_{i}`` the residual stream entering layer ``l`` at position ``i`` (``x{L}_{i}``: after the last
layer), ``a{l}_{i}`` after the attention block, ``m{l}_{i}`` the MLP's output. Edges: ``x{l}_{j} → a{l}_{i}``
(attention, from source ``j``), ``x{l}_{i} → a{l}_{i}`` and ``a{l}_{i} → x{l+1}_{i}`` (residual),
``a{l}_{i} → m{l}_{i} → x{l+1}_{i}`` (MLP, both weighted by the MLP term's importance).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from llmviz.errors import InputError
from llmviz.explain.decompose import (
    MAX_FLOW_TOKENS,
    attention_update,
    capture_run,
    check_text,
    mlp_update,
)
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.tokens import display_token

DEFAULT_TAU = 0.04  # the paper's default threshold
TOP_K = 5
ATTN, RESID, MLP_IN, MLP = "attn", "resid", "mlp_in", "mlp"


def proportions(y, terms):
    """The proportion rule: ``terms`` ``[K, ..., D]`` of ``y`` ``[..., D]`` -> importances ``[K, ...]`` in [0, 1],
    summing to 1 over ``K`` (an update with no positive term gives its first term, the residual, 1)."""
    raw = (y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp_min(0)
    total = raw.sum(0)
    dead = total <= 0
    raw[0][dead] = 1.0
    return raw / total.clamp_min(1e-30).masked_fill(dead, 1.0)


def _gain(ny, y, term):
    """``max(0, ‖y‖₁ − ‖y − term‖₁)`` over the last axis (``ny`` = ‖y‖₁ precomputed)."""
    import torch

    return (ny - torch.linalg.vector_norm(y - term, ord=1, dim=-1)).clamp_min(0)


@dataclass
class FlowResult:
    """Importances of every term of every update, for one text. Shapes (``L`` layers, ``H`` heads, ``T`` tokens;
    ``i`` the updated position, ``j`` the source): ``attn_resid``/``attn_bias`` ``[L, T]``, ``attn_edge``
    ``[L, T_i, T_j]`` (heads summed), ``head_imp`` ``[L, H, T_i, T_j]`` (each head and source its own term),
    ``mlp_resid``/``mlp_term``/``mlp_bias`` ``[L, T]``; ``attention`` ``[L, H, T_i, T_j]`` the model's weights.
    ``states``: ``{"x": [L+1, T, D], "a": [L, T, D], "m": [L, T, D]}`` the node vectors (for the node lens).
    ``rel_errors`` ``[L, 2]``: per layer, the largest relative error of the terms' sum against the model's own
    residual after attention and after the MLP (hooked); ``position``: the output node's position;
    ``predictions``: the model's top next token at every position (causal LMs; "" otherwise)."""

    tokens: list[str]
    text: str
    model_id: str
    family: str | None
    norm_style: str
    position: int
    predictions: list[str]
    attn_resid: np.ndarray
    attn_edge: np.ndarray
    attn_bias: np.ndarray
    head_imp: np.ndarray
    mlp_resid: np.ndarray
    mlp_term: np.ndarray
    mlp_bias: np.ndarray
    attention: np.ndarray
    rel_errors: np.ndarray
    states: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    truncated: bool = False
    n_tokens_original: int = 0
    seconds: float = 0.0

    @property
    def n_layers(self) -> int:
        return int(self.attn_edge.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.head_imp.shape[1])

    @property
    def max_rel_error(self) -> float:
        return float(self.rel_errors.max()) if self.rel_errors.size else 0.0

    def params(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model_id,
            "position": self.position,
            "predicted": self.predictions[self.position],
            "n_tokens": len(self.tokens),
            "truncated": self.truncated,
            "max_tokens": MAX_FLOW_TOKENS,
            "norm_style": self.norm_style,
            "max_rel_error": self.max_rel_error,
        }

    def graph(self, tau: float = DEFAULT_TAU, route_only: bool = True, position: int | None = None) -> FlowGraph:
        return build_graph(self, tau, route_only, position)


def _numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def information_flow(
    loaded: LoadedModel, text: str, position: int | None = None, max_tokens: int = MAX_FLOW_TOKENS, progress=None
) -> FlowResult:
    """Decompose every update of ``text``'s forward pass and weigh each term. ``position``: the output node
    (None: the last token; negative counts from the end)."""
    import torch

    t0 = time.perf_counter()
    cap = capture_run(loaded, check_text(text), max_tokens)
    T, L = cap.n_tokens, cap.n_layers
    pos = T - 1 if position is None else int(position)
    pos = pos + T if pos < 0 else pos
    if not 0 <= pos < T:
        raise InputError(f"Position {position} is outside the text ({T} tokens: 0 to {T - 1}).")
    H = cap.attn[0].shape[0]
    out = {k: np.zeros((L, T), np.float32) for k in ("attn_resid", "attn_bias", "mlp_resid", "mlp_term", "mlp_bias")}
    edge = np.zeros((L, T, T), np.float32)
    heads = np.zeros((L, H, T, T), np.float32)
    errors = np.zeros((L, 2), np.float64)
    a_states, m_states = [], []
    with torch.inference_mode():
        for lay in range(L):
            up = attention_update(cap, lay)
            errors[lay, 0] = up.rel_error()
            y, rows, cols = up.y, up.rows, up.cols
            ny = y.abs().sum(-1)  # [T]
            yp = y[rows]  # [P, D]
            resid, bias = _gain(ny, y, up.resid), _gain(ny, y, up.bias)  # [T]
            per_pair = _gain(ny[rows], yp, up.shares.sum(0))  # [P] heads summed
            per_head = torch.stack([_gain(ny[rows], yp, s) for s in up.shares])  # [H, P] each head its own term
            for dst, raw in ((edge, per_pair[None]), (heads, per_head)):
                total = resid + bias + torch.zeros_like(resid).index_add_(0, rows, raw.sum(0))
                dead = total <= 0  # nothing positive: the residual carries the update
                norm = total.masked_fill(dead, 1.0)
                dense = torch.zeros(raw.shape[0], T, T, dtype=raw.dtype, device=raw.device)
                dense[:, rows, cols] = raw / norm[rows]
                dst[lay] = _numpy(dense[0] if dst is edge else dense)
                if dst is edge:
                    out["attn_resid"][lay] = _numpy(torch.where(dead, 1.0, resid / norm))
                    out["attn_bias"][lay] = _numpy(torch.where(dead, 0.0, bias / norm))
            a_states.append(_numpy(y))
            mu = mlp_update(cap, lay)
            errors[lay, 1] = mu.rel_error()
            imp = proportions(mu.y, torch.stack([mu.resid, mu.shares[0], mu.bias]))
            out["mlp_resid"][lay], out["mlp_term"][lay], out["mlp_bias"][lay] = (_numpy(r) for r in imp)
            m_states.append(_numpy(mu.shares[0]))
    predictions = [""] * T
    if loaded.facts.kind == CAUSAL_LM and cap.logits is not None:
        predictions = [display_token(loaded.tokenizer, int(i)) for i in cap.logits[0].argmax(-1).tolist()]
    anat = cap.anat
    return FlowResult(
        tokens=cap.tokens,
        text=cap.text,
        model_id=loaded.facts.model_id,
        family=anat.family,
        norm_style=anat.norm_style,
        position=pos,
        predictions=predictions,
        attn_edge=edge,
        head_imp=heads,
        attention=np.stack([_numpy(a) for a in cap.attn]),
        rel_errors=errors,
        states={"x": np.stack([_numpy(x) for x in cap.x]), "a": np.stack(a_states), "m": np.stack(m_states)},
        truncated=cap.truncated,
        n_tokens_original=cap.n_original,
        seconds=time.perf_counter() - t0,
        **out,
    )


# ------------------------------------------------------------------ the graph
@dataclass
class FlowGraph:
    """Nodes ``{"id", "kind" (x | a | m), "layer", "position", "token"}`` and edges ``{"source", "target", "kind"
    (attn | resid | mlp_in | mlp), "weight", "layer", "head", "attention"}`` (``head``: the head carrying most
    of an attention edge, ``attention``: its weight A[i, j]; None for other edges), with the threshold and the
    output node."""

    nodes: list[dict]
    edges: list[dict]
    tau: float
    route_only: bool
    output: str
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> FlowGraph:
        return cls(**json.loads(text))

    def rows(self) -> list[dict]:
        """One row per edge, for CSV export."""
        return [dict(e) for e in self.edges]


def node_id(kind: str, layer: int, position: int) -> str:
    return f"{kind}{layer}_{position}"


def parse_node(nid: str) -> tuple[str, int, int]:
    """``"a3_5"`` -> ``("a", 3, 5)``."""
    kind, rest = nid[0], nid[1:]
    layer, _, position = rest.partition("_")
    return kind, int(layer), int(position)


def _candidates(res: FlowResult, tau: float) -> list[dict]:
    """Every edge whose importance exceeds ``tau``."""
    L, T = res.n_layers, len(res.tokens)
    edges = []

    def add(src, dst, kind, w, layer, head=None, att=None):
        edges.append(
            {
                "source": src,
                "target": dst,
                "kind": kind,
                "weight": float(w),
                "layer": layer,
                "head": head,
                "attention": att,
            }
        )

    for lay in range(L):
        ii, jj = np.nonzero(res.attn_edge[lay] > tau)
        for i, j in zip(ii.tolist(), jj.tolist()):
            h = int(res.head_imp[lay, :, i, j].argmax())
            add(node_id("x", lay, j), node_id("a", lay, i), ATTN, res.attn_edge[lay, i, j], lay, h,
                float(res.attention[lay, h, i, j]))  # fmt: skip
        for i in range(T):
            if res.attn_resid[lay, i] > tau:
                add(node_id("x", lay, i), node_id("a", lay, i), RESID, res.attn_resid[lay, i], lay)
            if res.mlp_resid[lay, i] > tau:
                add(node_id("a", lay, i), node_id("x", lay + 1, i), RESID, res.mlp_resid[lay, i], lay)
            if res.mlp_term[lay, i] > tau:
                add(node_id("a", lay, i), node_id("m", lay, i), MLP_IN, res.mlp_term[lay, i], lay)
                add(node_id("m", lay, i), node_id("x", lay + 1, i), MLP, res.mlp_term[lay, i], lay)
    return edges


def build_graph(
    res: FlowResult, tau: float = DEFAULT_TAU, route_only: bool = True, position: int | None = None
) -> FlowGraph:
    """Edges above ``tau``: all of them, or (``route_only``) those the output node reaches walking backwards.
    ``position``: the output node's position (None: the result's)."""
    if not 0 <= tau < 1:
        raise InputError(f"The threshold τ must be between 0 and 1 (got {tau}).")
    pos = res.position if position is None else int(position)
    if not 0 <= pos < len(res.tokens):
        raise InputError(f"Position {position} is outside the text ({len(res.tokens)} tokens).")
    edges = _candidates(res, tau)
    output = node_id("x", res.n_layers, pos)
    if route_only:
        incoming: dict[str, list[dict]] = {}
        for e in edges:
            incoming.setdefault(e["target"], []).append(e)
        seen, stack, kept = {output}, [output], []
        while stack:
            for e in incoming.get(stack.pop(), ()):
                kept.append(e)
                if e["source"] not in seen:
                    seen.add(e["source"])
                    stack.append(e["source"])
        edges = kept
    ids = {output} | {e["source"] for e in edges} | {e["target"] for e in edges}
    nodes = []
    for nid in sorted(ids, key=lambda n: (parse_node(n)[1], "xam".index(n[0]), parse_node(n)[2])):
        kind, layer, position = parse_node(nid)
        nodes.append({"id": nid, "kind": kind, "layer": layer, "position": position, "token": res.tokens[position]})
    edges.sort(key=lambda e: (e["layer"], e["target"], e["source"], e["kind"]))
    return FlowGraph(nodes, edges, float(tau), bool(route_only), output, {**res.params(), "position": pos})


def top_heads(res: FlowResult, graph: FlowGraph, k: int = 10) -> list[dict]:
    """Heads ranked by the importance they carry on the graph's attention edges: for each head, the sum over the
    graph's edges ``x{l}_j → a{l}_i`` of its own share ``head_imp[l, h, i, j]``; with its strongest edge."""
    score: dict[tuple[int, int], float] = {}
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for e in graph.edges:
        if e["kind"] != ATTN:
            continue
        _, lay, j = parse_node(e["source"])
        i = parse_node(e["target"])[2]
        for h in range(res.n_heads):
            w = float(res.head_imp[lay, h, i, j])
            score[(lay, h)] = score.get((lay, h), 0.0) + w
            if w > best.get((lay, h), (-1.0, 0, 0))[0]:
                best[(lay, h)] = (w, i, j)
    ranked = sorted(score.items(), key=lambda kv: -kv[1])[:k]
    return [
        {
            "layer": lay,
            "head": h,
            "importance": s,
            "query": best[(lay, h)][1],
            "key": best[(lay, h)][2],
            "attention": float(res.attention[lay, h, best[(lay, h)][1], best[(lay, h)][2]]),
        }
        for (lay, h), s in ranked
        if s > 0
    ]


def node_lens(loaded: LoadedModel, res: FlowResult, nid: str, k: int = TOP_K) -> list[tuple[str, float]]:
    """The logit lens of a node's vector (the model's final norm and unembedding): its top ``k`` tokens and
    probabilities. Causal LMs only (an encoder has no next-token readout)."""
    import torch

    if loaded.facts.kind != CAUSAL_LM:
        raise InputError("The logit lens of a node needs a causal LM (it reads the next-token prediction).")
    kind, layer, position = parse_node(nid)
    vec = torch.from_numpy(res.states[kind][layer, position]).to(loaded.device)
    anat = anatomy(loaded.model)
    with torch.inference_mode():
        w = anat.final_norm.weight
        probs = torch.softmax(anat.unembed(anat.final_norm(vec[None].to(w.dtype))).float()[0], -1)
        p, i = probs.topk(k)
    return [(display_token(loaded.tokenizer, int(t)), float(v)) for t, v in zip(i.tolist(), p.tolist())]
