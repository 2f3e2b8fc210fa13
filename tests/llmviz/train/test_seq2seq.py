"""The tiny encoder-decoder: cross-attention recomputed from its weights, the causal mask, source padding,
decoding, alignment accuracy, and a brief seeded training run that learns something that can fail."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from llmviz.errors import InputError
from llmviz.train import seq2seq as S
from llmviz.train import translate as G
from llmviz.train import translator as X
from llmviz.train import translator_probes as P
from llmviz.train.loop import single_thread

CFG = S.Seq2SeqConfig(src_vocab=20, tgt_vocab=22, d_model=16, n_heads=2, n_layers=2, d_ff=32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():  # tiny tensors: more threads only spin on a busy 2-core machine
        yield


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return S.Seq2Seq(CFG).eval()


def batch():
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(4, 20, (3, 7), generator=gen)
    src[0, 5:] = S.PAD  # a padded source
    tgt = torch.randint(4, 22, (3, 6), generator=gen)
    tgt[:, 0] = S.BOS
    return src, tgt


def test_cross_attention_equals_recomputation(model):
    src, tgt = batch()
    seen = {}
    hooks = [
        block.cross_attn.register_forward_hook(lambda m, args, out, i=i: seen.__setitem__(i, (args, out)))
        for i, block in enumerate(model.decoder)
    ]
    try:
        with torch.no_grad():
            out = model(src, tgt)
    finally:
        for h in hooks:
            h.remove()
    memory, _ = model.encode(src)
    dh = CFG.d_model // CFG.n_heads
    for i, block in enumerate(model.decoder):
        (x, mem, _allowed), (att_out, _) = seen[i]
        assert torch.equal(mem, memory)  # keys and values come from the encoder's output
        a = block.cross_attn
        q = (x @ a.q.weight.T + a.q.bias).view(3, 6, 2, dh).transpose(1, 2)  # from the decoder states
        k = (memory @ a.k.weight.T + a.k.bias).view(3, 7, 2, dh).transpose(1, 2)
        v = (memory @ a.v.weight.T + a.v.bias).view(3, 7, 2, dh).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
        scores[0, :, :, 5:] = float("-inf")  # padding is never attended
        w = scores.softmax(-1)
        torch.testing.assert_close(out.cross[i], w, atol=1e-5, rtol=0)
        assert float(out.cross[i][0, :, :, 5:].abs().max()) == 0.0
        mixed = (w @ v).transpose(1, 2).reshape(3, 6, CFG.d_model) @ a.o.weight.T + a.o.bias
        torch.testing.assert_close(att_out, mixed, atol=1e-5, rtol=0)
    assert out.cross.shape == (2, 3, 2, 6, 7) and out.enc_self.shape == (2, 3, 2, 7, 7)
    torch.testing.assert_close(out.cross.sum(-1), torch.ones(2, 3, 2, 6))


def test_decoder_is_causal_and_padding_is_ignored(model):
    src, tgt = batch()
    with torch.no_grad():
        a = model(src, tgt)
        changed = tgt.clone()
        changed[:, 4] = (changed[:, 4] + 1 - 4) % 18 + 4  # another real token at position 4
        b = model(src, changed)
        padded = model(torch.cat([src, torch.full((3, 2), S.PAD)], 1), tgt)
    torch.testing.assert_close(a.logits[:, :4], b.logits[:, :4], atol=1e-6, rtol=0)
    assert (a.logits[:, 4:] - b.logits[:, 4:]).abs().max() > 1e-3
    assert float(a.dec_self[..., :4, 4:].abs().max()) == 0.0  # no query looks ahead
    torch.testing.assert_close(padded.logits, a.logits, atol=1e-5, rtol=0)


def test_alignment_accuracy_counts_argmax_hits():
    ref = torch.zeros(1, 3, 4, dtype=torch.bool)  # 2 target words + EOS row, 4 source positions
    ref[0, 0, 1] = ref[0, 1, 2] = ref[0, 1, 3] = True
    cross = torch.zeros(1, 1, 2, 3, 4)  # [L, n, H, T, S]
    cross[0, 0, 0, 0, 1] = cross[0, 0, 0, 1, 3] = 1.0  # head 0: both right (3 is one of two references)
    cross[0, 0, 1, 0, 0] = cross[0, 0, 1, 1, 2] = 1.0  # head 1: one right
    cross[0, 0, :, 2, 0] = 1.0  # the EOS row does not count
    np.testing.assert_allclose(X.alignment_accuracy(cross, ref), [[1.0, 0.5]])


def test_beam_of_width_one_is_greedy(model):
    src = torch.tensor([[5, 6, 7, S.EOS]])
    greedy = S.greedy(model, src, max_len=6)[0].tolist()
    beams = S.beam(model, src, width=3, max_len=6)
    assert 1 <= len(beams) <= 3 and beams == sorted(beams, key=lambda b: -b[1])
    assert all(S.EOS not in ids for ids, _ in beams)
    assert len(greedy) <= 6
    assert S.beam(model, src, width=1, max_len=6)[0][0] == [i for i in greedy if i not in (S.EOS, S.PAD)]


def test_brief_training_aligns_and_translates():
    params = replace(X.DEFAULT, d_model=32, d_ff=64, n_train=800, n_test=40, steps=160, eval_every=80, max_seconds=20)
    res = X.run_translator(params)
    h = res.history
    assert len(h.step) == 2 and h.val_loss[-1] < h.val_loss[0]
    layer, head, acc = res.best_head()
    chance = np.mean([1 / (len(p.src) + 1) for p in res.test])  # uniform over the words and EOS
    assert acc > max(0.6, 3 * chance), (acc, chance)
    assert h.exact_match[-1] > 0.5
    assert h.cross[-1].shape == (2, 4, len(res.probe.tgt) + 1, len(res.probe.src) + 1)
    out = res.translate("The big dog saw a red cat.")
    assert out.reference.target == "lo kano grando una gata roso vidi"
    assert out.attention["cross"].shape == (2, 4, len(out.greedy) + 1, 8)
    assert [b[1] for b in out.beams] == sorted((b[1] for b in out.beams), reverse=True)
    with pytest.raises(InputError, match="zebra"):
        res.translate("the zebra saw a cat")


def test_params_are_checked():
    with pytest.raises(InputError):
        X.TranslatorParams(positional="rotary").validate()
    with pytest.raises(InputError):
        X.TranslatorParams(n_train=3).validate()
    assert set(X.PRESETS) == {"default", "no_positions", "tiny_data"}
    assert G.reference(G.words_of(X.PROBE)).reordered


def test_decoder_logit_lens_and_source_patching(model):
    sv, tv = S.Vocab([f"s{i}" for i in range(16)]), S.Vocab([f"t{i}" for i in range(18)])
    clean, tgt = ["s1", "s2", "s3", "s4"], [5, 6, 7, S.EOS]
    lens = P.decoder_logit_lens(model, sv.encode(clean), tgt, tv)
    with torch.no_grad():
        logits = model(torch.tensor([sv.encode(clean)]), torch.tensor([[S.BOS] + tgt[:-1]])).logits[0]
    want = logits.softmax(-1)[torch.arange(4), torch.tensor(tgt)].numpy()
    np.testing.assert_allclose(lens.prob[-1], want, atol=1e-5)  # the last layer's readout is the output
    assert lens.prob.shape == (3, 4) and lens.top[-1] == [tv.itos[int(i)] for i in logits.argmax(-1)]
    res = P.patch_source(model, sv, tv, clean, 1, "s9")
    assert res.corrupt == ["s1", "s9", "s3", "s4"] and res.recovery.shape == (3, 5)
    # at the embeddings only the replaced word differs: copying it back restores the clean run exactly
    assert res.recovery[0, 1] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.delete(res.recovery[0], 1), 0.0, atol=1e-4)
    with pytest.raises(InputError):
        P.patch_source(model, sv, tv, clean, 1, "s2")
