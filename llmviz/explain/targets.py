"""What is being explained: targets and the differentiable score they define.

A :class:`Target` names the prediction (next token, masked token, sentence-pair similarity,
optionally contrastive: logit(A) − logit(B)). :func:`build_problem` tokenises the text once and
returns a :class:`Problem`: the input as word embeddings ``[T, D]`` plus ``score(embeds [B, T, D])
-> [B]``, the scalar every attribution method explains. Methods only ever see a Problem, so the
maths can be tested on hand-built problems (e.g. a linear model) without any transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from llmviz.attention.extract import encode, forward_inputs
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.i18n import Labels, labels, resolve
from llmviz.limits import MAX_EXPLAIN_TOKENS, explain_token_limit
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import CAUSAL_LM, ENCODER, MASKED_LM, LoadedModel
from llmviz.tokens import display_token

MAX_TOKENS = MAX_EXPLAIN_TOKENS  # explanation inputs are cut to at most this many tokens (special tokens included)


def token_limit(loaded) -> int:
    """Tokens an explanation input is cut to for ``loaded`` (fewer for larger models: llmviz.limits)."""
    facts = getattr(loaded, "facts", None)
    return explain_token_limit(int(getattr(facts, "n_params", 0) or 0)) if facts is not None else MAX_TOKENS


NEXT_TOKEN, MASKED_TOKEN, SIMILARITY = "next_token", "masked_token", "similarity"
TARGET_KINDS: dict[str, str] = {
    NEXT_TOKEN: "Next token (causal LM): the logit of the token the model predicts after the text.",
    MASKED_TOKEN: "Masked token (masked LM): the logit of the word the model puts at [MASK].",
    SIMILARITY: "Sentence similarity (encoder): cosine of the mean-pooled embeddings of sentence A and B; "
    "the attributions are over sentence A.",
}
KIND_FOR_MODEL = {CAUSAL_LM: (NEXT_TOKEN,), MASKED_LM: (MASKED_TOKEN, SIMILARITY), ENCODER: (SIMILARITY,)}
SCORES = ("logit", "log_prob")
BASELINES: dict[str, str] = {
    "zero": "all-zero embedding vectors",
    "pad": "the embedding of the padding token at every position",
    "bos": "the embedding of the beginning-of-sequence token at every position (models with a BOS token)",
    "mean": "the mean of the embedding matrix (the average vocabulary entry) at every position",
    "mask": "the embedding of the [MASK] token at every position (models with a mask token)",
}


def available_baselines(tokenizer) -> list[str]:
    """The baselines :func:`build_problem` builds for a model with this tokenizer (BASELINES order): pad, bos and
    mask only where the tokenizer has that token."""
    ids = {"pad": tokenizer.pad_token_id, "bos": tokenizer.bos_token_id, "mask": tokenizer.mask_token_id}
    return [b for b in BASELINES if ids.get(b, 0) is not None]


@dataclass(frozen=True)
class Target:
    """The prediction to explain.

    ``token``: the token A to explain (None = the model's top prediction); ``contrast``: token B for a
    contrastive target logit(A) − logit(B); ``text_b``: the second sentence for ``similarity``;
    ``score``: explain the raw ``logit`` or the ``log_prob`` of A (contrastive targets are the same either way).
    """

    kind: str
    token: str | None = None
    contrast: str | None = None
    text_b: str | None = None
    score: str = "logit"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "token": self.token,
            "contrast": self.contrast,
            "text_b": self.text_b,
            "score": self.score,
        }


@dataclass
class Problem:
    """One input and one scalar to explain.

    ``embeds``: float32 ``[T, D]`` word embeddings of the attributed text (position embeddings are
    added inside the model). ``score(e)``: ``[B, T, D] -> [B]``, differentiable. ``baselines``: name ->
    ``[T, D]`` reference input; special tokens keep their own embedding in every baseline.
    ``position``: the output position the target is read at (``None`` = pooled over all positions).
    """

    tokens: list[str]
    embeds: Any  # torch.Tensor [T, D]
    score: Callable[[Any], Any]
    special_mask: np.ndarray  # bool [T]
    baselines: dict[str, Any]
    label: str  # English (CLI, exports); the reader's language: target_label(problem.label_parts, L)
    position: int | None
    target: Target
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    target_id: int | None = None
    contrast_id: int | None = None
    truncated: bool = False
    n_tokens_original: int = 0
    loaded: LoadedModel | None = None
    label_parts: dict[str, Any] = field(default_factory=dict)  # what the label says, for target_label

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def baseline(self, name: str):
        if name not in self.baselines:
            raise InputError(
                f"Baseline '{name}' is not available for this model; choose one of {', '.join(self.baselines)}."
            )
        return self.baselines[name]

    def params(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.target.as_dict(),
            "target_label": self.label,
            "n_tokens": self.n_tokens,
            "truncated": self.truncated,
            "max_tokens": token_limit(self.loaded) if self.loaded is not None else MAX_TOKENS,
        }


# ---------------------------------------------------------------- tokens
def target_label(parts: dict[str, Any], labels: Labels | None = None) -> str:
    """The text of a target (``Problem.label_parts``) in the language of ``labels`` (None = the default
    language): ``logit('\\n') at position 7 (top prediction)``. ``Problem.label`` is its English text."""
    L = resolve(labels)
    if parts.get("kind") == SIMILARITY:
        return L("target_similarity")
    if parts.get("contrast") is not None:
        score = L("target_contrast", token=parts["token"], contrast=parts["contrast"])
    else:
        score = L("target_token", fn=parts["fn"], token=parts["token"])
    text = L("target_at_top" if parts.get("top") else "target_at", score=score, position=parts["position"])
    return text + "".join(f" — {split_note(s['raw'], s['pieces'], L)}" for s in parts.get("splits", []))


def split_note(raw: str, pieces: list[str], labels: Labels | None = None) -> str:
    """The note for a typed token that the tokenizer splits into ``pieces``."""
    return resolve(labels)("target_split", raw=raw, n=len(pieces), pieces=" | ".join(pieces), first=pieces[0])


def resolve_token(loaded: LoadedModel, token: str, text: str = "") -> tuple[int, str]:
    """The vocabulary id for a user-typed token string, and a note (English) when it had to be adapted.

    Byte-level BPE models mark a word start with a space: after a text that does not end in a space,
    "he" is looked up as " he" first. A string that splits into several tokens uses the first one.
    """
    token_id, pieces = _resolve_token(loaded, token, text)
    return token_id, split_note(str(token), pieces, labels("en")) if pieces else ""


def _resolve_token(loaded: LoadedModel, token: str, text: str = "") -> tuple[int, list[str] | None]:
    """resolve_token's id and, when the string is several tokens, their display pieces."""
    tok = loaded.tokenizer
    raw = str(token)
    if not raw.strip():
        raise InputError("The target token is empty. Type a word, or leave it blank for the top prediction.")
    vocab = tok.get_vocab()
    if raw in vocab and raw.startswith(("Ġ", "▁", "##")):  # typed in the vocabulary's own spelling
        return int(vocab[raw]), None
    candidates = [raw]
    if loaded.facts.kind == CAUSAL_LM and not raw.startswith(" ") and text and not text[-1].isspace():
        candidates.insert(0, " " + raw)
    for cand in candidates:
        ids = tok.encode(cand, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0]), None
    ids = tok.encode(candidates[0], add_special_tokens=False)
    if not ids:
        raise InputError(f"'{raw}' produced no tokens for this tokenizer. Type another word.")
    return int(ids[0]), [display_token(tok, i) for i in ids]


def mask_text(loaded: LoadedModel, text: str) -> str:
    """``text`` with the generic ``[MASK]`` replaced by the tokenizer's own mask token."""
    mask = loaded.tokenizer.mask_token
    if mask is None:
        raise UnsupportedModelError("This tokenizer has no mask token, so masked-token targets are impossible.")
    return text.replace("[MASK]", mask) if mask != "[MASK]" else text


# ---------------------------------------------------------------- problem builders
def _embedding_layer(loaded: LoadedModel, kind: str):
    anat = anatomy(loaded.model)
    return anat.embed if kind != SIMILARITY else anatomy(anat.base).embed


def _baselines(loaded: LoadedModel, emb_layer, embeds, special_mask: np.ndarray) -> dict[str, Any]:
    import torch

    tok = loaded.tokenizer
    keep = torch.as_tensor(special_mask, device=embeds.device)[:, None]  # [T, 1]
    out = {"zero": torch.where(keep, embeds, torch.zeros_like(embeds))}
    for name, tid in (("pad", tok.pad_token_id), ("bos", tok.bos_token_id), ("mask", tok.mask_token_id)):
        if tid is not None:
            with torch.no_grad():
                vec = emb_layer(torch.tensor([tid], device=embeds.device))[0].float()  # [D]
            out[name] = torch.where(keep, embeds, vec.expand_as(embeds))
    out["mean"] = torch.where(keep, embeds, mean_embedding(emb_layer).to(embeds.device).expand_as(embeds))
    return {name: out[name] for name in BASELINES if name in out}  # in the registry's order


def mean_embedding(emb_layer):
    """Mean of the embedding matrix over the vocabulary, ``[D]``, as the layer outputs it: a scaled
    embedding (Gemma multiplies by ``sqrt(hidden_size)`` inside the layer) is scaled the same way."""
    import torch

    with torch.no_grad():
        vec = emb_layer.weight.float().mean(0)  # [V, D] -> [D]
        scale = getattr(emb_layer, "embed_scale", None)
        if scale is not None:
            vec = vec * torch.as_tensor(scale, dtype=vec.dtype, device=vec.device)
    return vec


def _token_score(logits, target_id: int, contrast_id: int | None, score: str):
    """``logits`` [B, V] -> [B]."""
    import torch

    if contrast_id is not None:
        return logits[:, target_id] - logits[:, contrast_id]
    if score == "log_prob":
        return torch.log_softmax(logits, dim=-1)[:, target_id]
    return logits[:, target_id]


def build_problem(loaded: LoadedModel, text: str, target: Target, max_tokens: int | None = None) -> Problem:
    """Tokenise ``text`` (cut to ``max_tokens``, default :func:`token_limit`) and define the score for ``target``."""
    import torch

    max_tokens = token_limit(loaded) if max_tokens is None else max_tokens

    if target.kind not in TARGET_KINDS:
        raise InputError(f"Unknown target '{target.kind}'. Choose one of {', '.join(TARGET_KINDS)}.")
    if target.kind not in KIND_FOR_MODEL[loaded.facts.kind]:
        allowed = ", ".join(KIND_FOR_MODEL[loaded.facts.kind])
        raise UnsupportedModelError(
            f"A {loaded.facts.kind.replace('_', ' ')} cannot explain a '{target.kind}' target; it supports: {allowed}."
        )
    if target.score not in SCORES:
        raise InputError(f"Unknown score '{target.score}'. Choose one of {', '.join(SCORES)}.")
    if text is None or not str(text).strip():
        raise InputError("The text is empty. Type a sentence whose prediction you want explained.")
    if target.kind == MASKED_TOKEN:
        text = mask_text(loaded, str(text))
    enc, special, _, n_original, truncated = encode(loaded, text, None, max_tokens)
    inputs = forward_inputs(loaded, enc)
    ids = inputs["input_ids"][0]
    emb_layer = _embedding_layer(loaded, target.kind)
    with torch.no_grad():
        embeds = emb_layer(ids).float()  # [T, D]
    attn_mask = inputs.get("attention_mask", torch.ones_like(ids)[None])
    tokens = [display_token(loaded.tokenizer, int(i)) for i in ids]
    model = loaded.model

    if target.kind == SIMILARITY:
        score, label, position = _similarity_score(loaded, target, attn_mask)
        parts: dict[str, Any] = {"kind": SIMILARITY}
        target_id = contrast_id = None
    else:
        if target.kind == MASKED_TOKEN:
            where = (ids == loaded.tokenizer.mask_token_id).nonzero().flatten().tolist()
            if len(where) != 1:
                raise InputError(
                    f"Put exactly one {loaded.tokenizer.mask_token} in the text "
                    f"(found {len(where)}); the model explains the word it puts there."
                )
            position = int(where[0])
        else:
            position = len(ids) - 1

        def logits_at(e):  # [B, T, D] -> [B, V]
            mask = attn_mask.expand(e.shape[0], -1)
            e = e.to(model.dtype)  # float32 embeddings into a bfloat16 copy of the model (fast sweeps)
            if loaded.facts.kind == CAUSAL_LM:
                return model(inputs_embeds=e, attention_mask=mask, use_cache=False, logits_to_keep=1).logits[:, -1]
            return model(inputs_embeds=e, attention_mask=mask).logits[:, position]

        with torch.no_grad():
            top = int(logits_at(embeds[None])[0].argmax())
        notes = []
        if target.token:
            target_id, pieces = _resolve_token(loaded, target.token, text)
            notes.append({"raw": str(target.token), "pieces": pieces})
        else:
            target_id = top
        contrast_id = None
        if target.contrast:
            contrast_id, pieces = _resolve_token(loaded, target.contrast, text)
            notes.append({"raw": str(target.contrast), "pieces": pieces})
            if contrast_id == target_id:
                raise InputError("The contrast token is the same token as the target; choose a different one.")
        name = display_token(loaded.tokenizer, target_id)
        fn = "log p" if target.score == "log_prob" and contrast_id is None else "logit"
        parts = {
            "fn": fn,
            "token": name,
            "contrast": display_token(loaded.tokenizer, contrast_id) if contrast_id is not None else None,
            "position": position,
            "top": not target.token,
            "splits": [n for n in notes if n["pieces"]],
        }
        label = target_label(parts, labels("en"))

        def score(e):
            return _token_score(logits_at(e), target_id, contrast_id, target.score)

    return Problem(
        tokens=tokens,
        embeds=embeds,
        score=score,
        special_mask=special,
        baselines=_baselines(loaded, emb_layer, embeds, special),
        label=label,
        label_parts=parts,
        position=position,
        target=target,
        text=str(text),
        token_ids=[int(i) for i in ids],
        target_id=target_id,
        contrast_id=contrast_id,
        truncated=truncated,
        n_tokens_original=n_original,
        loaded=loaded,
    )


def mean_pool(hidden, mask):
    """Sentence-transformers mean pooling: ``hidden`` [B, T, D], ``mask`` [B, T] -> [B, D]."""
    m = mask.to(hidden.dtype)[..., None]
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _similarity_score(loaded: LoadedModel, target: Target, attn_mask):
    import torch

    if not target.text_b or not str(target.text_b).strip():
        raise InputError("Sentence similarity needs a second sentence (B). Type one.")
    base = anatomy(loaded.model).base
    enc_b, _, _, _, _ = encode(loaded, target.text_b, None, token_limit(loaded))
    inputs_b = forward_inputs(loaded, enc_b)
    with torch.no_grad():
        pooled_b = mean_pool(base(**inputs_b).last_hidden_state, inputs_b["attention_mask"]).float()  # [1, D]

    def score(e):  # [B, T, D] -> [B]
        mask = attn_mask.expand(e.shape[0], -1)
        pooled = mean_pool(base(inputs_embeds=e, attention_mask=mask).last_hidden_state, mask)
        return torch.nn.functional.cosine_similarity(pooled, pooled_b.expand_as(pooled), dim=-1)

    return score, "cos(mean-pooled A, mean-pooled B)", None


def top_predictions(problem: Problem, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most likely tokens at the problem's position as (display token, probability)."""
    import torch

    if problem.loaded is None or problem.target.kind == SIMILARITY:
        return []
    loaded = problem.loaded
    with torch.inference_mode():
        ids = torch.tensor([problem.token_ids], device=problem.embeds.device)
        out = (
            loaded.model(input_ids=ids, use_cache=False)
            if loaded.facts.kind == CAUSAL_LM
            else loaded.model(input_ids=ids)
        )
        probs = torch.softmax(out.logits[0, problem.position].float(), -1)
    p, i = probs.topk(k)
    return [(display_token(loaded.tokenizer, int(t)), float(v)) for v, t in zip(p, i)]


def score_value(problem: Problem, embeds=None) -> float:
    """f(x) for one input ``[T, D]`` (default: the problem's own input)."""
    import torch

    with torch.no_grad():
        e = problem.embeds if embeds is None else embeds
        return float(problem.score(e[None])[0])
