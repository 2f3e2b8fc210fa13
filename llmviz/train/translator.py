"""The training lab's translator: train a tiny encoder-decoder live on the toy language pair and watch
its cross-attention become a word alignment.

``run_translator(params, on_eval, on_step)`` trains :class:`llmviz.train.seq2seq.Seq2Seq` on
:mod:`llmviz.train.translate` pairs and, at every evaluation, records the held-out loss, exact match and
BLEU of greedy decoding, every cross-attention head's **alignment accuracy** (share of target words whose
argmax cross-attention falls on a reference source word; teacher-forced on the held-out pairs) and the
cross-attention of a fixed probe sentence (the animation). Same callback contract as
:func:`llmviz.train.loop.train_lm`: ``on_eval(history)`` or ``on_step()`` returning True stops the run.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from llmviz.errors import InputError
from llmviz.models.loading import SEQ2SEQ, cache_dir, register_model
from llmviz.train import seq2seq as S
from llmviz.train import translate as G
from llmviz.train import translate_zh as Z
from llmviz.train.bleu import corpus_bleu
from llmviz.train.loop import History, optimizer_for, single_thread
from llmviz.train.seq2seq_io import TranslatorVocab, save_seq2seq

PROBE = "the big dog liked a red ball in the house"  # adjective swaps, the verb moves, one -> two, two -> one
MAX_TRAIN = 20_000
MAX_STEPS = 20_000
WARMUP = 100
# target language -> (its rules: Clause -> Pair, its vocabulary)
PAIRS: dict[str, tuple[G.Render, Callable[[], list[str]]]] = {
    "lingo": (G.translate_clause, G.target_vocabulary),
    "zh": (Z.to_chinese, Z.target_vocabulary),
}


@dataclass(frozen=True)
class TranslatorParams:
    positional: str = "sinusoidal"
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    n_train: int = 4000
    n_test: int = 200
    steps: int = 450
    batch_size: int = 64
    lr: float = 3e-3
    eval_every: int = 25
    max_seconds: float = 60.0
    seed: int = 0
    pair: str = "lingo"  # the target language (PAIRS)
    target_em: float = 0.95  # the history notes when held-out exact match first reaches this (reached_s)
    stop_at_target: bool = False

    def config(self) -> S.Seq2SeqConfig:
        return S.Seq2SeqConfig(
            len(source_vocab()),
            len(target_vocab(self.pair)),
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.d_ff,
            self.dropout,
            positional=self.positional,
        ).validate()

    def validate(self) -> "TranslatorParams":
        if self.pair not in PAIRS:
            raise InputError(f"Unknown language pair '{self.pair}'; choose one of {', '.join(PAIRS)}.")
        self.config()
        if not 8 <= self.n_train <= MAX_TRAIN:
            raise InputError(f"Use 8-{MAX_TRAIN:,} training sentences (got {self.n_train}).")
        if not 10 <= self.n_test <= 1000:
            raise InputError(f"Use 10-1,000 held-out sentences (got {self.n_test}).")
        if not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"Steps must be between 1 and {MAX_STEPS:,} (got {self.steps}).")
        if not 0 < self.lr <= 0.1 or not 1 <= self.batch_size <= 512 or not 0 < self.max_seconds <= 120:
            raise InputError("Use a learning rate in (0, 0.1], a batch of 1-512 and a time limit of 1-120 s.")
        return self


DEFAULT = TranslatorParams()
PRESETS: dict[str, TranslatorParams] = {
    "default": DEFAULT,
    "no_positions": replace(DEFAULT, positional="none"),  # word order lost: who did what to whom?
    "tiny_data": replace(DEFAULT, n_train=60),  # memorises its 60 sentences, fails new ones
}


def source_vocab() -> S.Vocab:
    return S.Vocab(G.source_vocabulary())


def target_vocab(pair: str = "lingo") -> S.Vocab:
    return S.Vocab(PAIRS[pair][1]())


@dataclass
class TranslatorHistory(History):
    """Loss curves plus, per evaluation: held-out exact match and BLEU (greedy), alignment accuracy
    per head ``align_acc[i]`` [layers, heads], and the probe's cross-attention ``cross[i]`` [layers, heads, T, S]."""

    exact_match: list[float] = field(default_factory=list)
    bleu: list[float] = field(default_factory=list)
    align_acc: list[np.ndarray] = field(default_factory=list)
    cross: list[np.ndarray] = field(default_factory=list)
    reached_s: float | None = None  # wall seconds (training + evaluations) until exact match reached the target


@dataclass
class Translation:
    """A typed sentence translated: greedy and beam outputs, the rule's reference (None: outside the
    grammar) and the attentions of the greedy output (see :func:`llmviz.train.seq2seq.attention_of`)."""

    words: list[str]
    greedy: list[str]
    beams: list[tuple[list[str], float]]
    reference: G.Pair | None
    attention: dict[str, np.ndarray]

    @property
    def target_tokens(self) -> list[str]:
        return self.greedy + ["<eos>"]

    @property
    def source_tokens(self) -> list[str]:
        return self.words + ["<eos>"]


@dataclass
class TranslatorResult:
    params: TranslatorParams
    history: TranslatorHistory
    model: S.Seq2Seq
    src_vocab: S.Vocab
    tgt_vocab: S.Vocab
    test: list[G.Pair]
    hypotheses: list[list[str]]  # final greedy output per held-out pair
    probe: G.Pair
    n_params: int
    seconds: float

    @property
    def exact_match(self) -> float:
        return self.history.exact_match[-1]

    def best_head(self) -> tuple[int, int, float]:
        """(layer, head, alignment accuracy) of the head that aligns best at the end."""
        acc = self.history.align_acc[-1]
        layer, head = np.unravel_index(int(np.argmax(acc)), acc.shape)
        return int(layer), int(head), float(acc[layer, head])

    def exact_match_by_order(self) -> dict[str, float]:
        """Exact match on held-out sentences whose translation reorders words vs those that keep the order."""
        out = {}
        for name, want in (("reordered", True), ("monotonic", False)):
            hits = [list(p.tgt) == h for p, h in zip(self.test, self.hypotheses) if p.reordered == want]
            out[name] = float(np.mean(hits)) if hits else float("nan")
        return out

    def translate(self, text: str, beam_width: int = 4) -> Translation:
        """Translate a typed sentence (InputError for words outside the vocabulary)."""
        words = G.check_sentence(text)
        src = self.src_vocab.encode(words)
        with single_thread():  # tiny model: one thread is fastest on a busy machine
            ids = S.greedy(self.model, torch.tensor([src]))[0].tolist()
            out = self.tgt_vocab.decode(ids)
            beams = [(self.tgt_vocab.decode(h), s) for h, s in S.beam(self.model, torch.tensor([src]), beam_width)]
            att = S.attention_of(self.model, src, self.tgt_vocab.encode(out))
        return Translation(words, out, beams, G.reference(words, PAIRS[self.params.pair][0]), att)

    def register(self, title: str, owner: str | None = None, root: str | Path | None = None) -> str:
        """Save the model (safetensors + translator.json, under ``root``, default the llmviz cache's
        ``trained/``) and register it for session ``owner`` (None: every session), so the sidebar picker and
        the Attention, Explain and Intervene pages open it. The id carries a hash of the weights (a model
        trained anew never meets a cached copy of an earlier one). Returns the registry id."""
        digest = hashlib.sha256()
        for tensor in self.model.state_dict().values():
            digest.update(tensor.detach().cpu().numpy().tobytes())
        model_id = f"lab-translator-{self.params.pair}-{digest.hexdigest()[:8]}"
        folder = (Path(root) if root is not None else cache_dir() / "trained") / model_id
        vocab = TranslatorVocab(self.src_vocab, self.tgt_vocab, self.params.pair)
        save_seq2seq(self.model, vocab, folder, meta=asdict(self.params))
        register_model(
            model_id, folder, title, f"trained in the training lab ({title})", SEQ2SEQ, replace=True, owner=owner
        )
        return model_id

    def rows(self) -> list[dict]:
        h = self.history
        return [
            {"step": s, "train_loss": a, "val_loss": b, "exact_match": e, "bleu": u}
            | {f"align_L{li}H{hi}": float(acc[li, hi]) for li in range(acc.shape[0]) for hi in range(acc.shape[1])}
            for s, a, b, e, u, acc in zip(h.step, h.train_loss, h.val_loss, h.exact_match, h.bleu, h.align_acc)
        ]


# ---------------------------------------------------------------- evaluation
def _tensors(pairs: list[G.Pair], sv: S.Vocab, tv: S.Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """src [n, S] (EOS last) and tgt [n, T+1] (BOS first, EOS last), padded."""
    return S.pad_batch([sv.encode(p.src) for p in pairs]), S.pad_batch([tv.encode(p.tgt, bos=True) for p in pairs])


def reference_mask(pairs: list[G.Pair], t: int, s: int) -> torch.Tensor:
    """[n, t, s] bool: True where source position j is a reference alignment of target word i."""
    ref = torch.zeros(len(pairs), t, s, dtype=torch.bool)
    for b, p in enumerate(pairs):
        for i, a in enumerate(p.alignment):
            ref[b, i, list(a)] = True
    return ref


def alignment_accuracy(cross: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    """Per head, the share of target words whose argmax cross-attention is a reference source word.
    cross [L, n, H, T, S] (row t produced target word t), ref [n, T, S] -> [L, H]."""
    words = ref.any(-1)  # [n, T]: real target words (not EOS, not padding)
    top = cross.argmax(-1)  # [L, n, H, T]
    hit = torch.gather(ref[None, :, None].expand(*cross.shape), -1, top[..., None])[..., 0]  # [L, n, H, T]
    return ((hit & words[None, :, None]).sum((1, 3)).float() / words.sum()).numpy()


@torch.no_grad()
def evaluate(model: S.Seq2Seq, src, tgt, ref) -> tuple[float, np.ndarray]:
    """Teacher-forced held-out loss and alignment accuracy per head."""
    model.eval()
    out = model(src, tgt[:, :-1])
    loss = torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), tgt[:, 1:], ignore_index=S.PAD)
    t = min(out.cross.shape[3], ref.shape[1])
    return float(loss), alignment_accuracy(out.cross[:, :, :, :t], ref[:, :t])


def decode_all(model: S.Seq2Seq, src: torch.Tensor, tv: S.Vocab) -> list[list[str]]:
    return [tv.decode(row) for row in S.greedy(model, src).tolist()]


# ---------------------------------------------------------------- training
def run_translator(
    params: TranslatorParams = DEFAULT,
    on_eval: Callable[[TranslatorHistory], bool | None] | None = None,
    on_step: Callable[[], bool | None] | None = None,
) -> TranslatorResult:
    """Train the translator; returns the result with its history (see the module docstring)."""
    params.validate()
    with single_thread():
        return _run(params, on_eval, on_step)


def _run(params: TranslatorParams, on_eval, on_step) -> TranslatorResult:
    t_start = time.perf_counter()
    render = PAIRS[params.pair][0]
    sv, tv = source_vocab(), target_vocab(params.pair)
    train, test = G.split_pairs(params.n_train, params.n_test, params.seed, render)
    src, tgt = _tensors(train, sv, tv)
    test_src, test_tgt = _tensors(test, sv, tv)
    ref = reference_mask(test, test_tgt.shape[1] - 1, test_src.shape[1])
    probe = G.reference(G.words_of(PROBE), render)
    torch.manual_seed(params.seed)
    model = S.Seq2Seq(params.config()).train()
    opt = optimizer_for(model, params.lr, 0.0)
    # linear warm-up, then linear decay to 10 %: the last steps polish the rare constructions
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / WARMUP, 1.0 - 0.9 * max(0, s - WARMUP) / max(1, params.steps - WARMUP))
    )
    gen = torch.Generator().manual_seed(params.seed)
    n = src.shape[0]
    hist = TranslatorHistory(total_steps=params.steps)
    order, pos = torch.randperm(n, generator=gen), 0
    run_loss, run_n = 0.0, 0
    for step in range(1, params.steps + 1):
        t0 = time.perf_counter()
        if pos >= n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos : pos + params.batch_size]
        pos += params.batch_size
        b_src, b_tgt = src[idx], tgt[idx]
        b_src = b_src[:, : int((b_src != S.PAD).sum(1).max())]  # drop all-padding columns
        b_tgt = b_tgt[:, : int((b_tgt != S.PAD).sum(1).max())]
        model.train()
        logits = model(b_src, b_tgt[:, :-1]).logits
        labels = b_tgt[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=S.PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        k = int((labels != S.PAD).sum())
        run_loss, run_n = run_loss + float(loss.detach()) * k, run_n + k
        hist.tokens += k
        hist.train_seconds += time.perf_counter() - t0
        if on_step is not None and on_step():
            hist.stop_reason = "cancelled"
        over_time = time.perf_counter() - t_start > params.max_seconds
        if step % params.eval_every and step != params.steps and not over_time and not hist.stop_reason:
            continue
        _evaluate_into(hist, model, step, run_loss / max(run_n, 1), (test_src, test_tgt, ref), tv, test, probe, sv)
        hist.epoch.append(step * params.batch_size / n)
        run_loss, run_n = 0.0, 0
        hist.elapsed = time.perf_counter() - t_start
        if hist.reached_s is None and hist.exact_match[-1] >= params.target_em:
            hist.reached_s = hist.elapsed
        if hist.stop_reason:
            pass
        elif on_eval is not None and on_eval(hist):
            hist.stop_reason = "cancelled"
        elif params.stop_at_target and hist.reached_s is not None:
            hist.stop_reason = "target"
        elif over_time and step < params.steps:
            hist.stop_reason = "time_limit"
        if hist.stop_reason:
            break
    hist.stop_reason = hist.stop_reason or "done"
    model.eval()
    hyps = decode_all(model, test_src, tv)
    return TranslatorResult(
        params, hist, model, sv, tv, test, hyps, probe, S.count_params(model), time.perf_counter() - t_start
    )


def _evaluate_into(hist, model, step, train_loss, held_out, tv, test, probe, sv) -> None:
    test_src, test_tgt, ref = held_out
    val_loss, acc = evaluate(model, test_src, test_tgt, ref)
    hyps = decode_all(model, test_src, tv)
    refs = [list(p.tgt) for p in test]
    hist.step.append(step)
    hist.train_loss.append(train_loss)
    hist.val_loss.append(val_loss)
    hist.exact_match.append(float(np.mean([h == r for h, r in zip(hyps, refs)])))
    hist.bleu.append(corpus_bleu(hyps, refs))
    hist.align_acc.append(acc)
    hist.cross.append(S.attention_of(model, sv.encode(probe.src), tv.encode(probe.tgt))["cross"])
    if hist.best_index < 0 or val_loss < hist.val_loss[hist.best_index]:
        hist.best_index = len(hist.val_loss) - 1
    if math.isnan(val_loss):
        raise InputError("The loss became NaN: lower the learning rate.")


def params_dict(params: TranslatorParams) -> dict:
    return asdict(params)
