"""A tiny encoder-decoder Transformer (Vaswani et al. 2017), written out in one readable file.

Encoder: token embedding * sqrt(d) + positions -> N blocks of (self-attention, feed-forward).
Decoder: the same with a causal self-attention, then **cross-attention** (queries from the decoder,
keys and values from the encoder's output), then feed-forward; a final projection to the target
vocabulary. Blocks are pre-LN (LayerNorm before each sub-layer), which trains stably without warm-up.

Every attention returns its weights, so a forward pass can hand back ``enc_self`` [layers, batch, heads,
S, S], ``dec_self`` [layers, batch, heads, T, T] and ``cross`` [layers, batch, heads, T, S] (rows =
target positions, columns = source positions). Positions: ``sinusoidal`` (fixed), ``learned`` or
``none`` (the ablation: without positions the encoder sees a bag of words).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from llmviz.errors import InputError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
POSITIONALS = ("sinusoidal", "learned", "none")
LIMITS = {"n_layers": (1, 4), "d_model": (16, 256), "n_heads": (1, 8), "d_ff": (16, 1024)}


@dataclass(frozen=True)
class Seq2SeqConfig:
    src_vocab: int
    tgt_vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # encoder and decoder each
    d_ff: int = 128
    dropout: float = 0.0
    max_len: int = 32
    positional: str = "sinusoidal"

    def validate(self) -> "Seq2SeqConfig":
        if self.positional not in POSITIONALS:
            raise InputError(f"Unknown position encoding '{self.positional}'; choose one of {', '.join(POSITIONALS)}.")
        for name, (lo, hi) in LIMITS.items():
            if not lo <= getattr(self, name) <= hi:
                raise InputError(f"{name} must be between {lo} and {hi} (got {getattr(self, name)}).")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise InputError(f"d_model ({self.d_model}) must be even and divisible by the heads ({self.n_heads}).")
        if not 0.0 <= self.dropout <= 0.8:
            raise InputError(f"Dropout must be between 0 and 0.8 (got {self.dropout}).")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


class Vocab:
    """Word <-> id for one side (ids 0-3 are the special tokens)."""

    def __init__(self, words: list[str]):
        self.itos = list(SPECIALS) + [w for w in dict.fromkeys(words) if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words, bos: bool = False) -> list[int]:
        return ([BOS] if bos else []) + [self.stoi.get(w, UNK) for w in words] + [EOS]

    def decode(self, ids) -> list[str]:
        out = []
        for i in ids:
            if int(i) == EOS:
                break
            if int(i) not in (PAD, BOS):
                out.append(self.itos[int(i)])
        return out


def pad_batch(seqs: list[list[int]]) -> torch.Tensor:
    """[n, longest] ids, right-padded with PAD."""
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [PAD] * (width - len(s)) for s in seqs], dtype=torch.long)


def sinusoidal_table(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    angle = pos / torch.pow(10000.0, torch.arange(0, d, 2, dtype=torch.float32) / d)  # [n, d/2]
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return table


class Attention(nn.Module):
    """Multi-head attention; ``forward(x, memory, allowed)`` -> (output [B, Tq, d], weights [B, H, Tq, Tk]).
    ``allowed``: bool, broadcastable to [B, H, Tq, Tk] (False = masked)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.dh).transpose(1, 2)  # [B, H, T, dh]

    def forward(self, x, memory, allowed):
        q, k, v = self.split(self.q(x)), self.split(self.k(memory)), self.split(self.v(memory))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.dh)  # [B, H, Tq, Tk]
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
        out = (self.drop(weights) @ v).transpose(1, 2).reshape(x.shape)  # [B, Tq, d]
        return self.o(out), weights


class Block(nn.Module):
    """Encoder block (self-attention, FF) or, with ``cross=True``, decoder block (causal self, cross, FF)."""

    def __init__(self, d: int, heads: int, d_ff: int, dropout: float, cross: bool):
        super().__init__()
        self.ln1, self.self_attn = nn.LayerNorm(d), Attention(d, heads, dropout)
        self.cross_attn = Attention(d, heads, dropout) if cross else None
        self.ln2 = nn.LayerNorm(d) if cross else None
        self.ln3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.ReLU(), nn.Linear(d_ff, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, self_allowed, memory=None, cross_allowed=None):
        h = self.ln1(x)
        out, self_w = self.self_attn(h, h, self_allowed)
        x = x + self.drop(out)
        cross_w = None
        if self.cross_attn is not None:
            out, cross_w = self.cross_attn(self.ln2(x), memory, cross_allowed)
            x = x + self.drop(out)
        return x + self.ff(self.ln3(x)), self_w, cross_w


@dataclass
class Seq2SeqOutput:
    logits: torch.Tensor  # [B, T, tgt_vocab]
    enc_self: torch.Tensor  # [layers, B, H, S, S]
    dec_self: torch.Tensor  # [layers, B, H, T, T]
    cross: torch.Tensor  # [layers, B, H, T, S]


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg.validate()
        d = cfg.d_model
        self.src_embed, self.tgt_embed = nn.Embedding(cfg.src_vocab, d), nn.Embedding(cfg.tgt_vocab, d)
        if cfg.positional == "learned":
            self.src_pos, self.tgt_pos = nn.Embedding(cfg.max_len, d), nn.Embedding(cfg.max_len, d)
            nn.init.normal_(self.src_pos.weight, std=0.5)
            nn.init.normal_(self.tgt_pos.weight, std=0.5)
        self.register_buffer("table", sinusoidal_table(cfg.max_len, d), persistent=False)
        self.encoder = nn.ModuleList(Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout, False) for _ in range(cfg.n_layers))
        self.decoder = nn.ModuleList(Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout, True) for _ in range(cfg.n_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(d), nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.tgt_vocab)
        self.drop = nn.Dropout(cfg.dropout)
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=d**-0.5)  # times sqrt(d) below: unit scale, like the table

    def embed(self, ids: torch.Tensor, side: str) -> torch.Tensor:
        x = (self.src_embed if side == "src" else self.tgt_embed)(ids) * math.sqrt(self.cfg.d_model)
        t = ids.shape[1]
        if t > self.cfg.max_len:
            raise InputError(f"At most {self.cfg.max_len} tokens per sentence (got {t}).")
        if self.cfg.positional == "sinusoidal":
            x = x + self.table[:t]
        elif self.cfg.positional == "learned":
            x = x + (self.src_pos if side == "src" else self.tgt_pos).weight[:t]
        return self.drop(x)

    def encode(self, src: torch.Tensor):
        """src [B, S] -> (memory [B, S, d], encoder self-attention [layers, B, H, S, S])."""
        allowed = (src != PAD)[:, None, None, :]  # [B, 1, 1, S]
        x, weights = self.embed(src, "src"), []
        for block in self.encoder:
            x, w, _ = block(x, allowed)
            weights.append(w)
        return self.enc_ln(x), torch.stack(weights)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src: torch.Tensor):
        """tgt_in [B, T] (BOS first) -> (logits [B, T, V], decoder self [L, B, H, T, T], cross [L, B, H, T, S])."""
        t = tgt_in.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()[None, None]  # [1, 1, T, T]
        cross_allowed = (src != PAD)[:, None, None, :]
        x, self_ws, cross_ws = self.embed(tgt_in, "tgt"), [], []
        for block in self.decoder:
            x, sw, cw = block(x, causal, memory, cross_allowed)
            self_ws.append(sw)
            cross_ws.append(cw)
        return self.out(self.dec_ln(x)), torch.stack(self_ws), torch.stack(cross_ws)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> Seq2SeqOutput:
        memory, enc_w = self.encode(src)
        logits, dec_w, cross_w = self.decode(tgt_in, memory, src)
        return Seq2SeqOutput(logits, enc_w, dec_w, cross_w)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- decoding
@torch.no_grad()
def greedy(model: Seq2Seq, src: torch.Tensor, max_len: int = 20) -> torch.Tensor:
    """Greedy decoding of a batch. src [B, S] -> ids [B, <= max_len] (no BOS; EOS, then PAD)."""
    model.eval()
    memory, _ = model.encode(src)
    out = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(max_len):
        logits, _, _ = model.decode(out, memory, src)
        nxt = logits[:, -1].argmax(-1).masked_fill(done, PAD)
        out = torch.cat([out, nxt[:, None]], 1)
        done |= nxt == EOS
        if done.all():
            break
    return out[:, 1:]


@torch.no_grad()
def beam(model: Seq2Seq, src: torch.Tensor, width: int = 4, max_len: int = 20) -> list[tuple[list[int], float]]:
    """Beam search for one sentence (src [1, S]): the ``width`` best finished hypotheses as
    (ids without BOS/EOS, total log-probability), best first."""
    model.eval()
    memory, _ = model.encode(src)
    alive: list[tuple[list[int], float]] = [([BOS], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_len):
        ids = torch.tensor([h for h, _ in alive])
        logits, _, _ = model.decode(ids, memory.expand(len(alive), -1, -1), src.expand(len(alive), -1))
        logp = logits[:, -1].log_softmax(-1)  # [n_alive, V]
        cand = []
        for (h, s), row in zip(alive, logp):
            top = row.topk(width)
            cand += [(h + [int(i)], s + float(v)) for v, i in zip(top.values, top.indices)]
        cand.sort(key=lambda c: -c[1])
        alive = []
        for h, s in cand:
            (finished if h[-1] == EOS else alive).append((h, s))
            if len(alive) == width:
                break
        finished.sort(key=lambda c: -c[1])
        finished = finished[:width]
        if not alive or (len(finished) == width and finished[-1][1] >= alive[0][1]):
            break
    best = sorted(finished or alive, key=lambda c: -c[1])[:width]
    return [([i for i in h[1:] if i != EOS], s) for h, s in best]


@torch.no_grad()
def attention_of(model: Seq2Seq, src_ids: list[int], tgt_ids: list[int]) -> dict[str, np.ndarray]:
    """The three attentions of one pair, teacher-forced on ``tgt_ids`` (without BOS, with EOS): enc_self
    [L, H, S, S], dec_self [L, H, T, T], cross [L, H, T, S] where row t is the step that *produced*
    ``tgt_ids[t]``."""
    model.eval()
    out = model(torch.tensor([src_ids]), torch.tensor([[BOS] + tgt_ids[:-1]]))
    return {
        "enc_self": out.enc_self[:, 0].numpy(),
        "dec_self": out.dec_self[:, 0].numpy(),
        "cross": out.cross[:, 0].numpy(),
    }
