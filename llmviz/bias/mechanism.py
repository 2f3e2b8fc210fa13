"""Where a benchmark's bias lives, and what removing it does (issue 22).

Definitions (the report and the page use these):

- **Item score** ``S``: CrowS-Pairs: ``LL(sent_more) − LL(sent_less)``, with the audit's scoring (causal LMs: summed
  token log-probabilities of ``[prefix token] + sentence``; masked LMs: the pseudo-log-likelihood of the shared
  tokens, metric.py's rule). StereoSet intrasentence: ``log score(stereotype) − log score(anti-stereotype)`` with
  the audit's scores (causal: mean log-probability of the candidate's tokens; masked: log of the mean probability
  of the filler tokens). ``S > 0``: the model prefers the stereotype; the bias figure is the audit's, the % of
  items with ``S > 0``.
- **Component**: one attention head's output (its ``head_dim`` slice of the input of the attention output
  projection W^O) or one layer's MLP output (:mod:`llmviz.models.anatomy`).
- **Effect** of a component: ``mean over items of (S with the component ablated − S)`` with a percentile bootstrap
  95 % CI over items. Ablation ``mean`` replaces the component's output at every position by its mean over all
  token positions of the items' inputs (the default); ``zero`` by zeros. A negative effect: the component pushes
  towards the stereotype.
- **Screen**: attribution patching (AtP; Nanda 2023, Kramár et al. 2024): the first-order estimate
  ``Σ_positions (ablated − actual) · ∂S/∂activation`` of every component's effect from one forward and one backward
  pass per input, reported beside the exact effect of the top candidates with their correlation.

Exact effects are computed for many components in one batched forward: the inputs are repeated once per variant
(a set of ablated components) and each hook edits only its variant's copy.

:func:`trace` runs the whole loop: split the items (seeded, stratified by bias type) into *find* and *test*
halves, screen and confirm components on *find*, ablate the top ``k`` and re-score both halves, next to two
baselines on the same split — Self-Debias (Schick et al. 2021; causal LMs) and a steering vector learned on
*find* — and the cost of each correction: the mean log-likelihood change on neutral sentences
(``data/neutral_sentences.txt``), the greedy answers on the Playground presets, and the StereoSet LM score when
StereoSet data is given.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from llmviz.bias import scoring
from llmviz.bias.pairs import _masked_copies, crows_positions
from llmviz.bias.stats import bootstrap_ci
from llmviz.errors import InputError, UnsupportedModelError
from llmviz.models.anatomy import anatomy
from llmviz.models.base import CAUSAL_LM, MASKED_LM, LoadedModel
from llmviz.models.hooks import scoped_hooks

ABLATIONS = ("mean", "zero")
SCREENS = ("atp", "exact")
DEFAULT_TOP_K = 20
DEFAULT_KS = (1, 2, 4, 8)
SELF_DEBIAS_LAMBDA = 50.0  # Schick et al. 2021
MAX_ITEMS = 2000
ROW_BUDGET = 64  # rows (inputs x variants) in one forward
LOGIT_BUDGET = 40_000_000  # query logits [Q, vocab] elements in one forward
NEUTRAL_FILE = Path(__file__).resolve().parent / "data" / "neutral_sentences.txt"
PRESET_TOKENS = 6  # greedy tokens compared on each Playground preset

# Self-Debias prefixes per bias type (Schick et al. 2021, as bias-bench uses them for CrowS-Pairs / StereoSet).
SELF_DEBIAS_PREFIX = "The following text discriminates against people because of their {}:"
BIAS_TYPE_WORDS = {
    "race-color": "race/color",
    "race": "race/color",
    "socioeconomic": "socioeconomic status/occupation",
    "profession": "socioeconomic status/occupation",
    "sexual-orientation": "sexual orientation",
    "physical-appearance": "physical appearance",
}


def debias_prefix(bias_type: str) -> str:
    word = BIAS_TYPE_WORDS.get(bias_type, bias_type.replace("-", " ").replace("_", " ") or "identity")
    return SELF_DEBIAS_PREFIX.format(word)


# ---------------------------------------------------------------------------------------------------- items
@dataclass
class Unit:
    """One scored sentence: model inputs (``rows``) and, per row, the ``(position, target id)`` whose log-probability
    counts. ``agg``: ``sum`` (CrowS), ``mean`` (StereoSet causal) or ``logmeanexp`` (StereoSet masked)."""

    rows: list[list[int]]
    queries: list[list[tuple[int, int]]]
    agg: str = "sum"


@dataclass
class Item:
    """A benchmark item: ``S = value(a) − value(b)``, ``a`` the stereotyping side."""

    key: str
    group: str
    a: Unit
    b: Unit
    text_a: str
    text_b: str


def _causal_unit(loaded: LoadedModel, text: str) -> Unit:
    row = scoring.causal_row(loaded, text)
    if len(row) < 2:
        raise InputError("A sentence is empty after tokenization; every sentence needs at least one token.")
    return Unit([row], [[(j, row[j + 1]) for j in range(len(row) - 1)]])


def items_from_pairs(loaded: LoadedModel, frame, limit: int | None = None) -> list[Item]:
    """CrowS-Pairs rows (validated columns ``sent_more, sent_less, bias_type``) as items, scored like the audit."""
    kind = loaded.facts.kind
    if kind not in (CAUSAL_LM, MASKED_LM):
        scoring.mask_id(loaded)  # the explanatory error for encoders without an MLM head
    frame = frame.head(limit) if limit else frame
    if len(frame) > MAX_ITEMS:
        raise InputError(f"{len(frame)} pairs; the mechanism trace takes at most {MAX_ITEMS}. Use --limit.")
    out = []
    for i, r in enumerate(frame.itertuples(index=False)):
        more, less = str(r.sent_more), str(r.sent_less)
        group = str(getattr(r, "bias_type", "") or "")
        if kind == CAUSAL_LM:
            a, b = _causal_unit(loaded, more), _causal_unit(loaded, less)
        else:
            mid = scoring.mask_id(loaded)
            ids1, ids2 = scoring.encode(loaded, more), scoring.encode(loaded, less)
            p1, p2 = crows_positions(ids1, ids2)
            if not p1:
                raise InputError(f"Pair {i + 1} shares no tokens to score; check the sentences.")
            a, b = Unit(*_masked_copies(ids1, p1, mid)), Unit(*_masked_copies(ids2, p2, mid))
        out.append(Item(f"pair{i}", group, a, b, more, less))
    return out


def stereoset_unit(loaded: LoadedModel, item) -> Unit:
    """One StereoSet candidate sentence (``stereoset.SentenceItem``) as the audit scores it: causal LMs the mean
    log-probability of the candidate's tokens, masked LMs the log of the mean probability of its filler tokens."""
    from llmviz.bias import stereoset as SS

    if loaded.facts.kind == CAUSAL_LM:
        row, n = SS.causal_row(loaded, item)
        return Unit([row], [[(j, row[j + 1]) for j in range(len(row) - 1 - n, len(row) - 1)]], "mean")
    mid = scoring.mask_id(loaded)  # the explanatory error for encoders without an MLM head
    ids, pos = SS.masked_rows(loaded, item)
    return Unit(*_masked_copies(ids, pos, mid), "logmeanexp")


def items_from_stereoset(loaded: LoadedModel, data, limit: int | None = None) -> list[Item]:
    """StereoSet intrasentence examples as items (stereotype vs anti-stereotype), scored like the audit."""
    from llmviz.bias import stereoset as SS

    examples = data.intrasentence[:limit] if limit else data.intrasentence
    if not examples:
        raise InputError("The StereoSet file has no intrasentence examples; the trace uses those.")
    out = []
    for ex in examples[:MAX_ITEMS]:
        units = [
            stereoset_unit(loaded, SS.SentenceItem(ex.split, ex.context, ex.by_label(label).sentence))
            for label in ("stereotype", "anti-stereotype")
        ]
        out.append(
            Item(
                ex.id,
                ex.bias_type,
                units[0],
                units[1],
                ex.by_label("stereotype").sentence,
                ex.by_label("anti-stereotype").sentence,
            )
        )
    return out


def neutral_sentences(n: int | None = None) -> list[str]:
    """The shipped neutral sentences (no group words), for the cost of a correction."""
    lines = [x.strip() for x in NEUTRAL_FILE.read_text(encoding="utf-8").splitlines()]
    out = [x for x in lines if x and not x.startswith("#")]
    return out[:n] if n else out


def neutral_units(loaded: LoadedModel, sentences: Sequence[str]) -> list[Unit]:
    if loaded.facts.kind == CAUSAL_LM:
        return [_causal_unit(loaded, s) for s in sentences]
    mid = scoring.mask_id(loaded)
    units = []
    for s in sentences:
        ids = scoring.encode(loaded, s)
        pos = list(range(1, len(ids) - 1))  # every token but the special ones
        units.append(Unit(*_masked_copies(ids, pos, mid)))
    return units


# ---------------------------------------------------------------------------------------------------- components
@dataclass(frozen=True)
class Component:
    kind: str  # "head" | "mlp"
    layer: int
    head: int | None = None

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}" if self.kind == "head" else f"L{self.layer} MLP"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "head": self.head}


def components_of(loaded: LoadedModel) -> list[Component]:
    anat = anatomy(loaded.model)
    out: list[Component] = []
    for layer in range(anat.n_layers):
        out += [Component("head", layer, h) for h in range(anat.n_heads)]
        out.append(Component("mlp", layer))
    return out


def _out(value):
    return value[0] if isinstance(value, tuple) else value


def _with_out(value, tensor):
    return (tensor,) + tuple(value[1:]) if isinstance(value, tuple) else tensor


class _Sites:
    """The hooked modules: W^O inputs (heads) and MLP outputs, per layer."""

    def __init__(self, loaded: LoadedModel):
        anat = anatomy(loaded.model)
        self.n_layers, self.n_heads, self.head_dim = anat.n_layers, anat.n_heads, anat.head_dim
        self.o = [anat.o_proj(layer) for layer in range(self.n_layers)]
        self.mlp = [anat.mlp(layer) for layer in range(self.n_layers)]


@dataclass
class Means:
    """Per-layer mean of each site over the items' token positions: heads ``[L, H*d_h]``, MLPs ``[L, D]``."""

    heads: np.ndarray
    mlp: np.ndarray
    n_positions: int


# ---------------------------------------------------------------------------------------------------- forward core
def _flatten(units: Sequence[Unit]) -> tuple[list[list[int]], list[list[tuple[int, int]]], list[int]]:
    rows, queries, owner = [], [], []
    for u, unit in enumerate(units):
        for r, q in zip(unit.rows, unit.queries):
            rows.append(r)
            queries.append(q)
            owner.append(u)
    return rows, queries, owner


def _aggregate(units: Sequence[Unit], owner: Sequence[int], per_row: Sequence[np.ndarray]) -> np.ndarray:
    vals: list[list[float]] = [[] for _ in units]
    for u, lp in zip(owner, per_row):
        vals[u].extend(np.asarray(lp, float).tolist())
    out = np.empty(len(units))
    for i, (unit, v) in enumerate(zip(units, vals)):
        x = np.asarray(v, float)
        if unit.agg == "sum":
            out[i] = x.sum()
        elif unit.agg == "mean":
            out[i] = x.mean()
        else:  # log of the mean probability
            m = x.max()
            out[i] = m + math.log(np.exp(x - m).mean())
    return out


def _row_batches(rows: Sequence[Sequence[int]], queries, n_variants: int, vocab: int) -> list[list[int]]:
    """Row indices per forward: at most ROW_BUDGET rows x variants and LOGIT_BUDGET query logits."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    per_row = max(1, ROW_BUDGET // max(1, n_variants))
    batches, cur, q = [], [], 0
    for i in order:
        nq = len(queries[i]) * n_variants
        if cur and (len(cur) >= per_row or (q + nq) * vocab > LOGIT_BUDGET):
            batches.append(cur)
            cur, q = [], 0
        cur.append(i)
        q += nq
    if cur:
        batches.append(cur)
    return batches


def _variant_masks(sites: _Sites, variants: Sequence[frozenset], n_rows: int):
    """Per layer: head feature mask [V*n_rows, H*d_h] and MLP row mask [V*n_rows] (True = ablate)."""
    import torch

    nv = len(variants)
    hd = sites.n_heads * sites.head_dim
    heads = [torch.zeros(nv, hd, dtype=torch.bool) for _ in range(sites.n_layers)]
    mlps = [torch.zeros(nv, dtype=torch.bool) for _ in range(sites.n_layers)]
    for v, comps in enumerate(variants):
        for c in comps:
            if c.kind == "head":
                heads[c.layer][v, c.head * sites.head_dim : (c.head + 1) * sites.head_dim] = True
            else:
                mlps[c.layer][v] = True
    heads = [m.repeat_interleave(n_rows, dim=0) for m in heads]
    mlps = [m.repeat_interleave(n_rows, dim=0) for m in mlps]
    return heads, mlps


@contextmanager
def _ablation_hooks(loaded: LoadedModel, variants: Sequence[frozenset], n_rows: int, means: Means | None, mode: str):
    """Hooks that ablate, in the copy of the batch that belongs to each variant, that variant's components.
    ``n_rows``: rows per copy (None: one variant applied to every row, e.g. during generation)."""
    import torch

    sites = _Sites(loaded)
    if not any(variants):
        yield
        return
    heads, mlps = _variant_masks(sites, variants, n_rows or 1)
    dev, dtype = loaded.device, loaded.model.dtype

    def value(kind: str, layer: int, width: int):
        if mode == "zero" or means is None:
            return torch.zeros(width, dtype=dtype, device=dev)
        arr = (means.heads if kind == "head" else means.mlp)[layer]
        return torch.as_tensor(arr, dtype=dtype, device=dev)

    def rows_mask(mask, b: int):
        return mask if n_rows else mask[:1].expand(b, *mask.shape[1:])

    pre, post = [], []
    for layer in range(sites.n_layers):
        if heads[layer].any():
            hm, hv = heads[layer].to(dev), value("head", layer, heads[layer].shape[1])

            def head_hook(_m, args, hm=hm, hv=hv):
                x = args[0]
                m = rows_mask(hm, x.shape[0])[:, None, :]
                return (torch.where(m, hv.to(x.dtype), x),) + tuple(args[1:])

            pre.append((sites.o[layer], head_hook))
        if mlps[layer].any():
            mm = mlps[layer].to(dev)

            def mlp_hook(_m, _args, output, mm=mm, layer=layer):
                y = _out(output)
                v = value("mlp", layer, y.shape[-1]).to(y.dtype)
                m = rows_mask(mm, y.shape[0])[:, None, None]
                return _with_out(output, torch.where(m, v, y))

            post.append((sites.mlp[layer], mlp_hook))
    with scoped_hooks(pre=pre, post=post):
        yield


def _forward_logprobs(loaded: LoadedModel, ids, att, b_idx, p_idx, t_idx, grad: bool = False):
    """log p(target) at the query positions ``[Q]`` (logits computed only there)."""
    import torch

    dev = loaded.device
    ctx = torch.enable_grad() if grad else torch.inference_mode()
    with ctx, scoring._only_positions(loaded.model, b_idx, p_idx) as selected:
        logits = loaded.model(input_ids=ids.to(dev), attention_mask=att.to(dev), use_cache=False).logits
        if not (selected and logits.dim() == 2 and logits.shape[0] == len(b_idx)):
            logits = logits[torch.tensor(b_idx), torch.tensor(p_idx)]
        tgt = torch.tensor(t_idx, device=logits.device)
        picked = logits[torch.arange(len(t_idx), device=logits.device), tgt]
        # log p = logit - logsumexp(logits), in the model's precision, then float64 (sums over many tokens)
        return picked.double() - torch.logsumexp(logits, dim=-1).double()


def row_logprobs(
    loaded: LoadedModel,
    rows: Sequence[Sequence[int]],
    queries: Sequence[Sequence[tuple[int, int]]],
    variants: Sequence[frozenset] = (frozenset(),),
    means: Means | None = None,
    mode: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[list[np.ndarray]]:
    """Per variant, per row: the log-probabilities of the row's queries with the variant's components ablated
    (the rows repeated once per variant in each forward)."""
    variants = list(variants)
    per: list[list[np.ndarray]] = [[np.zeros(0)] * len(rows) for _ in variants]
    pad = scoring.pad_id(loaded.tokenizer)
    batches = _row_batches(rows, queries, len(variants), loaded.facts.vocab_size)
    for k, batch in enumerate(batches):
        if stop is not None and stop():
            raise InterruptedError("stopped")
        ids, att = scoring.pad_batch([rows[i] for i in batch], pad)
        nv, nb = len(variants), len(batch)
        ids, att = ids.repeat(nv, 1), att.repeat(nv, 1)
        b_idx, p_idx, t_idx, slot = [], [], [], []
        for v in range(nv):
            for j, i in enumerate(batch):
                for pos, tgt in queries[i]:
                    b_idx.append(v * nb + j)
                    p_idx.append(pos)
                    t_idx.append(tgt)
                slot.append((v, i, len(queries[i])))
        with _ablation_hooks(loaded, variants, nb, means, mode):
            lp = _forward_logprobs(loaded, ids, att, b_idx, p_idx, t_idx).double().cpu().numpy()
        at = 0
        for v, i, n in slot:
            per[v][i] = lp[at : at + n]
            at += n
        if progress:
            progress(k + 1, len(batches))
    return per


def unit_values(
    loaded: LoadedModel,
    units: Sequence[Unit],
    variants: Sequence[frozenset] = (frozenset(),),
    means: Means | None = None,
    mode: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """``[n_variants, n_units]``: each unit's value with each variant's components ablated (batched)."""
    rows, queries, owner = _flatten(units)
    per = row_logprobs(loaded, rows, queries, variants, means, mode, progress, stop)
    return np.stack([_aggregate(units, owner, p) for p in per])


def _query_weights(units: Sequence[Unit], owner: Sequence[int], per_row: Sequence[np.ndarray]) -> list[np.ndarray]:
    """d value(unit) / d lp for every query, at the clean log-probabilities: 1 (sum), 1/k (mean), softmax
    (log mean exp)."""
    out = []
    totals: dict[int, float] = {}
    for u, lp in zip(owner, per_row):
        if units[u].agg == "logmeanexp":
            totals[u] = totals.get(u, 0.0) + float(np.exp(np.asarray(lp, float)).sum())
    for u, lp in zip(owner, per_row):
        unit = units[u]
        lp = np.asarray(lp, float)
        if unit.agg == "sum":
            out.append(np.ones_like(lp))
        elif unit.agg == "mean":
            out.append(np.full_like(lp, 1.0 / sum(len(q) for q in unit.queries)))
        else:
            out.append(np.exp(lp) / totals[u])
    return out


def _units(items: Sequence[Item]) -> list[Unit]:
    return [it.a for it in items] + [it.b for it in items]


def scores(
    loaded: LoadedModel,
    items: Sequence[Item],
    variants: Sequence[frozenset] = (frozenset(),),
    means: Means | None = None,
    mode: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """``[n_variants, n_items]`` item scores S under each variant."""
    vals = unit_values(loaded, _units(items), variants, means, mode, progress, stop)
    n = len(items)
    return vals[:, :n] - vals[:, n:]


def site_means(loaded: LoadedModel, units: Sequence[Unit]) -> Means:
    """The mean of every W^O input and MLP output over all (unpadded) token positions of ``units``' inputs."""
    import torch

    sites = _Sites(loaded)
    rows, queries, _ = _flatten(units)
    pad = scoring.pad_id(loaded.tokenizer)
    sums_h: list = [None] * sites.n_layers
    sums_m: list = [None] * sites.n_layers
    state: dict[str, Any] = {"mask": None}
    count = 0

    def add(store, layer, x):
        m = state["mask"].to(x.device, x.dtype)[:, :, None]
        s = (x.float() * m).sum(dim=(0, 1)).double()
        store[layer] = s if store[layer] is None else store[layer] + s

    pre = [(sites.o[layer], lambda _m, a, layer=layer: add(sums_h, layer, a[0])) for layer in range(sites.n_layers)]
    post = [
        (sites.mlp[layer], lambda _m, _a, o, layer=layer: add(sums_m, layer, _out(o)))
        for layer in range(sites.n_layers)
    ]
    with scoped_hooks(pre=pre, post=post), torch.inference_mode():
        for batch in _row_batches(rows, queries, 1, 1):
            ids, att = scoring.pad_batch([rows[i] for i in batch], pad)
            state["mask"] = att
            count += int(att.sum())
            loaded.model(input_ids=ids.to(loaded.device), attention_mask=att.to(loaded.device), use_cache=False)
    heads = np.stack([(s / count).cpu().numpy() for s in sums_h]).astype(np.float32)
    mlp = np.stack([(s / count).cpu().numpy() for s in sums_m]).astype(np.float32)
    return Means(heads, mlp, count)


# ---------------------------------------------------------------------------------------------------- AtP screen
def attribution_patching(
    loaded: LoadedModel,
    items: Sequence[Item],
    means: Means | None,
    mode: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[list[Component], np.ndarray]:
    """First-order estimate of every component's effect on each item: ``[n_items, n_components]``, from one
    forward and one backward pass per input: ``Σ_t (ablated_t − a_t) · ∂S/∂a_t``."""
    import torch

    sites = _Sites(loaded)
    comps = components_of(loaded)
    col = {c: j for j, c in enumerate(comps)}
    units = _units(items)
    n = len(items)
    sign = np.concatenate([np.ones(n), -np.ones(n)])
    unit_item = np.concatenate([np.arange(n), np.arange(n)])
    rows, queries, owner = _flatten(units)
    clean = row_logprobs(loaded, rows, queries)[0]
    weights = _query_weights(units, owner, clean)
    out = np.zeros((n, len(comps)))
    pad = scoring.pad_id(loaded.tokenizer)
    dh, H = sites.head_dim, sites.n_heads
    params = [p for p in loaded.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        batches = _row_batches(rows, queries, 1, loaded.facts.vocab_size)
        for k, batch in enumerate(batches):
            if stop is not None and stop():
                raise InterruptedError("stopped")
            ids, att = scoring.pad_batch([rows[i] for i in batch], pad)
            acts: dict[tuple[str, int], tuple[Any, Any]] = {}

            def leaf(key, x, acts=acts):
                z = torch.zeros_like(x, requires_grad=True)
                acts[key] = (x.detach(), z)
                return x + z

            pre = [
                (sites.o[layer], lambda _m, a, layer=layer: (leaf(("head", layer), a[0]),) + tuple(a[1:]))
                for layer in range(sites.n_layers)
            ]
            post = [
                (sites.mlp[layer], lambda _m, _a, o, layer=layer: _with_out(o, leaf(("mlp", layer), _out(o))))
                for layer in range(sites.n_layers)
            ]
            b_idx, p_idx, t_idx, coef = [], [], [], []
            for j, i in enumerate(batch):
                for (pos, tgt), w in zip(queries[i], weights[i]):
                    b_idx.append(j)
                    p_idx.append(pos)
                    t_idx.append(tgt)
                    coef.append(sign[owner[i]] * w)  # d S / d lp of this query
            with scoped_hooks(pre=pre, post=post):
                lp = _forward_logprobs(loaded, ids, att, b_idx, p_idx, t_idx, grad=True)
            with torch.enable_grad():
                (lp * torch.as_tensor(coef, dtype=lp.dtype, device=lp.device)).sum().backward()
            mask = att.to(torch.float32)[:, :, None]
            for (kind, layer), (x, z) in acts.items():
                g = z.grad.double() * mask.double()  # [B, T, W]
                base = (
                    torch.zeros(x.shape[-1])
                    if mode == "zero" or means is None
                    else torch.as_tensor((means.heads if kind == "head" else means.mlp)[layer], dtype=torch.float32)
                )
                delta = (base.to(x.device, torch.float64)[None, None, :] - x.double()) * g  # [B, T, W]
                per_row = delta.sum(dim=1)  # [B, W]
                if kind == "head":
                    per_row = per_row.view(per_row.shape[0], H, dh).sum(-1)  # [B, H]
                    cols = [col[Component("head", layer, h)] for h in range(H)]
                else:
                    per_row = per_row.sum(-1, keepdim=True)
                    cols = [col[Component("mlp", layer)]]
                per_row = per_row.cpu().numpy()
                for j, i in enumerate(batch):
                    out[unit_item[owner[i]], cols] += per_row[j]
            if progress:
                progress(k + 1, len(batches))
    finally:
        for p in params:
            p.requires_grad_(True)
    return comps, out


# ---------------------------------------------------------------------------------------------------- exact effects
def _chunks(seq: Sequence, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def exact_effects(
    loaded: LoadedModel,
    items: Sequence[Item],
    comps: Sequence[Component],
    means: Means | None,
    mode: str = "mean",
    base: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    per_forward: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """``(S [n_items], S_ablated [n_comps, n_items])``: each component ablated alone; ``per_forward`` variants share
    a forward (the inputs repeated)."""
    s0 = base if base is not None else scores(loaded, items, means=means, mode=mode, stop=stop)[0]
    out = np.zeros((len(comps), len(items)))
    done = 0
    for group in _chunks(list(comps), per_forward):
        out[done : done + len(group)] = scores(loaded, items, [frozenset([c]) for c in group], means, mode, stop=stop)
        done += len(group)
        if progress:
            progress(done, len(comps))
    return s0, out


# ---------------------------------------------------------------------------------------------------- Self-Debias
def _prefix_ids(loaded: LoadedModel, prefix: str) -> list[int]:
    return scoring.encode(loaded, prefix + "\n", special=False)


def _debias_inputs(row: Sequence[int], prefix_ids: Sequence[Sequence[int]], pre: int | None):
    """``row`` and its debiasing copies ``[prefix token] + prefix tokens + the row's own tokens``, and how far
    each copy shifts the row's positions."""
    head, body = ([pre], list(row[1:])) if pre is not None and row and row[0] == pre else ([], list(row))
    return [list(row)] + [head + list(ids) + body for ids in prefix_ids], [0] + [len(ids) for ids in prefix_ids]


def _self_debias_rescale(p_reg, p_deb, lam: float):
    """``α(Δ)·p`` with ``Δ = p − max_y p_y`` (unnormalised): the paper's rescaling of the next-token distribution."""
    import torch

    delta = p_reg - p_deb
    return torch.where(delta >= 0, torch.ones_like(delta), torch.exp(lam * delta)) * p_reg


def self_debias_logprobs(
    loaded: LoadedModel,
    units: Sequence[Unit],
    prefixes: Sequence[Sequence[str]],
    lam: float = SELF_DEBIAS_LAMBDA,
    stop: Callable[[], bool] | None = None,
) -> list[np.ndarray]:
    """Self-Debias (Schick et al. 2021) log-probabilities of each unit's queries (causal LMs): with ``p`` the model's
    next-token distribution after the text and ``p_y`` the one after ``prefix_y + text``, ``Δ = p − max_y p_y``,
    ``α(Δ) = 1 if Δ ≥ 0 else exp(λΔ)``, ``p̃ ∝ α(Δ)·p`` (renormalised over the vocabulary). The debiased input is
    ``[prefix token] + tokens(prefix + "\\n") + the text's tokens`` (the text's own tokens unchanged)."""
    import torch

    if loaded.facts.kind != CAUSAL_LM:
        raise UnsupportedModelError("Self-Debias rescales next-token probabilities, so it needs a causal LM.")
    pre = scoring.prefix_token_id(loaded.tokenizer)
    pad = scoring.pad_id(loaded.tokenizer)
    cache: dict[str, list[int]] = {}
    groups = []  # (unit, row index, inputs, shifts, queries): one row and its debiasing copies
    for u, (unit, pfx) in enumerate(zip(units, prefixes)):
        prefix_ids = [cache.setdefault(p, _prefix_ids(loaded, p)) for p in pfx]
        for r, (row, q) in enumerate(zip(unit.rows, unit.queries)):
            groups.append((u, r, *_debias_inputs(row, prefix_ids, pre), q))
    out: list[list[np.ndarray]] = [[np.zeros(0)] * len(unit.rows) for unit in units]
    vocab = max(1, loaded.facts.vocab_size)
    batch: list = []
    size = elems = 0

    def flush():
        if not batch:
            return
        inputs = [x for g in batch for x in g[2]]
        ids_t, att = scoring.pad_batch(inputs, pad)
        b_idx, p_idx = [], []
        at = 0
        for _u, _r, inp, shifts, q in batch:
            for b in range(len(inp)):
                b_idx += [at + b] * len(q)
                p_idx += [pos + shifts[b] for pos, _ in q]
            at += len(inp)
        with torch.inference_mode(), scoring._only_positions(loaded.model, b_idx, p_idx) as selected:
            logits = loaded.model(
                input_ids=ids_t.to(loaded.device), attention_mask=att.to(loaded.device), use_cache=False
            ).logits
            if not (selected and logits.dim() == 2):
                logits = logits[torch.tensor(b_idx), torch.tensor(p_idx)]
            k = 0
            for u, r, inp, _shifts, q in batch:
                n = len(inp) * len(q)
                probs = torch.softmax(logits[k : k + n].double(), dim=-1).view(len(inp), len(q), -1)
                k += n
                p_t = _self_debias_rescale(probs[0], probs[1:].max(dim=0).values, lam)
                p_t = p_t / p_t.sum(-1, keepdim=True)
                tgt = torch.tensor([t for _, t in q])
                out[u][r] = torch.log(p_t[torch.arange(len(q)), tgt]).cpu().numpy()
        batch.clear()

    for g in groups:
        if stop is not None and stop():
            raise InterruptedError("stopped")
        n_in, n_q = len(g[2]), len(g[2]) * len(g[4])
        if batch and (size + n_in > ROW_BUDGET or (elems + n_q) * vocab > LOGIT_BUDGET // 2):
            flush()
            size = elems = 0
        batch.append(g)
        size += n_in
        elems += n_q
    flush()
    return out


def self_debias_values(
    loaded: LoadedModel, units: Sequence[Unit], prefixes, lam: float = SELF_DEBIAS_LAMBDA, stop=None
):
    per_unit = self_debias_logprobs(loaded, units, prefixes, lam, stop)
    flat, owner = [], []
    for u, vals in enumerate(per_unit):
        for v in vals:
            flat.append(v)
            owner.append(u)
    return _aggregate(units, owner, flat)


# ---------------------------------------------------------------------------------------------------- split, stats
def split_items(items: Sequence[Item], seed: int = 0) -> np.ndarray:
    """Boolean ``find`` mask: within each bias type the items are shuffled (seeded) and the first half (rounded up
    for an odd count, alternating between types) goes to *find*, the rest to *test*."""
    rng = np.random.default_rng(seed)
    find = np.zeros(len(items), dtype=bool)
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.group, []).append(i)
    extra = 0
    for g in sorted(groups):
        idx = np.array(groups[g])
        rng.shuffle(idx)
        n = len(idx) // 2 + (len(idx) % 2) * (extra % 2 == 0)
        extra += len(idx) % 2
        find[idx[:n]] = True
    return find


def bias_figure(s: np.ndarray) -> float:
    """% of items with S > 0 (the audit's figure)."""
    return float(100.0 * np.mean(np.asarray(s) > 0)) if len(s) else float("nan")


def paired_diff_ci(before: np.ndarray, after: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """Bootstrap 95 % CI of the change of the bias figure (points), items resampled in pairs."""
    d = 100.0 * ((np.asarray(after) > 0).astype(float) - (np.asarray(before) > 0).astype(float))
    return list(bootstrap_ci(d, n_boot=n_boot, seed=seed))


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None, None
    from scipy.stats import spearmanr

    return float(np.corrcoef(a, b)[0, 1]), float(spearmanr(a, b).statistic)


# ---------------------------------------------------------------------------------------------------- the trace
@dataclass
class TraceConfig:
    ablation: str = "mean"
    screen: str = "atp"
    top_k: int = DEFAULT_TOP_K
    ks: tuple[int, ...] = DEFAULT_KS
    split_seed: int = 0
    n_boot: int = 2000
    boot_seed: int = 0
    steer_layer: int | None = None  # None: the middle layer
    steer_alpha: float = 2.0
    self_debias: bool = True
    lam: float = SELF_DEBIAS_LAMBDA
    presets: bool = True
    n_neutral: int | None = None

    def check(self, n_components: int) -> None:
        if self.ablation not in ABLATIONS:
            raise InputError(f"Ablation must be one of {', '.join(ABLATIONS)} (got '{self.ablation}').")
        if self.screen not in SCREENS:
            raise InputError(f"Screen must be one of {', '.join(SCREENS)} (got '{self.screen}').")
        if not 1 <= self.top_k <= n_components:
            raise InputError(f"Top-k must be between 1 and {n_components} (the model's heads and MLPs).")
        if not self.ks or any(k < 1 for k in self.ks):
            raise InputError("The k values of the correction curve must be at least 1.")


@dataclass
class TraceResult:
    """A finished trace (see :func:`trace`); ``to_dict`` is the report."""

    model: str
    benchmark: str
    config: TraceConfig
    items: list[Item]
    find: np.ndarray  # bool [n_items]
    s: np.ndarray  # clean S [n_items]
    components: list[dict[str, Any]]  # confirmed, sorted by effect (most negative first)
    screen: dict[str, Any]
    correction: dict[str, Any]
    moved: dict[str, list[dict[str, Any]]]  # component name -> the items it moves most (find half)
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    after_s: dict[str, np.ndarray] = field(default_factory=dict)  # method -> S of every item after its correction

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "definitions": {
                "S": "CrowS-Pairs: LL(sent_more) - LL(sent_less); StereoSet: log score(stereotype) - log score(anti)",
                "effect": "mean over find items of (S with the component ablated - S); negative = pushes towards "
                "the stereotype",
                "bias_figure": "% of items with S > 0",
            },
            "parameters": {**self.config.__dict__, "ks": list(self.config.ks)},
            "data": self.data,
            "components": self.components,
            "screen": self.screen,
            "items": [
                {
                    "id": it.key,
                    "group": it.group,
                    "split": "find" if f else "test",
                    "S": float(s),
                    "sent_more": it.text_a,
                    "sent_less": it.text_b,
                }
                for it, f, s in zip(self.items, self.find, self.s)
            ],
            "moved_items": self.moved,
            "correction": self.correction,
            "seconds": self.seconds,
            "notes": self.notes,
        }


def _halves(find: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return s[find], s[~find]


def _method_block(k, find, before, after, n_boot, seed, items, cost) -> dict[str, Any]:
    fb, tb = _halves(find, before)
    fa, ta = _halves(find, after)
    groups = sorted({it.group for it in items})
    test_items = [it for it, f in zip(items, find) if not f]
    by_group = {}
    for g in groups:
        sel = np.array([it.group == g for it in test_items], dtype=bool)
        if sel.any():
            by_group[g] = {"n": int(sel.sum()), "before": bias_figure(tb[sel]), "after": bias_figure(ta[sel])}
    return {
        "k": k,
        "find": {"n": int(find.sum()), "before": bias_figure(fb), "after": bias_figure(fa)},
        "test": {
            "n": int((~find).sum()),
            "before": bias_figure(tb),
            "after": bias_figure(ta),
            "diff_ci95": paired_diff_ci(tb, ta, n_boot, seed),
            "by_group": by_group,
        },
        "mean_S": {"before": float(np.mean(before)), "after": float(np.mean(after))},
        "cost": cost,
    }


def _preset_prompts(loaded: LoadedModel) -> list[tuple[str, Any]]:
    from llmviz.generation.generate import build_prompt
    from llmviz.generation.presets import presets_for

    chat = bool(loaded.facts.has_chat_template)
    return [(k, build_prompt(loaded, p.user, p.system)) for k, p in presets_for(chat).items()]


def _greedy(loaded: LoadedModel, prompt) -> list[int]:
    from llmviz.generation.generate import SamplingParams, generate

    params = SamplingParams(greedy=True, max_new_tokens=PRESET_TOKENS).checked()
    return generate(loaded, prompt, params).token_ids


def _greedy_self_debias(loaded: LoadedModel, prompt, prefixes: Sequence[str], lam: float) -> list[int]:
    import torch

    ids = list(prompt.ids)
    pre, pad = scoring.prefix_token_id(loaded.tokenizer), scoring.pad_id(loaded.tokenizer)
    prefix_ids = [_prefix_ids(loaded, p) for p in prefixes]
    out: list[int] = []
    for _ in range(PRESET_TOKENS):
        inputs, _shifts = _debias_inputs(ids + out, prefix_ids, pre)
        ids_t, att = scoring.pad_batch(inputs, pad)
        b_idx, p_idx = list(range(len(inputs))), [len(x) - 1 for x in inputs]
        with torch.inference_mode(), scoring._only_positions(loaded.model, b_idx, p_idx) as selected:
            logits = loaded.model(
                input_ids=ids_t.to(loaded.device), attention_mask=att.to(loaded.device), use_cache=False
            ).logits  # only the last position of each input goes through the unembedding
            last = logits if selected and logits.dim() == 2 else logits[torch.tensor(b_idx), torch.tensor(p_idx)]
            probs = torch.softmax(last.float(), dim=-1)
            out.append(int(torch.argmax(_self_debias_rescale(probs[0], probs[1:].max(dim=0).values, lam))))
    return out


def _answers(prompts, run) -> list[list[int]]:
    return [run(p) for _, p in prompts]


def _answer_cost(loaded, prompts, clean: list[list[int]], after: list[list[int]]) -> dict[str, Any]:
    tok = loaded.tokenizer
    rows = [
        {"preset": k, "before": tok.decode(a), "after": tok.decode(b), "same": a == b}
        for (k, _), a, b in zip(prompts, clean, after)
    ]
    return {"same_answers": sum(r["same"] for r in rows), "n_presets": len(rows), "answers": rows}


def trace(
    loaded: LoadedModel,
    items: Sequence[Item],
    config: TraceConfig | None = None,
    benchmark: str = "crows_pairs",
    stereoset=None,
    progress: Callable[..., None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: dict | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
    exact_runner: Callable[..., np.ndarray] | None = None,
) -> TraceResult:
    """Screen, confirm and correct (see the module docstring). ``stereoset``: StereoSetData for the LM-score cost.
    ``progress(done, total, stage)``: stages ``means``, ``screen``, ``exact``, ``correction``, ``cost``.
    ``checkpoint``: the finished stages of an earlier, interrupted run of the same inputs (a dict this function
    fills: clean scores, the screen, each confirmed component's scores); ``on_checkpoint(ck)`` hears it after
    each stage so the caller can save it. ``exact_runner(components, items, means, mode)`` -> ``[n, n_items]``
    replaces the local exact ablation (e.g. on Ray); the results must be the same."""
    cfg = config or TraceConfig()
    items = list(items)
    if len(items) < 4:
        raise InputError("The trace needs at least 4 items (2 to choose components on, 2 to test them on).")
    comps_all = components_of(loaded)
    cfg.check(len(comps_all))
    tick = (lambda d, t, stage: progress(d, t, stage)) if progress else (lambda *_: None)
    seconds: dict[str, float] = {}
    notes: list[str] = []
    causal = loaded.facts.kind == CAUSAL_LM

    t0 = time.perf_counter()
    find = split_items(items, cfg.split_seed)
    find_items = [it for it, f in zip(items, find) if f]
    means = site_means(loaded, _units(find_items)) if cfg.ablation == "mean" else None
    tick(1, 1, "means")
    ck = checkpoint if checkpoint is not None else {}
    if "s_all" not in ck:
        ck["s_all"] = scores(loaded, items, stop=stop)[0].tolist()
        if on_checkpoint is not None:
            on_checkpoint(ck)
    s_all = np.asarray(ck["s_all"], float)
    s_find = s_all[find]
    seconds["means_and_clean_s"] = time.perf_counter() - t0

    # screen on the find half
    t0 = time.perf_counter()
    if cfg.screen == "atp":
        comps = comps_all
        if "atp" not in ck:
            _, per_item = attribution_patching(
                loaded, find_items, means, cfg.ablation, progress=lambda d, t: tick(d, t, "screen"), stop=stop
            )
            ck["atp"] = per_item.mean(axis=0).tolist()
            if on_checkpoint is not None:
                on_checkpoint(ck)
        estimate = np.asarray(ck["atp"], float)
        order = np.argsort(-np.abs(estimate))
        candidates = [comps[i] for i in order[: cfg.top_k]]
    else:
        comps, estimate = comps_all, None
        candidates = comps_all
    seconds["screen"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    todo = [c for c in candidates if f"exact:{c.name}" not in ck]
    for group in _chunks(todo, 8):  # each finished group is kept (a resumed run skips it)
        if exact_runner is not None:
            got = exact_runner(group, find_items, means, cfg.ablation)
        else:
            _, got = exact_effects(loaded, find_items, group, means, cfg.ablation, base=s_find, stop=stop)
        for c, row in zip(group, got):
            ck[f"exact:{c.name}"] = np.asarray(row, float).tolist()
        if on_checkpoint is not None:
            on_checkpoint(ck)
        tick(sum(f"exact:{c.name}" in ck for c in candidates), len(candidates), "exact")
    s_abl = np.array([ck[f"exact:{c.name}"] for c in candidates], float).reshape(len(candidates), len(find_items))
    seconds["exact"] = time.perf_counter() - t0
    deltas = s_abl - s_find[None, :]
    col = {c: j for j, c in enumerate(comps)}
    rows = []
    for c, d in zip(candidates, deltas):
        lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, seed=cfg.boot_seed)
        rows.append(
            {
                **c.as_dict(),
                "name": c.name,
                "effect": float(d.mean()),
                "ci95": [lo, hi],
                "screen_estimate": None if estimate is None else float(estimate[col[c]]),
            }
        )
    order_e = np.argsort([r["effect"] for r in rows])
    rows = [rows[i] for i in order_e]
    if cfg.screen == "atp":
        pearson, spearman = _corr([r["screen_estimate"] for r in rows], [r["effect"] for r in rows])
        screen = {"method": "atp", "n_confirmed": len(rows), "pearson": pearson, "spearman": spearman}
        if pearson is not None and pearson < 0.5:
            notes.append(
                f"The attribution-patching screen correlates only {pearson:.2f} with the exact effects of its top "
                f"{len(rows)}: read its ranking with care (exact effects are the ones reported)."
            )
    else:
        screen = {"method": "exact", "n_confirmed": len(rows), "pearson": None, "spearman": None}
    find_keys = [it.key for it in find_items]
    moved = {}
    for c, d in zip(candidates, deltas):
        top = np.argsort(-np.abs(d))[:5]
        moved[c.name] = [{"id": find_keys[i], "delta_S": float(d[i])} for i in top]

    # corrections
    t0 = time.perf_counter()
    pushers = [Component(r["kind"], r["layer"], r["head"]) for r in rows if r["effect"] < 0]
    if not pushers:
        notes.append("No confirmed component pushes towards the stereotype on the find half; ablation removes nothing.")
    ks = sorted({min(k, len(pushers)) for k in cfg.ks if pushers}) or [0]
    variants = [frozenset(pushers[:k]) for k in ks]
    s_after = scores(loaded, items, variants, means, cfg.ablation, stop=stop)
    tick(1, 3, "correction")
    neutral = neutral_units(loaded, neutral_sentences(cfg.n_neutral))
    n_tok = np.array([sum(len(q) for q in u.queries) for u in neutral], float)
    neutral_vals = unit_values(loaded, neutral, [frozenset()] + variants, means, cfg.ablation, stop=stop)
    prompts = _preset_prompts(loaded) if (causal and cfg.presets) else []
    clean_answers = _answers(prompts, lambda p: _greedy(loaded, p))
    ss_units, ss_ids = [], []
    if stereoset is not None:
        from llmviz.bias import stereoset as SS

        for ex in stereoset.intrasentence:
            for s in ex.sentences:
                ss_ids.append(s.id)
                ss_units.append(stereoset_unit(loaded, SS.SentenceItem(ex.split, ex.context, s.sentence)))

    def lm_score(values: np.ndarray) -> float | None:
        if stereoset is None:
            return None
        from llmviz.bias import stereoset as SS

        intra = SS.StereoSetData(stereoset.version, stereoset.intrasentence, [], stereoset.source, stereoset.sha256)
        res = SS.evaluate(intra, {sid: float(np.exp(v)) for sid, v in zip(ss_ids, values)})
        return float(res["overall"]["LM Score"])

    ss_vals = unit_values(loaded, ss_units, [frozenset()] + variants, means, cfg.ablation) if ss_units else None
    lm_before = lm_score(ss_vals[0]) if ss_vals is not None else None

    def neutral_cost(after_vals: np.ndarray) -> dict[str, Any]:
        d = (after_vals - neutral_vals[0]) / n_tok
        lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, seed=cfg.boot_seed)
        return {"neutral_ll_per_token_change": float(d.mean()), "neutral_ci95": [lo, hi], "n_neutral": len(neutral)}

    curve = []
    for v, (k, variant) in enumerate(zip(ks, variants)):
        cost = neutral_cost(neutral_vals[v + 1])
        cost["stereoset_lm"] = None if ss_vals is None else {"before": lm_before, "after": lm_score(ss_vals[v + 1])}
        if prompts:
            with _ablation_hooks(loaded, [variant], None, means, cfg.ablation):
                cost["presets"] = _answer_cost(
                    loaded, prompts, clean_answers, _answers(prompts, lambda p: _greedy(loaded, p))
                )
        block = _method_block(k, find, s_all, s_after[v], cfg.n_boot, cfg.boot_seed, items, cost)
        block["components"] = [c.name for c in variant]
        curve.append(block)
        tick(v + 1, len(variants), "cost")
    best_i = min(range(len(curve)), key=lambda i: (curve[i]["find"]["after"], curve[i]["k"]))  # on find only
    best = curve[best_i]
    after_s = {"ablate_top_k": s_after[best_i]}
    correction: dict[str, Any] = {"ablate_top_k": {**best, "curve": curve}}
    seconds["ablation_correction_and_cost"] = time.perf_counter() - t0

    # Self-Debias
    t0 = time.perf_counter()
    if causal and cfg.self_debias:
        prefixes = [[debias_prefix(it.group)] for it in items]
        units = _units(items)
        vals = self_debias_values(loaded, units, prefixes + prefixes, cfg.lam, stop)
        s_sd = vals[: len(items)] - vals[len(items) :]
        after_s["self_debias"] = s_sd
        all_prefixes = sorted({debias_prefix(it.group) for it in items})
        nv = self_debias_values(loaded, neutral, [all_prefixes] * len(neutral), cfg.lam, stop)
        cost = neutral_cost(nv)
        cost["stereoset_lm"] = None
        if ss_units:
            notes.append("Self-Debias is not scored on StereoSet here: its LM-score cost is left empty.")
        if prompts:
            sd_answers = _answers(prompts, lambda p: _greedy_self_debias(loaded, p, all_prefixes, cfg.lam))
            cost["presets"] = _answer_cost(loaded, prompts, clean_answers, sd_answers)
        correction["self_debias"] = {
            **_method_block(None, find, s_all, s_sd, cfg.n_boot, cfg.boot_seed, items, cost),
            "lambda": cfg.lam,
        }
    else:
        correction["self_debias"] = None
        if not causal:
            notes.append("Self-Debias rescales next-token probabilities: it applies to causal LMs only.")
    seconds["self_debias"] = time.perf_counter() - t0

    # steering vector learned on the find half: mean(less stereotyping) - mean(more stereotyping)
    t0 = time.perf_counter()
    if causal:
        from llmviz.interventions.steering import steering, steering_vector

        layer = cfg.steer_layer if cfg.steer_layer is not None else anatomy(loaded.model).n_layers // 2
        vec = steering_vector(loaded, [it.text_b for it in find_items], [it.text_a for it in find_items], layer)
        with steering(loaded, vec.vector, layer, cfg.steer_alpha):
            s_st = scores(loaded, items, stop=stop)[0]
            after_s["steering"] = s_st
            nv = unit_values(loaded, neutral, stop=stop)[0]
            st_ss = unit_values(loaded, ss_units)[0] if ss_units else None
            st_answers = _answers(prompts, lambda p: _greedy(loaded, p))
        cost = neutral_cost(nv)
        cost["stereoset_lm"] = None if st_ss is None else {"before": lm_before, "after": lm_score(st_ss)}
        if prompts:
            cost["presets"] = _answer_cost(loaded, prompts, clean_answers, st_answers)
        correction["steering"] = {
            **_method_block(None, find, s_all, s_st, cfg.n_boot, cfg.boot_seed, items, cost),
            "layer": layer,
            "alpha": cfg.steer_alpha,
        }
    else:
        correction["steering"] = None
    seconds["steering"] = time.perf_counter() - t0
    tick(1, 1, "cost")
    return TraceResult(
        loaded.facts.model_id,
        benchmark,
        cfg,
        items,
        find,
        s_all,
        rows,
        screen,
        correction,
        moved,
        seconds,
        notes,
        after_s=after_s,
    )
