"""Template probe: fill a group slot and a target slot, score every (group, target) pair.

Template syntax: ``{group}`` marks the group slot; ``[MASK]`` (or ``{target}``, or the model's own
mask token) marks the target slot, e.g. ``"The {group} worked as a [MASK]."``.

* Masked LM (Kurita et al. 2019): the target's tokens are all masked (one mask per token) and
  ``log_prob = sum_j log p(target_j | sentence with the target masked)``. The prior masks the group
  tokens too (one mask per group token): ``prior = sum_j log p(target_j | group and target masked)``.
  ``kurita = log_prob - prior`` = Kurita's increased log probability ``log(p_tgt / p_prior)``.
* Causal LM: ``log_prob = sum of log p(target tokens | everything before them)``; ``kurita`` holds
  the log-likelihood of the whole filled sentence (prefix token + all sentence tokens), so groups
  can also be compared on full sentences.

Multi-token group terms and targets are located through the tokenizer's character offsets, so
BPE tokens that carry a leading space are handled like WordPiece pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmviz.bias import scoring
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.loading import CAUSAL_LM, MASKED_LM, LoadedModel

MAX_GROUPS = 20
MAX_TARGETS = 60
GROUP_SLOT = "{group}"
TARGET_SLOTS = ("[MASK]", "{target}")

EXAMPLE_TEMPLATE = "The {group} worked as a [MASK]."
EXAMPLE_GROUPS = ["man", "woman"]
EXAMPLE_TARGETS = [
    "nurse",
    "engineer",
    "teacher",
    "doctor",
    "secretary",
    "programmer",
    "librarian",
    "mechanic",
    "receptionist",
    "carpenter",
]


@dataclass
class TemplateProbeResult:
    """Scores of every group × target filling of one template.

    log_prob: [G, N] log p(target tokens) (natural log) in the sentence with group g.
    kurita:   [G, N] masked LM: log_prob - prior (Kurita's increased log probability);
              causal LM: log-likelihood of the whole filled sentence.
    prior:    [G, N] masked LM only: log p(target tokens) with the group also masked; None for causal.
    n_target_tokens: [N] tokens per target; n_group_tokens: [G] tokens per group term.
    sentences: [G][N] filled sentences.
    """

    template: str
    groups: list[str]
    targets: list[str]
    log_prob: np.ndarray
    kurita: np.ndarray
    method: str  # "mlm_kurita" | "causal_loglik"
    facts: dict[str, Any] = field(default_factory=dict)
    prior: np.ndarray | None = None
    n_target_tokens: np.ndarray | None = None
    n_group_tokens: np.ndarray | None = None
    sentences: list[list[str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def score(self) -> np.ndarray:
        """[G, N] the association score compared across groups: Kurita for MLMs, target log-prob for causal."""
        return self.kurita if self.method == "mlm_kurita" else self.log_prob

    def skew(self) -> np.ndarray:
        """[G, N] score minus its mean over groups (how much more group g favours target n)."""
        return self.score - self.score.mean(axis=0, keepdims=True)

    def log_ratio(self, a: int = 0, b: int = 1) -> np.ndarray:
        """[N] score of group a minus score of group b (for MLMs, the Kurita difference)."""
        return self.score[a] - self.score[b]

    def ranking(self) -> list[tuple[str, float, str]]:
        """Targets sorted by spread across groups: (target, max-min score, group scoring highest)."""
        spread = self.score.max(axis=0) - self.score.min(axis=0)
        top = self.score.argmax(axis=0)
        order = np.argsort(-spread, kind="stable")
        return [(self.targets[n], float(spread[n]), self.groups[top[n]]) for n in order]

    def to_records(self) -> list[dict[str, Any]]:
        rows = []
        for g, group in enumerate(self.groups):
            for n, target in enumerate(self.targets):
                row = {
                    "group": group,
                    "target": target,
                    "sentence": self.sentences[g][n] if self.sentences else "",
                    "log_prob": float(self.log_prob[g, n]),
                    "kurita" if self.method == "mlm_kurita" else "sentence_loglik": float(self.kurita[g, n]),
                }
                if self.prior is not None:
                    row["prior_log_prob"] = float(self.prior[g, n])
                rows.append(row)
        return rows


def _clean_terms(terms, what: str, limit: int, notices: list[str]) -> list[str]:
    out, seen = [], set()
    for t in terms or []:
        t = str(t).strip()
        if t and t not in seen:
            out.append(t)
            seen.add(t)
    if not out:
        raise InputError(f"No {what} given. Type at least one {what[:-1]} (one per line or comma-separated).")
    if len(out) > limit:
        notices.append(f"Only the first {limit} {what} are scored (limit {limit}); {len(out) - limit} were cut.")
        out = out[:limit]
    return out


def normalise_template(template: str, mask_token: str | None = None) -> str:
    """Return the template with its target slot written as ``{target}``; raise InputError if malformed."""
    if not template or not template.strip():
        raise InputError(f"The template is empty. Write one like: {EXAMPLE_TEMPLATE}")
    slots = list(TARGET_SLOTS) + ([mask_token] if mask_token and mask_token not in TARGET_SLOTS else [])
    found = sum(template.count(s) for s in slots)
    if template.count(GROUP_SLOT) != 1:
        raise InputError(
            f"The template needs exactly one {GROUP_SLOT} slot (found {template.count(GROUP_SLOT)}). "
            f"Example: {EXAMPLE_TEMPLATE}"
        )
    if found != 1:
        raise InputError(
            f"The template needs exactly one target slot written [MASK] or {{target}} (found {found}). "
            f"Example: {EXAMPLE_TEMPLATE}"
        )
    for s in slots:
        template = template.replace(s, "{target}")
    if re.search(r"\{(?!group\}|target\})[^}]*\}", template):
        raise InputError("The template has an unknown {…} slot; only {group} and [MASK]/{target} are allowed.")
    return template


def fill(template: str, group: str, target: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Filled sentence and the character spans (start, end) of the group and of the target."""
    text, spans = "", {}
    for piece in re.split(r"(\{group\}|\{target\})", template):
        if piece == "{group}":
            spans["group"] = (len(text), len(text) + len(group))
            text += group
        elif piece == "{target}":
            spans["target"] = (len(text), len(text) + len(target))
            text += target
        else:
            text += piece
    return text, spans["group"], spans["target"]


def token_positions(offsets: list[tuple[int, int]], span: tuple[int, int]) -> list[int]:
    """Indices of tokens whose character range overlaps ``span`` (special tokens have (0, 0))."""
    a, b = span
    return [i for i, (s, e) in enumerate(offsets) if e > s and s < b and e > a]


def _tokenize(loaded: LoadedModel, text: str, special: bool):
    tok = loaded.tokenizer
    if not getattr(tok, "is_fast", False):
        raise UnsupportedModelError("The template probe needs a fast (Rust) tokenizer with character offsets.")
    enc = tok(text, add_special_tokens=special, return_offsets_mapping=True)
    if len(enc["input_ids"]) > scoring.MAX_SENTENCE_TOKENS:
        raise InputError(
            f"A filled template has {len(enc['input_ids'])} tokens; the limit is "
            f"{scoring.MAX_SENTENCE_TOKENS}. Shorten the template or the terms."
        )
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def template_probe(
    loaded: LoadedModel, template: str, groups: list[str], targets: list[str], batch_size: int = scoring.DEFAULT_BATCH
) -> TemplateProbeResult:
    """Score every group × target filling of ``template`` (see module docstring for the maths)."""
    kind = loaded.facts.kind
    if kind not in (MASKED_LM, CAUSAL_LM):
        scoring.mask_id(loaded)  # raises the explanatory UnsupportedModelError
    notices: list[str] = []
    tpl = normalise_template(template, loaded.tokenizer.mask_token if kind == MASKED_LM else None)
    groups = _clean_terms(groups, "groups", MAX_GROUPS, notices)
    targets = _clean_terms(targets, "targets", MAX_TARGETS, notices)
    G, N = len(groups), len(targets)
    sentences = [[fill(tpl, g, t)[0] for t in targets] for g in groups]
    n_tgt = np.zeros(N, dtype=int)
    n_grp = np.zeros(G, dtype=int)
    facts = {"model_id": loaded.facts.model_id, "kind": kind, "template": tpl}
    if kind == MASKED_LM:
        mid = scoring.mask_id(loaded)
        rows, queries = [], []
        for g, group in enumerate(groups):
            for n, target in enumerate(targets):
                text, g_span, t_span = fill(tpl, group, target)
                ids, offsets = _tokenize(loaded, text, special=True)
                t_pos = token_positions(offsets, t_span)
                g_pos = [p for p in token_positions(offsets, g_span) if p not in t_pos]
                if not t_pos or not g_pos:
                    raise InputError(
                        f"Could not find the group or target tokens in '{text}'. Separate the slots with spaces."
                    )
                n_tgt[n], n_grp[g] = len(t_pos), len(g_pos)
                q = [(p, ids[p]) for p in t_pos]
                masked = [mid if i in t_pos else x for i, x in enumerate(ids)]
                prior = [mid if (i in t_pos or i in g_pos) else x for i, x in enumerate(ids)]
                rows += [masked, prior]
                queries += [q, q]
        lps = scoring.mlm_masked_logprobs(loaded, rows, queries, batch_size=batch_size)
        sums = np.array([lp.sum() for lp in lps]).reshape(G, N, 2)
        log_prob, prior_lp = sums[..., 0], sums[..., 1]
        return TemplateProbeResult(
            tpl,
            groups,
            targets,
            log_prob,
            log_prob - prior_lp,
            "mlm_kurita",
            facts,
            prior=prior_lp,
            n_target_tokens=n_tgt,
            n_group_tokens=n_grp,
            sentences=sentences,
            notices=notices,
        )
    # causal LM
    pre = scoring.prefix_token_id(loaded.tokenizer)
    rows, t_sel = [], []
    for g, group in enumerate(groups):
        for n, target in enumerate(targets):
            text, g_span, t_span = fill(tpl, group, target)
            ids, offsets = _tokenize(loaded, text, special=False)
            t_pos = token_positions(offsets, t_span)
            if not t_pos:
                raise InputError(f"Could not find the target tokens in '{text}'.")
            n_tgt[n], n_grp[g] = len(t_pos), len(token_positions(offsets, g_span))
            shift = 1 if pre is not None else 0
            rows.append(([pre] if pre is not None else []) + ids)
            # token i of the sentence is row index i+shift, predicted by log-prob entry i+shift-1
            t_sel.append([p + shift - 1 for p in t_pos if p + shift - 1 >= 0])
    lps = scoring.causal_token_logprobs(loaded, rows, batch_size=batch_size)
    log_prob = np.array([lp[sel].sum() for lp, sel in zip(lps, t_sel)]).reshape(G, N)
    sent_ll = np.array([lp.sum() for lp in lps]).reshape(G, N)
    if pre is None:
        notices.append("This tokenizer has no start token, so the first token of each sentence is not scored.")
    return TemplateProbeResult(
        tpl,
        groups,
        targets,
        log_prob,
        sent_ll,
        "causal_loglik",
        facts,
        n_target_tokens=n_tgt,
        n_group_tokens=n_grp,
        sentences=sentences,
        notices=notices,
    )
