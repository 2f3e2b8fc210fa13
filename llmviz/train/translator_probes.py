"""Looking inside the trained translator: the logit lens on its decoder and patching a source word.

Both work on :class:`llmviz.train.seq2seq.Seq2Seq` directly (it is not a Hugging Face model, so the
Explain and Intervene pages, which go through ``llmviz.models.anatomy``, do not take it):

- :func:`decoder_logit_lens`: the decoder's residual stream after the embedding and after every block,
  read out through the final LayerNorm and the output projection (nostalgebraist's logit lens): from
  which layer on does the decoder "know" the word it will write?
- :func:`patch_source`: activation patching (Meng et al. 2022) on the source side. Replace one source
  word (clean -> corrupted sentence of the same length), then copy the clean run's encoder state at one
  (layer, position) into the corrupted run and measure how much of the clean translation's
  log-probability comes back: ``(lp_patched - lp_corrupt) / (lp_clean - lp_corrupt)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llmviz.errors import InputError
from llmviz.train import seq2seq as S
from llmviz.train.loop import single_thread


@dataclass
class DecoderLens:
    """``prob[l, t]``: probability of the written word ``target[t]`` read from the residual stream after
    layer ``l`` (0 = embeddings, l = after block l); ``top[l][t]``: the most likely word there.
    Shapes [layers + 1, T]; T includes EOS."""

    target: list[str]
    prob: np.ndarray
    top: list[list[str]]


@dataclass
class SourcePatch:
    """``recovery[l, i]``: share of the clean translation's log-probability restored by copying the
    clean encoder state at (layer l, source position i) into the corrupted run; layer 0 = embeddings.
    Shape [layers + 1, S]. ``lp_clean``/``lp_corrupt``: summed log-probabilities of the clean
    translation under each source; ``corrupt_output``: the corrupted sentence's greedy translation."""

    clean: list[str]
    corrupt: list[str]
    position: int
    target: list[str]
    recovery: np.ndarray
    lp_clean: float
    lp_corrupt: float
    corrupt_output: list[str]


def _encoder_states(model: S.Seq2Seq, src: torch.Tensor, patch: tuple[int, int, torch.Tensor] | None = None):
    """Encoder memory and the residual stream after the embedding and after each block ([layers + 1] of
    [B, S, d]). ``patch`` = (layer, position, vector [d]) overwrites that state before going on."""
    allowed = (src != S.PAD)[:, None, None, :]
    x = model.embed(src, "src")
    states = []
    for layer in range(len(model.encoder) + 1):
        if patch is not None and patch[0] == layer:
            x = x.clone()
            x[:, patch[1]] = patch[2]
        states.append(x)
        if layer < len(model.encoder):
            x, _, _ = model.encoder[layer](x, allowed)
    return model.enc_ln(x), states


def _target_logp(model: S.Seq2Seq, memory, src, tgt_ids: list[int]) -> float:
    """Summed log-probability of ``tgt_ids`` (without BOS, with EOS), teacher-forced."""
    tgt_in = torch.tensor([[S.BOS] + tgt_ids[:-1]])
    logits, _, _ = model.decode(tgt_in, memory, src)
    return float(logits[0].log_softmax(-1)[torch.arange(len(tgt_ids)), torch.tensor(tgt_ids)].sum())


@torch.no_grad()
@single_thread()
def decoder_logit_lens(model: S.Seq2Seq, src_ids: list[int], tgt_ids: list[int], tv: S.Vocab) -> DecoderLens:
    """The logit lens on the decoder, teacher-forced on ``tgt_ids`` (without BOS, with EOS)."""
    model.eval()
    src = torch.tensor([src_ids])
    memory, _ = model.encode(src)
    tgt_in = torch.tensor([[S.BOS] + tgt_ids[:-1]])
    t = tgt_in.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
    cross_allowed = (src != S.PAD)[:, None, None, :]
    x = model.embed(tgt_in, "tgt")
    states = [x]
    for block in model.decoder:
        x, _, _ = block(x, causal, memory, cross_allowed)
        states.append(x)
    probs = torch.stack([model.out(model.dec_ln(h))[0].softmax(-1) for h in states])  # [layers + 1, T, V]
    want = torch.tensor(tgt_ids)
    prob = probs[:, torch.arange(t), want].numpy()
    top = [[tv.itos[int(i)] for i in row] for row in probs.argmax(-1)]
    return DecoderLens([tv.itos[i] for i in tgt_ids], prob, top)


@torch.no_grad()
@single_thread()
def patch_source(
    model: S.Seq2Seq, sv: S.Vocab, tv: S.Vocab, clean: list[str], position: int, replacement: str
) -> SourcePatch:
    """Replace source word ``position`` of ``clean`` by ``replacement`` and patch every encoder
    (layer, position) from the clean run into the corrupted one (see the module docstring)."""
    if not 0 <= position < len(clean):
        raise InputError(f"Choose a source position between 0 and {len(clean) - 1}.")
    if replacement not in sv.stoi or replacement == clean[position]:
        raise InputError("Choose another known word to put in its place.")
    model.eval()
    corrupt = list(clean)
    corrupt[position] = replacement
    src_c, src_x = torch.tensor([sv.encode(clean)]), torch.tensor([sv.encode(corrupt)])
    target_ids = S.greedy(model, src_c)[0].tolist()
    target = [i for i in target_ids if i != S.PAD]
    if not target or target[-1] != S.EOS:
        target = [i for i in target if i != S.EOS] + [S.EOS]
    mem_c, states_c = _encoder_states(model, src_c)
    mem_x, _ = _encoder_states(model, src_x)
    lp_clean, lp_corrupt = _target_logp(model, mem_c, src_c, target), _target_logp(model, mem_x, src_x, target)
    gap = lp_clean - lp_corrupt
    n_layers, n_src = len(model.encoder) + 1, src_c.shape[1]
    recovery = np.zeros((n_layers, n_src))
    for layer in range(n_layers):
        for i in range(n_src):
            mem_p, _ = _encoder_states(model, src_x, (layer, i, states_c[layer][0, i]))
            lp = _target_logp(model, mem_p, src_x, target)
            recovery[layer, i] = (lp - lp_corrupt) / gap if abs(gap) > 1e-9 else 0.0
    out_x = tv.decode(S.greedy(model, src_x)[0].tolist())
    return SourcePatch(clean, corrupt, position, tv.decode(target), recovery, lp_clean, lp_corrupt, out_x)
