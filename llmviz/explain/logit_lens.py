"""Logit lens (nostalgebraist 2020): read the residual stream after every layer through the model's
own final norm and unembedding, as if the model stopped there.

Causal LMs only. Row 0 is the embedding output, row ``l`` the residual stream after layer ``l``;
the last row is exactly the model's output distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz.attention.extract import encode, forward_inputs
from llmviz.errors import UnsupportedModelError
from llmviz.explain.targets import MAX_TOKENS, resolve_token
from llmviz.models.anatomy import anatomy
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.tokens import display_token

TOP_K = 5


@dataclass
class LogitLensResult:
    """``top_ids``/``top_probs``: ``[L+1, T]`` top token and its probability at every layer and position.
    ``target_probs``/``target_ranks``: ``[L+1]`` probability and rank (1 = top) of the target token at the
    last position. ``last_probs``: ``[L+1, V]`` the full distribution at the last position (float32).
    ``topk_ids``/``topk_probs``: ``[L+1, K]`` the K best tokens at the last position."""

    tokens: list[str]
    layer_names: list[str]
    top_ids: np.ndarray
    top_tokens: list[list[str]]
    top_probs: np.ndarray
    target_id: int
    target_token: str
    target_probs: np.ndarray
    target_ranks: np.ndarray
    last_probs: np.ndarray
    topk_tokens: list[list[str]]
    topk_probs: np.ndarray
    truncated: bool
    text: str
    output_max_diff: float = 0.0  # max |lens(last layer) − model's own output probabilities| at the last position
    note: str = ""

    def params(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.target_token,
            "n_tokens": len(self.tokens),
            "truncated": self.truncated,
            "max_tokens": MAX_TOKENS,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per (layer, position) for CSV export."""
        return [
            {
                "layer": name,
                "position": p,
                "input_token": self.tokens[p],
                "top_token": self.top_tokens[li][p],
                "top_prob": float(self.top_probs[li, p]),
                "target_prob_last": float(self.target_probs[li]) if p == len(self.tokens) - 1 else None,
                "target_rank_last": int(self.target_ranks[li]) if p == len(self.tokens) - 1 else None,
            }
            for li, name in enumerate(self.layer_names)
            for p in range(len(self.tokens))
        ]


def residual_stream(loaded: LoadedModel, inputs: dict) -> tuple[list, Any]:
    """Residual stream ``[L+1]`` of ``[T, D]`` tensors: embeddings, then the output of each layer (before
    the final norm; hooked because HF returns the last hidden state already normalised); and the
    model's own logits ``[T, V]``."""
    import torch

    layers = anatomy(loaded.model).layers
    captured: dict[int, Any] = {}

    def grab(i):
        def hook(_module, _args, output):
            captured[i] = (output[0] if isinstance(output, tuple) else output)[0].detach().float()

        return hook

    with scoped_hooks(post=[(layer, grab(i)) for i, layer in enumerate(layers)]), torch.inference_mode():
        out = loaded.model(**inputs, output_hidden_states=True, use_cache=False)
    if len(captured) != len(layers):
        raise UnsupportedModelError(f"Captured {len(captured)} of {len(layers)} layer outputs.")
    return [out.hidden_states[0][0].float()] + [captured[i] for i in range(len(layers))], out.logits[0].float()


def logit_lens(
    loaded: LoadedModel, text: str, target: str | None = None, max_tokens: int = MAX_TOKENS
) -> LogitLensResult:
    """Logit lens over every layer and position of ``text``; ``target`` = token tracked at the last
    position (None = the model's final top prediction)."""
    import torch

    if loaded.facts.kind != CAUSAL_LM:
        raise UnsupportedModelError(
            "The logit lens reads the next-token prediction, so it needs a causal LM "
            f"(e.g. smollm2); {loaded.facts.model_id} is a {loaded.facts.kind.replace('_', ' ')}."
        )
    enc, _, _, _, truncated = encode(loaded, text, None, max_tokens)
    inputs = forward_inputs(loaded, enc)
    ids = inputs["input_ids"][0].tolist()
    stream, logits = residual_stream(loaded, inputs)
    own = torch.softmax(logits[-1], dim=-1).cpu().numpy()  # [V] the model's output at the last position
    anat = anatomy(loaded.model)
    norm, head = anat.final_norm, anat.unembed
    tok = loaded.tokenizer
    top_ids, top_probs, last_probs = [], [], []
    with torch.inference_mode():
        for h in stream:  # h: [T, D]
            probs = torch.softmax(head(norm(h)).float(), dim=-1)  # [T, V]
            p, i = probs.max(dim=-1)
            top_ids.append(i.cpu().numpy())
            top_probs.append(p.cpu().numpy())
            last_probs.append(probs[-1].cpu().numpy())
    last = np.stack(last_probs)  # [L+1, V]
    note = ""
    if target:
        target_id, note = resolve_token(loaded, target, text)
    else:
        target_id = int(last[-1].argmax())
    t_probs = last[:, target_id]
    ranks = (last > t_probs[:, None]).sum(axis=1) + 1
    order = np.argsort(-last, axis=1)[:, :TOP_K]
    top_ids_arr = np.stack(top_ids)
    names = ["embed"] + [str(i + 1) for i in range(len(stream) - 1)]
    cache: dict[int, str] = {}

    def show(i: int) -> str:
        if i not in cache:
            cache[i] = display_token(tok, i)
        return cache[i]

    return LogitLensResult(
        tokens=[show(i) for i in ids],
        layer_names=names,
        top_ids=top_ids_arr,
        top_tokens=[[show(int(i)) for i in row] for row in top_ids_arr],
        top_probs=np.stack(top_probs),
        target_id=int(target_id),
        target_token=show(int(target_id)),
        target_probs=t_probs,
        target_ranks=ranks.astype(int),
        last_probs=last,
        topk_tokens=[[show(int(i)) for i in row] for row in order],
        topk_probs=np.take_along_axis(last, order, axis=1),
        truncated=truncated,
        text=str(text),
        output_max_diff=float(np.abs(last[-1] - own).max()),
        note=note,
    )
