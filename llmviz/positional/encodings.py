"""Position encodings from their formulas: sinusoidal (Vaswani et al. 2017) and rotary (RoPE, Su et al. 2021).

Everything here is pure numpy (float64) so the math can be checked without a model:

* :func:`sinusoidal` builds ``PE[pos, 2i] = sin(pos / base^(2i/d))``, ``PE[pos, 2i+1] = cos(...)``.
* :func:`distance_similarity` shows that ``PE(p)·PE(q)`` depends on ``p - q`` only.
* :func:`shift_map` builds the linear map ``M_k`` with ``PE(p+k) = M_k · PE(p)`` and checks it for every p.
* :func:`rope_cos_sin`, :func:`rope_rotate`, :func:`rope_relative_check`, :func:`rope_decay` do the same for RoPE,
  in the Hugging Face layout (dimension j is paired with j + head_dim/2, ``rotate_half``).

Reading learned position vectors and a model's own rotary module lives in :mod:`llmviz.positional.model`;
the with/without-positions experiment in :mod:`llmviz.positional.ablation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmviz.errors import InputError

MAX_LEN = 1024  # largest max_len the page and the library accept
MAX_D_MODEL = 1024
MAX_BASE = 1e8
DEFAULT_BASE = 10000.0
MAX_ROPE_POSITIONS = 8192


@dataclass(frozen=True)
class SinusoidalPE:
    """The sinusoidal table. ``matrix``: [max_len, d_model]; ``freqs``/``wavelengths``: [ceil(d_model/2)]."""

    matrix: np.ndarray
    max_len: int
    d_model: int
    base: float
    freqs: np.ndarray  # omega_i = base^(-2i/d), one per (sin, cos) pair
    wavelengths: np.ndarray  # 2*pi / omega_i, in positions
    notes: tuple[str, ...] = field(default_factory=tuple)  # warnings about unusual parameters

    @property
    def paired_dims(self) -> int:
        """Dimensions that come in (sin, cos) pairs: d_model, or d_model-1 when d_model is odd."""
        return self.d_model - self.d_model % 2


def _as_int(name: str, value, lo: int, hi: int) -> int:
    try:
        as_float = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a whole number, got {value!r}.") from err
    if not np.isfinite(as_float) or as_float != int(as_float):
        raise InputError(f"{name} must be a whole number, got {value!r}.")
    out = int(as_float)
    if not lo <= out <= hi:
        raise InputError(f"{name} must be between {lo} and {hi:,}, got {out:,}.")
    return out


def validate_sinusoidal(max_len, d_model, base) -> tuple[int, int, float, tuple[str, ...]]:
    """Check the three parameters; return them cleaned plus notes on unusual (but valid) choices."""
    max_len = _as_int("max_len", max_len, 1, MAX_LEN)
    d_model = _as_int("d_model", d_model, 1, MAX_D_MODEL)
    try:
        base = float(base)
    except (TypeError, ValueError) as err:
        raise InputError(f"base must be a number, got {base!r}.") from err
    if not np.isfinite(base) or base <= 0 or base > MAX_BASE:
        raise InputError(f"base must be a positive number up to {MAX_BASE:g} (the paper uses 10000), got {base:g}.")
    notes = []
    if d_model % 2:
        notes.append(
            f"d_model = {d_model} is odd: the last dimension ({d_model - 1}) is a sine with no cosine "
            "partner. Real models use an even d_model; the shift map M_k exists only for the first "
            f"{d_model - 1} dimensions."
        )
    if base == 1:
        notes.append(
            "base = 1 gives every pair the same frequency (1 radian per position): all dimensions repeat "
            "every 2π ≈ 6.28 positions, so positions 6.28 apart look almost alike."
        )
    elif base < 1:
        notes.append("base < 1 makes later dimensions spin faster than the first ones (the paper uses base > 1).")
    if max_len == 1:
        notes.append("max_len = 1 holds only position 0: there are no distances to compare.")
    return max_len, d_model, base, tuple(notes)


def frequencies(d_model: int, base: float) -> np.ndarray:
    """omega_i = base^(-2i/d_model) for i = 0 .. ceil(d_model/2)-1. Shape [ceil(d_model/2)]."""
    i = np.arange((d_model + 1) // 2, dtype=np.float64)
    return base ** (-2.0 * i / d_model)


def sinusoidal(max_len: int, d_model: int, base: float = DEFAULT_BASE) -> SinusoidalPE:
    """The sinusoidal table [max_len, d_model] (even columns sin, odd columns cos). Raises InputError."""
    max_len, d_model, base, notes = validate_sinusoidal(max_len, d_model, base)
    freqs = frequencies(d_model, base)
    angles = np.arange(max_len, dtype=np.float64)[:, None] * freqs[None, :]  # [pos, pair]
    pe = np.empty((max_len, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return SinusoidalPE(pe, max_len, d_model, base, freqs, 2 * np.pi / freqs, notes)


def wavelength_table(pe: SinusoidalPE) -> list[dict]:
    """One row per (sin, cos) pair: dims, frequency (rad/position), wavelength (positions)."""
    rows = []
    for i, (w, lam) in enumerate(zip(pe.freqs, pe.wavelengths)):
        dims = f"{2 * i}, {2 * i + 1}" if 2 * i + 1 < pe.d_model else f"{2 * i} (sin only)"
        rows.append({"pair": i, "dims": dims, "frequency_rad_per_pos": float(w), "wavelength_pos": float(lam)})
    return rows


# ------------------------------------------------------------------ similarity vs distance
@dataclass(frozen=True)
class DistanceSimilarity:
    """``matrix``: [L, L] similarity of every pair of positions; per distance d = q - p (0 .. L-1):
    ``mean``/``spread`` ([L]) are the mean and the max-min over all p of sim(PE(p), PE(p+d))."""

    metric: str  # "cosine" | "dot"
    matrix: np.ndarray
    distances: np.ndarray
    mean: np.ndarray
    spread: np.ndarray

    @property
    def max_spread(self) -> float:
        """0 (up to rounding) means: the similarity depends on the distance only."""
        return float(self.spread.max()) if self.spread.size else 0.0


METRICS = ("cosine", "dot")


def similarity_matrix(x: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """[N, D] -> [N, N] dot products or cosine similarities between rows."""
    if metric not in METRICS:
        raise InputError(f"Unknown similarity '{metric}'. Choose one of {', '.join(METRICS)}.")
    if metric == "dot":
        return x @ x.T
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms == 0, 1.0, norms)
    return unit @ unit.T


def distance_similarity(pe: SinusoidalPE, metric: str = "cosine") -> DistanceSimilarity:
    """How PE(p)·PE(p+d) varies with p for each distance d (spread ≈ 0 for an even d_model)."""
    sim = similarity_matrix(pe.matrix, metric)
    n = pe.max_len
    mean, spread = np.empty(n), np.empty(n)
    for d in range(n):
        diag = np.diagonal(sim, offset=d)  # sim[p, p+d] for p = 0 .. n-1-d
        mean[d], spread[d] = diag.mean(), diag.max() - diag.min()
    return DistanceSimilarity(metric, sim, np.arange(n), mean, spread)


# ------------------------------------------------------------------ the shift map M_k
@dataclass(frozen=True)
class ShiftMap:
    """``matrix``: [d_model, d_model] block-diagonal M_k; ``max_error`` = max |PE(p+k) - M_k PE(p)| over every
    p with p + k < max_len and over the paired dimensions; ``n_positions`` how many p were checked."""

    k: int
    matrix: np.ndarray
    max_error: float
    n_positions: int
    note: str = ""


def shift_matrix(d_model: int, base: float, k: float) -> np.ndarray:
    """M_k: one 2x2 rotation block [[cos wk, sin wk], [-sin wk, cos wk]] per (sin, cos) pair. [d, d].

    From sin(w(p+k)) = sin(wp)cos(wk) + cos(wp)sin(wk) and cos(w(p+k)) = cos(wp)cos(wk) - sin(wp)sin(wk).
    For odd d_model the unpaired last row is left zero (no linear map exists for it)."""
    m = np.zeros((d_model, d_model))
    for i, w in enumerate(frequencies(d_model, base)[: d_model // 2]):
        c, s = np.cos(w * k), np.sin(w * k)
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    return m


def shift_map(pe: SinusoidalPE, k: int) -> ShiftMap:
    """Build M_k and check PE(p+k) = M_k PE(p) for every valid p. Raises InputError for an impossible k."""
    k = _as_int("k (shift)", k, 0, max(pe.max_len - 1, 0))
    m = shift_matrix(pe.d_model, pe.base, k)
    n = pe.max_len - k
    dims = pe.paired_dims
    note = ""
    if dims == 0:
        return ShiftMap(k, m, float("nan"), n, "d_model = 1 has no (sin, cos) pair, so there is no M_k to check.")
    predicted = pe.matrix[:n] @ m.T  # row p -> (M_k PE(p))^T; [n, d]
    err = np.abs(predicted[:, :dims] - pe.matrix[k:, :dims])
    if dims < pe.d_model:
        note = f"Checked on the {dims} paired dimensions; the unpaired last sine dimension has no linear map."
    return ShiftMap(k, m, float(err.max()), n, note)


# ------------------------------------------------------------------ RoPE
def _check_head_dim(head_dim) -> int:
    head_dim = _as_int("head_dim", head_dim, 2, 4096)
    if head_dim % 2:
        raise InputError(f"RoPE rotates pairs of dimensions, so head_dim must be even; got {head_dim}.")
    return head_dim


def rope_inv_freq(head_dim: int, theta: float) -> np.ndarray:
    """theta_j = theta^(-2j/head_dim), j = 0 .. head_dim/2 - 1 (as in Llama's default rope). [head_dim/2]."""
    head_dim = _check_head_dim(head_dim)
    if not np.isfinite(theta) or theta <= 0:
        raise InputError(f"rope theta must be a positive number, got {theta}.")
    return 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)


def rope_angles(positions, inv_freq: np.ndarray, float32: bool = False) -> np.ndarray:
    """Rotation angle m * theta_j for each position m and pair j. [P, head_dim/2] (radians, float64).

    ``float32=True`` rounds the product to float32 as PyTorch models do; the rounding error of the angle grows
    with the position (about 1e-5 rad at position 500), which is why a model's cos/sin drift from the exact ones."""
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if pos.size and (pos.min() < 0 or pos.max() > MAX_ROPE_POSITIONS):
        raise InputError(f"Positions must lie between 0 and {MAX_ROPE_POSITIONS:,}.")
    if float32:
        return (pos.astype(np.float32)[:, None] * np.asarray(inv_freq, np.float32)[None, :]).astype(np.float64)
    return pos[:, None] * inv_freq[None, :]


def rope_cos_sin(positions, inv_freq: np.ndarray, float32: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin in the Hugging Face layout (angles repeated twice): each [P, head_dim]."""
    ang = rope_angles(positions, inv_freq, float32)
    emb = np.concatenate([ang, ang], axis=-1)
    return np.cos(emb), np.sin(emb)


def rope_rotate(x: np.ndarray, positions, inv_freq: np.ndarray) -> np.ndarray:
    """Rotate vectors x [P, head_dim] (row r at position positions[r]): x*cos + rotate_half(x)*sin."""
    cos, sin = rope_cos_sin(positions, inv_freq)
    half = x.shape[-1] // 2
    rotated_half = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated_half * sin


@dataclass(frozen=True)
class RopeRelativeCheck:
    """Scores q_m · k_n for pairs (m, n) and the same pairs shifted by each offset.

    ``scores``: [n_shifts, n_pairs] (row 0 is shift 0); ``max_error``: max |score(m+s, n+s) - score(m, n)|."""

    pairs: list[tuple[int, int]]
    shifts: list[int]
    scores: np.ndarray
    max_error: float


def rope_relative_check(q: np.ndarray, k: np.ndarray, inv_freq: np.ndarray, pairs, shifts) -> RopeRelativeCheck:
    """Same q and k content at positions (m, n) and (m+s, n+s): the score must not change."""
    q, k = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)
    scores = np.empty((len(shifts), len(pairs)))
    for a, s in enumerate(shifts):
        for b, (m, n) in enumerate(pairs):
            qm = rope_rotate(q[None], [m + s], inv_freq)[0]
            kn = rope_rotate(k[None], [n + s], inv_freq)[0]
            scores[a, b] = qm @ kn
    err = float(np.abs(scores - scores[:1]).max())
    return RopeRelativeCheck(list(pairs), list(shifts), scores, err)


@dataclass(frozen=True)
class RopeDecay:
    """``bound``: RoFormer's relative upper bound (1/(d/2)) Σ_j |Σ_{i<=j} e^{i r θ_i}| per distance r;
    ``ones_score``: q = k = all-ones score Σ_j 2 cos(r θ_j) / head_dim. Both [R]."""

    distances: np.ndarray
    bound: np.ndarray
    ones_score: np.ndarray


def rope_decay(inv_freq: np.ndarray, max_distance: int = 1024, step: int = 1) -> RopeDecay:
    """Long-range decay of RoPE attention scores with relative distance (Su et al. 2021, §3.4.3)."""
    max_distance = _as_int("max distance", max_distance, 1, MAX_ROPE_POSITIONS)
    r = np.arange(0, max_distance + 1, max(int(step), 1), dtype=np.float64)
    phase = np.exp(1j * r[:, None] * inv_freq[None, :])  # [R, d/2]
    partial = np.cumsum(phase, axis=1)  # S_j = sum_{i<=j} e^{i r theta_i}
    bound = np.abs(partial).mean(axis=1)
    ones = 2 * np.cos(r[:, None] * inv_freq[None, :]).sum(axis=1) / (2 * inv_freq.size)
    return RopeDecay(r.astype(int), bound, ones)


def rotating_vector(q2: np.ndarray, positions, freq: float) -> np.ndarray:
    """A 2-D pair (q_j, q_{j+d/2}) rotated by m*freq for each position m. [P, 2]."""
    ang = np.asarray(positions, dtype=np.float64) * freq
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([q2[0] * c - q2[1] * s, q2[0] * s + q2[1] * c], axis=1)
