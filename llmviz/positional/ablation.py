"""What a model loses without positions: a sentence vs a word-order shuffle, with and without position information.

* Learned positions (BERT-like): the position-embedding output is zeroed, or every position gets position 0's
  vector. Without positions self-attention is permutation-equivariant, so the mean-pooled sentence embedding of
  the shuffle equals the original's (a bag of words) and its attention maps are the original's, reordered.
* RoPE (Llama-like): the rotary module returns cos = 1, sin = 0 (no rotation). The causal mask still leaks order
  (a token sees only its prefix), so the next-token distribution still changes; what becomes exactly
  order-blind is the first layer's output at the last position.

The model is changed only inside :func:`positions_removed` / :func:`rope_disabled`: a forward hook that acts only
for the calling thread (other sessions sharing the cached model are untouched) and is removed in ``finally``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import LoadedModel
from llmviz.tokens import display_token

MAX_ABLATION_TOKENS = 48  # longer inputs are cut (the page shows a notice)
ENCODER_MODES = {"zero": "position embeddings set to zero", "same": "every position uses position 0's vector"}
RUNS = ("with_a", "with_b", "without_a", "without_b")  # (positions on/off) x (original a / shuffled b)
_WORD = re.compile(r"\S+")


@contextmanager
def positions_removed(loaded: LoadedModel, mode: str = "zero"):
    """Inside the block the learned position embeddings are zero (``zero``) or all equal to position 0 (``same``)."""
    if mode not in ENCODER_MODES:
        raise InputError(f"Unknown ablation mode '{mode}'. Choose one of {', '.join(ENCODER_MODES)}.")
    table = anatomy(loaded.model).position_embeddings
    if table is None:
        raise UnsupportedModelError(f"{loaded.facts.model_id} has no learned position embeddings to remove.")

    def replace(out):  # out: [batch, T, hidden]
        import torch

        return torch.zeros_like(out) if mode == "zero" else out[..., :1, :].expand_as(out).clone()

    with scoped_hooks(post=[(table, lambda _mod, _args, out: replace(out))]):
        yield


@contextmanager
def rope_disabled(loaded: LoadedModel):
    """Inside the block the rotary module returns cos = 1, sin = 0: queries and keys are not rotated."""
    rotary = anatomy(loaded.model).rotary
    if rotary is None:
        raise UnsupportedModelError(f"{loaded.facts.model_id} has no rotary embedding module to disable.")

    def replace(out):  # (cos, sin), each [batch, T, head_dim]
        import torch

        cos, sin = out
        return torch.ones_like(cos), torch.zeros_like(sin)

    with scoped_hooks(post=[(rotary, lambda _mod, _args, out: replace(out))]):
        yield


# ------------------------------------------------------------------ the shuffle
@dataclass(frozen=True)
class WordShuffle:
    """Original ids ``ids_a`` and the shuffled ``ids_b`` (same tokens, words reordered), each [T].

    ``order`` [T]: ``ids_b[i] == ids_a[order[i]]`` (special tokens stay in place)."""

    text: str
    ids_a: list[int]
    ids_b: list[int]
    tokens_a: list[str]
    tokens_b: list[str]
    text_b: str
    order: np.ndarray
    n_words: int
    truncated: bool
    seed: int


def _word_groups(tokenizer, text: str, max_tokens: int) -> tuple[list[int], list[list[int]], list[str], bool]:
    """Token ids, the token indices of each whitespace word (special tokens belong to no group), the words."""
    longer = tokenizer(text, truncation=True, max_length=max_tokens + 1)["input_ids"]  # detects a cut
    enc = tokenizer(text, truncation=True, max_length=max_tokens, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    words = [m.span() for m in _WORD.finditer(text)]
    ends = [e for _, e in words]
    special = set(tokenizer.all_special_ids)
    groups: dict[int, list[int]] = {}
    for t, (tid, (s, e)) in enumerate(zip(ids, offsets)):
        if tid in special and s == e:
            continue
        w = next((i for i, end in enumerate(ends) if end > s), len(words) - 1)  # word holding char s
        groups.setdefault(w, []).append(t)
    kept = sorted(groups)
    return ids, [groups[w] for w in kept], [text[slice(*words[w])] for w in kept], len(longer) > len(ids)


def shuffle_words(
    loaded: LoadedModel, text: str, seed: int = 0, keep_last: bool = False, max_tokens: int = MAX_ABLATION_TOKENS
) -> WordShuffle:
    """Reorder the words of ``text`` (their tokens move together) with a seeded permutation that differs from
    the original. ``keep_last`` keeps the final word in place (so a causal model predicts after the same word)."""
    text = (text or "").strip()
    if not text:
        raise InputError("Type a sentence to shuffle (at least two different words).")
    tok = loaded.tokenizer
    ids, groups, words, truncated = _word_groups(tok, text, max_tokens)
    movable = groups[:-1] if keep_last else groups
    need = 3 if keep_last else 2
    if len(groups) < need:
        raise InputError(
            f"The shuffle needs at least {need} words"
            f"{' (the last word stays in place)' if keep_last else ''}; got {len(groups)}."
        )
    rng = np.random.default_rng(seed)
    content = [tuple(ids[t] for t in g) for g in movable]
    for _ in range(50):
        perm = rng.permutation(len(movable))
        if [content[p] for p in perm] != content:
            break
    else:
        raise InputError("All the words are the same, so no shuffle changes the order. Use different words.")
    perm = list(perm) + ([len(groups) - 1] if keep_last else [])
    new_groups = [groups[p] for p in perm]
    flat_old = [t for g in groups for t in g]
    flat_new = [t for g in new_groups for t in g]
    order = np.arange(len(ids))
    order[flat_old] = flat_new  # slot that held old token flat_old[i] now holds token flat_new[i]
    ids_b = [ids[o] for o in order]
    return WordShuffle(
        text,
        list(ids),
        ids_b,
        [display_token(tok, i) for i in ids],
        [display_token(tok, i) for i in ids_b],
        " ".join(words[p] for p in perm),
        order,
        len(groups),
        truncated,
        int(seed),
    )


def reorder_attention(att_b: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Attention of the shuffled input [..., T, T] put back in the original token order."""
    out = np.empty_like(att_b)
    out[..., order[:, None], order[None, :]] = att_b
    return out


def _forward(loaded: LoadedModel, ids: list[int], attentions: bool = True):
    import torch

    x = torch.tensor([ids], device=loaded.device)
    with torch.inference_mode():
        return loaded.model(
            input_ids=x, attention_mask=torch.ones_like(x), output_hidden_states=True, output_attentions=attentions
        )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ learned positions (encoders)
@dataclass(frozen=True)
class EncoderAblation:
    """Mean-pooled sentence embeddings and attention for the four runs in :data:`RUNS`.

    ``attention[run]``: [layer, head, T, T] in that run's token order; ``layer_cos_with/without``: [n_layers+1]
    cosine of original vs shuffle per layer (0 = embeddings); ``attn_diff_*``: max |A_b reordered - A_a|."""

    shuffle: WordShuffle
    mode: str
    cos_with: float
    cos_without: float
    layer_cos_with: np.ndarray
    layer_cos_without: np.ndarray
    attention: dict[str, np.ndarray]
    attn_diff_with: float
    attn_diff_without: float


def encoder_ablation(loaded: LoadedModel, text: str, seed: int = 0, mode: str = "zero") -> EncoderAblation:
    """Sentence vs its shuffle through a learned-position model, with and without position embeddings."""
    if anatomy(loaded.model).position_embeddings is None or loaded.facts.positional == "rope":
        raise UnsupportedModelError(
            f"{loaded.facts.model_id} has no learned position embeddings ({loaded.facts.positional} positions); "
            "this experiment needs a BERT-like model such as minilm."
        )
    sh = shuffle_words(loaded, text, seed)
    pooled, att = {}, {}
    for run in RUNS:
        ids = sh.ids_a if run.endswith("a") else sh.ids_b
        if run.startswith("with_"):
            out = _forward(loaded, ids)
        else:
            with positions_removed(loaded, mode):
                out = _forward(loaded, ids)
        pooled[run] = np.stack([h[0].mean(0).float().cpu().numpy() for h in out.hidden_states])  # [L+1, H]
        att[run] = np.stack([a[0].float().cpu().numpy() for a in out.attentions])  # [L, heads, T, T]
    per_layer = {
        w: np.array([_cosine(pooled[f"{w}_a"][i], pooled[f"{w}_b"][i]) for i in range(pooled[f"{w}_a"].shape[0])])
        for w in ("with", "without")
    }
    diff = {
        w: float(np.abs(reorder_attention(att[f"{w}_b"], sh.order) - att[f"{w}_a"]).max()) for w in ("with", "without")
    }
    return EncoderAblation(
        sh,
        mode,
        float(per_layer["with"][-1]),
        float(per_layer["without"][-1]),
        per_layer["with"],
        per_layer["without"],
        att,
        diff["with"],
        diff["without"],
    )


# ------------------------------------------------------------------ RoPE (causal LMs)
@dataclass(frozen=True)
class CausalAblation:
    """Next-token distributions ``probs[run]`` [vocab] for the four runs in :data:`RUNS` (the shuffle keeps the
    last word). ``js_*``: Jensen-Shannon divergence (bits) original vs shuffle; ``kl_rope_off``: KL(with_a ||
    without_a) in bits; ``layer1_diff_*``: max |h_a - h_b| of the first layer's output at the last position."""

    shuffle: WordShuffle
    probs: dict[str, np.ndarray]
    js_with: float
    js_without: float
    kl_rope_off: float
    layer1_diff_with: float
    layer1_diff_without: float

    def top_table(self, tokenizer, k: int = 8) -> list[dict]:
        """Union of each run's top-k next tokens with their probability in every run; ``token`` is the readable
        text (:func:`display_token`: ``Ġthe`` -> ``▁the``, ``Ċ`` -> ``\\n``), ``raw`` the vocabulary entry."""
        ids: list[int] = []
        for run in RUNS:
            for i in np.argsort(-self.probs[run])[:k]:
                if int(i) not in ids:
                    ids.append(int(i))
        rows = [
            {
                "token": display_token(tokenizer, i),
                "raw": tokenizer.convert_ids_to_tokens(i),
                "token_id": i,
                **{run: float(self.probs[run][i]) for run in RUNS},
            }
            for i in ids
        ]
        return sorted(rows, key=lambda r: -r["with_a"])


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float((p[mask] * np.log2(p[mask] / np.maximum(q[mask], 1e-300))).sum())


def js_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = (p + q) / 2
    return 0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m)


def rope_ablation(loaded: LoadedModel, text: str, seed: int = 0) -> CausalAblation:
    """Sentence vs its prefix shuffle through a rotary causal LM, with and without RoPE."""
    if anatomy(loaded.model).rotary is None or loaded.facts.kind != "causal_lm":
        raise UnsupportedModelError(
            f"{loaded.facts.model_id} is not a causal LM with rotary embeddings ({loaded.facts.kind}, "
            f"{loaded.facts.positional} positions); this experiment needs one such as smollm2."
        )
    import torch

    sh = shuffle_words(loaded, text, seed, keep_last=True)
    probs, first = {}, {}
    for run in RUNS:
        ids = sh.ids_a if run.endswith("a") else sh.ids_b
        if run.startswith("with_"):
            out = _forward(loaded, ids, attentions=False)
        else:
            with rope_disabled(loaded):
                out = _forward(loaded, ids, attentions=False)
        probs[run] = torch.softmax(out.logits[0, -1].double(), -1).cpu().numpy()  # [vocab]
        first[run] = out.hidden_states[1][0, -1].double().cpu().numpy()  # [hidden]
    return CausalAblation(
        sh,
        probs,
        js_bits(probs["with_a"], probs["with_b"]),
        js_bits(probs["without_a"], probs["without_b"]),
        _kl_bits(probs["with_a"], probs["without_a"]),
        float(np.abs(first["with_a"] - first["with_b"]).max()),
        float(np.abs(first["without_a"] - first["without_b"]).max()),
    )
