"""Direct logit attribution: split the final-position logit difference into the direct contributions of
the embedding, every attention output, every attention head and every MLP.

In a pre-norm model the final residual stream is a sum, ``x = embed + Σ_l attn_l + Σ_l mlp_l``, and
``attn_l = Σ_h head_{l,h} + bias_l``. The final norm is not linear, so its scale (``1/rms`` for RMSNorm,
``1/σ`` for LayerNorm) is frozen at the clean run's value: then ``logit(a) − logit(b)`` is a sum of one
term per component (a linearisation; exact at the clean input, not a description of what happens when a
component is removed — that is what patching measures). Blocks with sandwich norms (Gemma 3) add
``norm(sublayer output)``: those are the terms, and a head's share goes through the post-attention norm at
the layer's frozen clean scale, so heads still add up to their layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz.errors import UnsupportedModelError
from llmviz.interventions.patching import PatchSetup, capture
from llmviz.interventions.sites import ATTN, HEAD, MLP, RESID
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import CAUSAL_LM

DECOMPOSITION_TOL = 1e-3  # relative: residual ≠ sum of parts beyond this → unsupported architecture


@dataclass
class DlaResult:
    """``terms``: ``[n_terms]`` direct contribution of each component (names in ``names``), in logit units;
    ``attn``/``mlp``: ``[L]``; ``heads``: ``[L, H]``; ``frozen_total`` = Σ terms; ``real`` = the model's own
    logit difference; ``sum_error`` = |Σ terms − frozen logit diff|, ``frozen_error`` = |frozen − real|."""

    names: list[str]
    terms: np.ndarray
    embed: float
    attn: np.ndarray
    mlp: np.ndarray
    heads: np.ndarray
    constant: float
    frozen_total: float
    frozen_logit_diff: float
    real: float
    sum_error: float
    frozen_error: float
    norm_kind: str
    label: str
    tokens: list[str]
    seconds: float

    def params(self) -> dict[str, Any]:
        return {
            "metric": self.label,
            "norm": self.norm_kind,
            "real_logit_diff": self.real,
            "frozen_logit_diff": self.frozen_logit_diff,
            "sum_error": self.sum_error,
            "frozen_error": self.frozen_error,
        }

    def rows(self) -> list[dict[str, Any]]:
        out = [
            {"component": n, "layer": None, "head": None, "contribution": float(v)}
            for n, v in zip(self.names, self.terms)
        ]
        out += [
            {"component": f"head L{layer}.h{h}", "layer": layer, "head": h, "contribution": float(self.heads[layer, h])}
            for layer in range(self.heads.shape[0])
            for h in range(self.heads.shape[1])
        ]
        return out


def _norm_parts(norm, x_last):
    """``(linear(v) -> frozen normalised v without bias, bias vector or None, kind)`` at the clean scale."""
    import torch

    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    if isinstance(norm, torch.nn.LayerNorm):
        scale = 1.0 / torch.sqrt(x_last.var(unbiased=False) + eps)
        w = norm.weight.double() if norm.weight is not None else torch.ones_like(x_last)

        def linear(v):  # centring is linear; the 1/σ is frozen
            return w * (v - v.mean(-1, keepdim=True)) * scale

        return linear, None if norm.bias is None else norm.bias.double(), "LayerNorm"
    # RMSNorm-style y = g ⊙ x / rms(x); read the gain g from the module on a vector of ones (rms = 1).
    ones = torch.ones_like(x_last, dtype=torch.float32)[None]
    gain = norm(ones)[0].double() * float(np.sqrt(1.0 + eps))
    scale = 1.0 / torch.sqrt((x_last**2).mean() + eps)

    def linear(v):
        return gain * v * scale

    return linear, None, "RMSNorm"


def _through(norm, v):
    """``(norm(v) for the residual, linear map of v's parts at v's frozen scale or None)``."""
    import torch

    if norm is None:
        return v.double(), None
    with torch.inference_mode():
        out = norm(v[None].to(next(norm.parameters()).dtype))[0].double()
    return out, _norm_parts(norm, v.double())[0]


def direct_logit_attribution(setup: PatchSetup) -> DlaResult:
    """DLA of the clean prompt's metric ``logit(correct) − logit(incorrect)`` at the last position."""
    import torch

    loaded = setup.loaded
    if loaded.facts.kind != CAUSAL_LM or setup.correct_id is None:
        raise UnsupportedModelError(
            "Direct logit attribution needs a causal LM: encoders like BERT normalise "
            "the residual stream after every layer (post-norm), so it is not a sum of "
            "the layers' outputs. Activation patching works for them."
        )
    t0 = time.perf_counter()
    mods = setup.modules
    anat = anatomy(loaded.model)
    norm = anat.final_norm
    captured: dict[str, Any] = {}

    def grab(_m, args):
        captured["final"] = args[0][0, -1].detach().clone()

    with scoped_hooks(pre=[(norm, grab)]):
        acts = capture(mods, lambda: setup.forward(setup.clean.embeds[None]))
    with torch.inference_mode():
        _, logits = setup.forward(setup.clean.embeds[None])
        real = float(logits[0, setup.correct_id] - logits[0, setup.wrong_id])
        x = captured["final"].double()
        embed = acts[RESID][0][-1].double()
        # sandwich norms (Gemma 3): a sublayer adds norm(output); its heads' shares go through that norm
        # at the clean output's frozen scale, so they still add up to the layer's term exactly
        post = [anat.sandwich_norms(layer) for layer in range(len(mods.layers))]
        attn_lin, mlp_lin = zip(
            *[(_through(pa, a[-1]), _through(pm, m[-1])) for (pa, pm), a, m in zip(post, acts[ATTN], acts[MLP])]
        )
        attn = [a for a, _ in attn_lin]
        mlp = [m for m, _ in mlp_lin]
        recon = embed + sum(attn) + sum(mlp)
        if float((recon - x).abs().max()) > DECOMPOSITION_TOL * max(1.0, float(x.abs().max())):
            raise UnsupportedModelError(
                f"{loaded.facts.model_id}: the final residual stream is not the sum of the embedding, attention "
                "and MLP outputs (this architecture normalises inside its blocks), so a direct logit "
                "attribution would not add up. Activation patching still works."
            )
        heads = []
        for layer, z in enumerate(acts[HEAD]):  # z: [T, H * hd] -> per-head contribution to the residual [H, D]
            proj = mods.out_proj[layer]
            H = mods.n_heads
            zl = z[-1].float().view(H, -1)
            eye = torch.eye(H, dtype=zl.dtype, device=zl.device)
            per_head = (eye[:, :, None] * zl[None]).reshape(H, -1)  # row h: only head h's slice
            bias = proj(torch.zeros_like(per_head[:1]))
            share = (proj(per_head) - bias).double()
            head_norm = attn_lin[layer][1]
            heads.append(share if head_norm is None else head_norm(share))
        lin, nbias, kind = _norm_parts(norm, x)
        unembed = anat.unembed
        u = (unembed.weight[setup.correct_id] - unembed.weight[setup.wrong_id]).double()
        ubias = 0.0
        if getattr(unembed, "bias", None) is not None:
            ubias = float(unembed.bias[setup.correct_id] - unembed.bias[setup.wrong_id])

        def term(v):
            return float(lin(v) @ u)

        constant = ubias + (float(nbias @ u) if nbias is not None else 0.0)
        e_term = term(embed)
        a_terms = np.array([term(a) for a in attn])
        m_terms = np.array([term(m) for m in mlp])
        h_terms = np.array([[term(h) for h in hs] for hs in heads])
        frozen_logit = float(lin(x) @ u) + constant
    names = ["embed"] + [n for layer in range(len(attn)) for n in (f"attn {layer}", f"mlp {layer}")]
    terms = [e_term] + [v for layer in range(len(attn)) for v in (a_terms[layer], m_terms[layer])]
    if abs(constant) > 0:
        names.append("biases")
        terms.append(constant)
    terms_arr = np.array(terms)
    total = float(terms_arr.sum())
    return DlaResult(
        names,
        terms_arr,
        e_term,
        a_terms,
        m_terms,
        h_terms,
        constant,
        total,
        frozen_logit,
        real,
        abs(total - frozen_logit),
        abs(frozen_logit - real),
        kind,
        setup.label,
        setup.tokens_clean,
        time.perf_counter() - t0,
    )


def compare_with_patching(dla: DlaResult, patch) -> dict[str, Any]:
    """Pearson correlation between DLA and the patching result: heads ``[L, H]`` and, per layer, attention /
    MLP at the last position. They answer different questions (direct effect in the clean run vs total
    effect of restoring a site in the corrupted run), so a low correlation is information, not an error."""
    out: dict[str, Any] = {}

    def corr(a, b):
        a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
        ok = ~(np.isnan(a) | np.isnan(b))
        if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
            return None
        return float(np.corrcoef(a[ok], b[ok])[0, 1])

    if HEAD in patch.scores:
        out["heads_r"] = corr(dla.heads, patch.scores[HEAD])
    for kind, values in ((ATTN, dla.attn), (MLP, dla.mlp)):
        if kind in patch.scores:
            out[f"{kind}_last_r"] = corr(values, patch.scores[kind][:, -1])
    return out
