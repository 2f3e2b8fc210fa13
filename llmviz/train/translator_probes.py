"""Looking inside the trained translator: the logit lens on its decoder and patching a source word.

Both work on :class:`llmviz.train.seq2seq.Seq2Seq` directly (it is not a Hugging Face model, so
``llmviz.models.anatomy`` does not describe it); the Training lab's translator section and, for a translator
loaded as the session model (``llmviz.train.seq2seq_io``), the Explain and Intervene pages call them:

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
from llmviz.train import translate as G
from llmviz.train.loop import single_thread
from llmviz.train.seq2seq_io import TranslatorVocab


@dataclass
class SentencePair:
    """A typed source sentence and the target the views read (typed, or the model's greedy translation)."""

    words: list[str]
    target: list[str]
    typed_target: bool

    @property
    def source_tokens(self) -> list[str]:
        return self.words + ["<eos>"]

    @property
    def target_tokens(self) -> list[str]:
        return self.target + ["<eos>"]


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


# ---------------------------------------------------------------- a translator loaded as the session model
def target_words(text: str, model: S.Seq2Seq, tv: S.Vocab) -> list[str]:
    """The words of a typed target sentence (separated by spaces) if the target side knows them all."""
    words = text.split()
    if len(words) >= model.cfg.max_len:
        raise InputError(f"Type at most {model.cfg.max_len - 1} target words (got {len(words)}).")
    unknown = list(dict.fromkeys(w for w in words if w not in tv.stoi or w in S.SPECIALS))
    if unknown:
        raise InputError(
            f"The target language has no word {', '.join(unknown)}. Known words: {', '.join(tv.itos[4:])}. "
            "Leave the box empty to read the model's own translation."
        )
    return words


@torch.no_grad()
@single_thread()
def sentence_pair(model: S.Seq2Seq, vocab: TranslatorVocab, text: str, target: str = "") -> SentencePair:
    """The source words of ``text`` (InputError outside the toy grammar's vocabulary) and the target: the
    typed ``target`` when given, else the model's greedy translation."""
    words = G.check_sentence(text)
    if target.strip():
        return SentencePair(words, target_words(target, model, vocab.tgt), True)
    ids = S.greedy(model, torch.tensor([vocab.src.encode(words)]))[0].tolist()
    return SentencePair(words, vocab.tgt.decode(ids), False)


@single_thread()
def pair_attention(model: S.Seq2Seq, vocab: TranslatorVocab, pair: SentencePair) -> dict[str, np.ndarray]:
    """The three attentions of ``pair``, teacher-forced (:func:`llmviz.train.seq2seq.attention_of`): enc_self
    [L, H, S, S], dec_self [L, H, T, T], cross [L, H, T, S]; S and T count the closing <eos>."""
    return S.attention_of(model, vocab.src.encode(pair.words), vocab.tgt.encode(pair.target))


def pair_lens(model: S.Seq2Seq, vocab: TranslatorVocab, pair: SentencePair) -> DecoderLens:
    """The decoder's logit lens on ``pair`` (:func:`decoder_logit_lens`)."""
    return decoder_logit_lens(model, vocab.src.encode(pair.words), vocab.tgt.encode(pair.target), vocab.tgt)
