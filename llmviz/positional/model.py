"""Position information read from a loaded model: learned absolute vectors (BERT-like) and rotary settings.

* :func:`learned_positions` returns the [max_positions, hidden] table of any model with a learned
  position-embedding module (BERT, RoBERTa, DistilBERT, GPT-2 ``wpe``...).
* :func:`analyse_learned` computes the similarity matrix, a PCA trajectory and the frequency content (FFT),
  with the same FFT of a sinusoidal table of equal shape for comparison.
* :func:`rope_config` / :func:`model_rope_cos_sin` read the rotary settings and call the model's own rotary module.

Which module holds the table or the rotary settings comes from :func:`llmviz.models.anatomy.anatomy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.errors import UnsupportedModelError
from llmviz.models.anatomy import GEMMA3, LLAMA, anatomy
from llmviz.models.loading import LoadedModel
from llmviz.positional.encodings import DEFAULT_BASE, rope_inv_freq, similarity_matrix, sinusoidal


def _scheme_hint(loaded: LoadedModel) -> str:
    f = loaded.facts
    if f.positional == "rope":
        return (
            f"{f.model_id} uses rotary position embeddings (RoPE, θ = {f.rope_theta:g}): positions are "
            "rotations applied to queries and keys inside every attention layer, not vectors added to the "
            "input. See the RoPE section, or pick a BERT-like model such as minilm."
        )
    return (
        f"{f.model_id} reports '{f.positional}' positions and has no learned position-embedding table. "
        "Pick a BERT-like model such as minilm."
    )


@dataclass(frozen=True)
class LearnedPositions:
    """``matrix``: [max_positions, hidden] learned position vectors (row p is added to the token at position p)."""

    model_id: str
    module: str
    matrix: np.ndarray


def learned_positions(loaded: LoadedModel) -> LearnedPositions:
    """The learned position table of the loaded model. Raises UnsupportedModelError for other schemes."""
    anat = anatomy(loaded.model)
    name, mod = anat.position_embeddings_name, anat.position_embeddings
    if mod is None or loaded.facts.positional == "rope":
        raise UnsupportedModelError(_scheme_hint(loaded))
    matrix = mod.weight.detach().float().cpu().numpy().astype(np.float64)
    # RoBERTa-style tables reserve the first rows (padding_idx + 1) for padding; keep them, the page notes it.
    return LearnedPositions(loaded.facts.model_id, name, matrix)


@dataclass(frozen=True)
class LearnedAnalysis:
    """Views of a learned table ``matrix`` [P, H].

    ``similarity``: [P, P] cosine; ``pca``: [P, 3] coordinates of each position on the top principal axes;
    ``explained``: [3] variance ratio of those axes; ``freq``: [P//2+1] cycles per position;
    ``power_learned`` / ``power_sinusoidal``: [P//2+1] mean normalised power spectrum over dimensions (FFT along
    positions, each dimension centred); ``dominant_learned`` / ``dominant_sinusoidal``: [H] frequency with most
    power per dimension; ``pc_turn_deg``: median turn (degrees) per position step around the origin in the PC1-PC2
    plane; ``neighbour_ratio``: mean distance of consecutive positions / mean distance of all pairs (full space)."""

    positions: LearnedPositions
    similarity: np.ndarray
    pca: np.ndarray
    explained: np.ndarray
    freq: np.ndarray
    power_learned: np.ndarray
    power_sinusoidal: np.ndarray
    dominant_learned: np.ndarray
    dominant_sinusoidal: np.ndarray
    pc_turn_deg: float
    neighbour_ratio: float

    def low_frequency_share(self, which: str, cutoff: float = 0.05) -> float:
        """Share of power below ``cutoff`` cycles/position (0.05 = wavelength over 20 positions)."""
        power = self.power_learned if which == "learned" else self.power_sinusoidal
        return float(power[self.freq < cutoff].sum() / power.sum())


def pca(x: np.ndarray, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the rows of x [N, D]: coordinates [N, n] and explained variance ratio [n]."""
    from threadpoolctl import threadpool_limits

    centred = x - x.mean(axis=0, keepdims=True)
    with threadpool_limits(1):  # a small problem: extra BLAS threads only fight over busy cores
        var, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues of the scatter matrix [D, D]
    var, vecs = var[::-1].clip(min=0), vecs[:, ::-1]
    n = min(n, var.size)
    return centred @ vecs[:, :n], var[:n] / var.sum()


def power_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFT along positions of x [P, D]. Returns freq [P//2+1], mean normalised power [P//2+1], dominant [D]."""
    centred = x - x.mean(axis=0, keepdims=True)
    spec = np.abs(np.fft.rfft(centred, axis=0)) ** 2  # [F, D]
    freq = np.fft.rfftfreq(x.shape[0])
    totals = spec.sum(axis=0, keepdims=True)
    norm = spec / np.where(totals == 0, 1.0, totals)  # each dimension's spectrum sums to 1
    return freq, norm.mean(axis=1), freq[spec.argmax(axis=0)]


def analyse_learned(pos: LearnedPositions, base: float = DEFAULT_BASE) -> LearnedAnalysis:
    """Similarity, PCA and FFT of the learned table, plus the FFT of a sinusoidal table of the same shape."""
    x = pos.matrix
    coords, explained = pca(x, 3)
    freq, p_learned, dom_learned = power_spectrum(x)
    sin_pe = sinusoidal(min(x.shape[0], 1024), min(x.shape[1], 1024), base).matrix
    _, p_sin, dom_sin = power_spectrum(sin_pe)
    if p_sin.shape != p_learned.shape:  # only for tables above 1024 positions: compare on a common grid
        p_sin = np.interp(freq, np.fft.rfftfreq(sin_pe.shape[0]), p_sin)
    z = coords[:, 0] + 1j * coords[:, 1] if coords.shape[1] > 1 else coords[:, 0].astype(complex)
    turn = float(np.degrees(np.median(np.abs(np.angle(z[1:] / np.where(z[:-1] == 0, 1, z[:-1]))))))
    sq = (x**2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))  # [P, P] pairwise distances
    ratio = float(np.diagonal(dist, 1).mean() / dist[np.triu_indices(len(x), 1)].mean())
    return LearnedAnalysis(
        pos,
        similarity_matrix(x, "cosine"),
        coords,
        explained,
        freq,
        p_learned,
        p_sin,
        dom_learned,
        dom_sin,
        turn,
        ratio,
    )


# ------------------------------------------------------------------ rotary
@dataclass(frozen=True)
class RopeConfig:
    """Rotary settings of a loaded model. ``inv_freq``: [head_dim/2] from the formula (float64);
    ``model_inv_freq``: the model's own buffer (equal for default rope; different for scaled variants)."""

    model_id: str
    module: str
    head_dim: int
    theta: float
    rope_type: str
    attention_scaling: float
    inv_freq: np.ndarray
    model_inv_freq: np.ndarray
    max_positions: int
    layer_type: str | None = None  # which layers use it, for models with one RoPE per layer type (Gemma 3)
    layers: tuple[int, ...] = ()


def rope_layer_types(loaded: LoadedModel) -> tuple[str | None, ...]:
    """The layer types with their own RoPE base, global first (``(None,)`` for a model with one base)."""
    return anatomy(loaded.model).rope_layer_types


def rope_config(loaded: LoadedModel, layer_type: str | None = None) -> RopeConfig:
    """The rotary settings of the loaded model (of ``layer_type``'s layers when each type has its own base;
    default: the global layers). Raises UnsupportedModelError when it has no rotary module."""
    anat = anatomy(loaded.model)
    f = loaded.facts
    if anat.rotary is None or f.rope_theta is None:
        raise UnsupportedModelError(
            f"{f.model_id} uses '{f.positional}' positions, not rotary embeddings: its positions are "
            "vectors added to the input (see the Learned section). The RoPE formulas below use the settings "
            "you choose; load a rotary model such as smollm2 to compare them with a real model."
        )
    name, mod = anat.rotary_name, anat.rotary
    if not hasattr(mod, "inv_freq"):  # one table per layer type
        lt = layer_type or "full_attention"
        if not hasattr(mod, f"{lt}_inv_freq"):
            raise UnsupportedModelError(f"{f.model_id} has no '{lt}' layers.")
        theta = f.rope_theta_local if lt == "sliding_attention" and f.rope_theta_local else f.rope_theta
        layers = tuple(i for i, t in enumerate(f.layer_types) if t == lt) if f.layer_types else tuple(range(f.n_layers))
        return RopeConfig(
            f.model_id,
            name,
            f.head_dim,
            float(theta),
            str(getattr(mod, "rope_type", {}).get(lt, "default")),
            float(getattr(mod, f"{lt}_attention_scaling", 1.0)),
            rope_inv_freq(f.head_dim, theta),
            getattr(mod, f"{lt}_inv_freq").detach().float().cpu().numpy().astype(np.float64),
            f.max_positions,
            lt,
            layers,
        )
    rope_type = getattr(mod, "rope_type", "default")
    return RopeConfig(
        f.model_id,
        name,
        f.head_dim,
        float(f.rope_theta),
        str(rope_type),
        float(getattr(mod, "attention_scaling", 1.0)),
        rope_inv_freq(f.head_dim, f.rope_theta),
        mod.inv_freq.detach().float().cpu().numpy().astype(np.float64),
        f.max_positions,
        None,
        tuple(range(f.n_layers)),
    )


def model_rope_cos_sin(loaded: LoadedModel, positions, layer_type: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The model's own rotary module called on ``positions`` (for ``layer_type``'s layers where each type has
    its own table; default the global ones): cos, sin each [P, head_dim] (float32 values)."""
    import torch

    mod = anatomy(loaded.model).rotary
    if mod is None:
        raise UnsupportedModelError(f"{loaded.facts.model_id} has no rotary embedding module.")
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.long, device=loaded.device)[None]  # [1, P]
    dummy = torch.zeros(1, dtype=torch.float32, device=loaded.device)
    with torch.inference_mode():
        if hasattr(mod, "inv_freq"):
            cos, sin = mod(dummy, pos)
        else:
            cos, sin = mod(dummy, pos, layer_type or "full_attention")
    return cos[0].cpu().numpy().astype(np.float64), sin[0].cpu().numpy().astype(np.float64)


def real_qk_available(loaded: LoadedModel) -> bool:
    """True when :func:`real_qk_pair` can read a real query and key: a rotary model with separate q/k
    projections and a norm before attention (Llama-, Gemma-style)."""
    anat = anatomy(loaded.model)
    try:
        return anat.rotary is not None and anat.family in (LLAMA, GEMMA3) and anat.norms(0).pre_attn is not None
    except UnsupportedModelError:
        return False


def real_qk_pair(
    loaded: LoadedModel, text: str = "The cat sat on the mat.", head: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A real (pre-rotation) query and key vector [head_dim] from the first layer, query head ``head``: the query
    of the last token and the key of the first, from the q/k projections of the normalised token embeddings
    (for the models of :func:`real_qk_available`)."""
    import torch

    anat = anatomy(loaded.model)
    attn = anat.attn(0)
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"].to(loaded.device)
    hd = loaded.facts.head_dim
    kv_head = head // max(loaded.facts.n_heads // loaded.facts.n_kv_heads, 1)  # GQA: shared key head
    with torch.inference_mode():
        h = anat.norms(0).pre_attn(anat.embed(ids))  # [1, T, hidden]
        q = attn.q(h)[0, -1, head * hd : (head + 1) * hd]
        k = attn.k(h)[0, 0, kv_head * hd : (kv_head + 1) * hd]
        if attn.q_norm is not None:  # QK-norm (Gemma 3): RoPE rotates the normalised vectors
            q, k = attn.q_norm(q), attn.k_norm(k)
    return q.cpu().numpy().astype(np.float64), k.cpu().numpy().astype(np.float64)
