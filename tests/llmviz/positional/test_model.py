"""Position information read from real models: minilm's learned table, smollm2's rotary embedding."""

import numpy as np
import pytest
import torch

from llmviz.errors import UnsupportedModelError
from llmviz.positional import encodings as P
from llmviz.positional import model as PM

pytestmark = pytest.mark.usefixtures("one_thread")


def test_minilm_learned_table_is_the_model_weight(minilm):
    lp = PM.learned_positions(minilm)
    assert lp.matrix.shape == (512, 384)
    weight = minilm.model.embeddings.position_embeddings.weight.detach().numpy()
    assert np.array_equal(lp.matrix, weight.astype(np.float64))


def test_learned_analysis_against_independent_computations(minilm):
    an = PM.analyse_learned(PM.learned_positions(minilm))
    x = an.positions.matrix
    assert an.similarity.shape == (512, 512)
    p, q = 3, 200
    assert an.similarity[p, q] == pytest.approx(x[p] @ x[q] / np.linalg.norm(x[p]) / np.linalg.norm(x[q]))
    # PCA: explained ratios equal the top eigenvalues of the covariance matrix.
    eig = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    assert np.allclose(an.explained, eig[:3] / eig.sum())
    top_axis = np.linalg.eigh(np.cov(x, rowvar=False))[1][:, -1]
    assert np.allclose(np.abs(an.pca[:, 0]), np.abs((x - x.mean(0)) @ top_axis))
    # FFT: the power of dimension 0 at frequency f from a direct DFT sum.
    col = x[:, 0] - x[:, 0].mean()
    f = 5
    direct = abs(sum(col[t] * np.exp(-2j * np.pi * f * t / 512) for t in range(512))) ** 2
    spec = np.abs(np.fft.rfft(col)) ** 2
    assert spec[f] == pytest.approx(direct)
    assert an.power_learned.shape == an.power_sinusoidal.shape == (257,)
    assert an.power_learned.sum() == pytest.approx(1.0) and an.power_sinusoidal.sum() == pytest.approx(1.0)
    # PC1-PC2 trajectory: the turn per step, from arctan2 of each point, and it turns consistently one way
    # (the page says the positions rotate like a sine/cosine pair).
    ang = np.diff(np.unwrap(np.arctan2(an.pca[:, 1], an.pca[:, 0])))
    assert an.pc_turn_deg == pytest.approx(np.degrees(np.median(np.abs(ang))), rel=1e-6)
    assert max((ang > 0).mean(), (ang < 0).mean()) > 0.9 and 20 < an.pc_turn_deg < 160
    from scipy.spatial.distance import pdist

    assert an.neighbour_ratio == pytest.approx(
        np.linalg.norm(np.diff(x, axis=0), axis=1).mean() / pdist(x).mean(), rel=1e-6
    )
    assert an.neighbour_ratio < 0.6
    # Neighbouring learned positions are more alike than distant ones (what the page claims).
    assert an.low_frequency_share("learned") < an.low_frequency_share("sinusoidal")  # more short-wavelength power
    near = np.mean([an.similarity[i, i + 1] for i in range(100)])
    far = np.mean([an.similarity[i, i + 200] for i in range(100)])
    assert near > far


def test_rope_model_has_no_learned_table_and_vice_versa(smollm2, minilm, tiny_encoder):
    with pytest.raises(UnsupportedModelError, match="rotary"):
        PM.learned_positions(smollm2)
    with pytest.raises(UnsupportedModelError, match="learned"):
        PM.rope_config(minilm)
    assert PM.learned_positions(tiny_encoder).matrix.shape == (128, 32)  # any BERT-like model works


@pytest.fixture(scope="module")
def tiny_encoder(tiny_encoder_dir):
    from llmviz.models.loading import load_model

    return load_model(str(tiny_encoder_dir))


def test_smollm2_rope_matches_config_and_model_rotary_emb(smollm2):
    cfg = PM.rope_config(smollm2)
    hf = smollm2.model.config
    assert (cfg.head_dim, cfg.theta) == (hf.hidden_size // hf.num_attention_heads, hf.rope_parameters["rope_theta"])
    assert cfg.module == "model.rotary_emb"
    assert np.allclose(cfg.inv_freq, cfg.model_inv_freq, rtol=1e-6, atol=0)
    pos = torch.arange(0, 8192, 7)
    cos_m, sin_m = smollm2.model.model.rotary_emb(torch.zeros(1), pos[None])  # the model's own output
    cos_m, sin_m = cos_m[0].double().numpy(), sin_m[0].double().numpy()
    assert np.allclose(PM.model_rope_cos_sin(smollm2, pos.numpy())[0], cos_m)
    # Exact formula: equal up to the float32 rounding of the angle, which grows with the position.
    cos_e, sin_e = P.rope_cos_sin(np.arange(128), cfg.inv_freq)
    near = np.arange(0, 128)
    cos_near, sin_near = PM.model_rope_cos_sin(smollm2, near)
    assert np.abs(cos_e - cos_near).max() <= 1e-5 and np.abs(sin_e - sin_near).max() <= 1e-5
    # Same formula evaluated in float32: equal everywhere.
    cos_32, sin_32 = P.rope_cos_sin(pos.numpy(), cfg.model_inv_freq, float32=True)
    assert np.abs(cos_32 - cos_m).max() <= 1e-6 and np.abs(sin_32 - sin_m).max() <= 1e-6


def test_rotation_equals_transformers_apply_rotary_and_relative_property(smollm2):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cfg = PM.rope_config(smollm2)
    q, k = PM.real_qk_pair(smollm2)
    pos = [3, 40, 97]
    cos_m, sin_m = smollm2.model.model.rotary_emb(torch.zeros(1), torch.tensor([pos]))
    qt = torch.tensor(np.stack([q] * 3), dtype=torch.float64)[None, None]  # [1, 1, P, hd]
    q_hf, _ = apply_rotary_pos_emb(qt, qt, cos_m.double(), sin_m.double())
    ours = P.rope_rotate(np.stack([q] * 3), pos, cfg.inv_freq)
    assert np.abs(q_hf[0, 0].numpy() - ours).max() <= 1e-5 * np.linalg.norm(q)
    check = P.rope_relative_check(q, k, cfg.inv_freq, [(5, 2), (40, 10), (7, 30)], [0, 1, 50, 1000])
    assert check.max_error <= 1e-5


def test_tiny_llama_rope_config(tiny_llama):
    cfg = PM.rope_config(tiny_llama)
    assert cfg.head_dim == 8 and cfg.theta == 10000.0
    cos_m, _ = PM.model_rope_cos_sin(tiny_llama, np.arange(20))
    assert np.allclose(P.rope_cos_sin(np.arange(20), cfg.inv_freq)[0], cos_m, atol=1e-6)
