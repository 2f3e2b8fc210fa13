"""Formula-level checks of llmviz.positional.encodings against hand-computed values and independent algorithms."""

import math

import numpy as np
import pytest

from llmviz.errors import InputError
from llmviz.positional import encodings as P


# ------------------------------------------------------------------ sinusoidal table
def test_hand_computed_entries():
    pe = P.sinusoidal(50, 8, 10000)
    assert pe.matrix.shape == (50, 8)
    # PE(pos, 2i) = sin(pos / 10000^(2i/8)), PE(pos, 2i+1) = cos(...), written out by hand:
    assert pe.matrix[0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert pe.matrix[1, 0] == pytest.approx(math.sin(1.0))
    assert pe.matrix[1, 1] == pytest.approx(math.cos(1.0))
    assert pe.matrix[3, 2] == pytest.approx(math.sin(3 / 10))  # 10000^(2/8) = 10
    assert pe.matrix[3, 3] == pytest.approx(math.cos(3 / 10))
    assert pe.matrix[7, 4] == pytest.approx(math.sin(7 / 100))
    assert pe.matrix[49, 7] == pytest.approx(math.cos(49 / 1000))
    assert np.abs(pe.matrix).max() <= 1.0
    assert pe.wavelengths[0] == pytest.approx(2 * math.pi)
    assert pe.wavelengths[-1] == pytest.approx(2 * math.pi * 1000)  # 10000^(6/8) * 2pi


def test_rows_have_norm_sqrt_half_d_and_odd_d_keeps_last_sine():
    pe = P.sinusoidal(30, 16, 10000)
    assert np.allclose(np.linalg.norm(pe.matrix, axis=1), math.sqrt(8))
    odd = P.sinusoidal(30, 5, 100)
    assert odd.matrix.shape == (30, 5) and odd.notes and "odd" in odd.notes[0]
    assert np.allclose(odd.matrix[:, 4], np.sin(np.arange(30) / 100 ** (4 / 5)))
    assert odd.paired_dims == 4


@pytest.mark.parametrize(
    "bad, msg",
    [
        (dict(max_len=0, d_model=8, base=1e4), "max_len"),
        (dict(max_len=10, d_model=0, base=1e4), "d_model"),
        (dict(max_len=10, d_model=8, base=0), "base"),
        (dict(max_len=10, d_model=8, base=-3), "base"),
        (dict(max_len=10, d_model=2.5, base=1e4), "whole number"),
        (dict(max_len=P.MAX_LEN + 1, d_model=8, base=1e4), "between"),
        (dict(max_len=10, d_model="abc", base=1e4), "whole number"),
        (dict(max_len=10, d_model=8, base=float("nan")), "base"),
    ],
)
def test_invalid_parameters_give_clear_messages(bad, msg):
    with pytest.raises(InputError, match=msg):
        P.sinusoidal(**bad)


def test_extremes_d2_maxlen1_base1():
    two = P.sinusoidal(20, 2, 10000)
    assert np.allclose(two.matrix, np.stack([np.sin(np.arange(20)), np.cos(np.arange(20))], 1))
    one = P.sinusoidal(1, 8, 10000)
    assert one.matrix.tolist() == [[0, 1] * 4] and any("max_len = 1" in n for n in one.notes)
    flat = P.sinusoidal(20, 6, 1)
    assert any("base = 1" in n for n in flat.notes)
    assert np.allclose(flat.matrix[:, 0], flat.matrix[:, 2]) and np.allclose(flat.wavelengths, 2 * math.pi)
    assert P.shift_map(one, 0).max_error == 0  # M_0 = identity


# ------------------------------------------------------------------ distance and M_k
def test_similarity_depends_only_on_distance():
    pe = P.sinusoidal(64, 32, 10000)
    ds = P.distance_similarity(pe, "dot")
    expected = np.cos(np.arange(64)[:, None] * pe.freqs[None, :]).sum(1)  # sum_i cos(w_i d), by hand
    assert np.allclose(ds.mean, expected) and ds.max_spread < 1e-9
    cos = P.distance_similarity(pe, "cosine")
    assert np.allclose(cos.mean, expected / 16)
    # The spread check can fail: an odd d_model (unpaired sine) breaks distance-only similarity.
    assert P.distance_similarity(P.sinusoidal(64, 5, 10), "dot").max_spread > 0.1


def test_shift_map_holds_for_every_position_and_matches_least_squares():
    pe = P.sinusoidal(200, 16, 10000)
    for k in (1, 7, 150):
        sm = P.shift_map(pe, k)
        assert sm.max_error <= 1e-6 and sm.n_positions == 200 - k
    # Independent: the linear map fitted by least squares on the data equals the closed form
    # (base 100 so that every column varies enough over 200 positions for a well-conditioned fit).
    small = P.sinusoidal(200, 8, 100)
    for k in (1, 7, 150):
        fitted, *_ = np.linalg.lstsq(small.matrix[:-k], small.matrix[k:], rcond=None)
        assert np.allclose(fitted.T, P.shift_map(small, k).matrix, atol=1e-6)
    wrong = P.shift_matrix(16, 10000, 6)  # a different k must fail the identity
    assert np.abs(pe.matrix[:-7] @ wrong.T - pe.matrix[7:]).max() > 0.1
    with pytest.raises(InputError):
        P.shift_map(pe, 200)


def test_shift_map_odd_d_checks_paired_dims_only():
    sm = P.shift_map(P.sinusoidal(40, 7, 100), 3)
    assert sm.max_error <= 1e-6 and "paired" in sm.note
    assert np.isnan(P.shift_map(P.sinusoidal(5, 1, 100), 1).max_error)


# ------------------------------------------------------------------ RoPE math
def test_rope_rotate_is_a_2d_rotation_of_each_pair():
    inv = P.rope_inv_freq(8, 10000)
    assert np.allclose(inv, [1, 0.1, 0.01, 0.001])
    x = np.random.default_rng(0).standard_normal((3, 8))
    pos = [0, 5, 300]
    out = P.rope_rotate(x, pos, inv)
    for r, m in enumerate(pos):
        for j, w in enumerate(inv):
            c, s = math.cos(m * w), math.sin(m * w)
            a, b = x[r, j], x[r, j + 4]  # Hugging Face pairs dim j with j + d/2
            assert out[r, j] == pytest.approx(a * c - b * s) and out[r, j + 4] == pytest.approx(a * s + b * c)
    assert np.allclose(np.linalg.norm(out, axis=1), np.linalg.norm(x, axis=1))
    assert np.allclose(P.rotating_vector(np.array([x[1, 2], x[1, 6]]), [5], inv[2])[0], out[1, [2, 6]])


def test_rope_relative_property_and_errors():
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal(64), rng.standard_normal(64)
    inv = P.rope_inv_freq(64, 1e5)
    check = P.rope_relative_check(q, k, inv, [(5, 2), (100, 3), (0, 40)], [0, 1, 77, 4000])
    assert check.max_error <= 1e-5
    assert np.ptp(check.scores[0]) > 0.1  # different distances do give different scores
    with pytest.raises(InputError, match="even"):
        P.rope_inv_freq(7, 10000)
    with pytest.raises(InputError):
        P.rope_inv_freq(8, 0)


def test_rope_decay_bound_by_hand():
    inv = P.rope_inv_freq(64, 10000)
    d = P.rope_decay(inv, 512)
    assert d.bound[0] == pytest.approx(sum(range(1, 33)) / 32)  # |S_j| = j at distance 0
    r = 37
    s = np.cumsum(np.exp(1j * r * inv))
    assert d.bound[r] == pytest.approx(np.abs(s).mean())
    assert d.ones_score[0] == pytest.approx(1.0)
    assert d.bound[400:].mean() < d.bound[:10].mean() / 2  # it decays


def test_every_position_gets_a_distinct_row():
    pe = P.sinusoidal(200, 32, 10000)
    d = np.linalg.norm(pe.matrix[:, None] - pe.matrix[None], axis=-1)
    assert d[~np.eye(200, dtype=bool)].min() > 0.1
