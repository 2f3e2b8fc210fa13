"""Activation patching (causal tracing): run the corrupted prompt, paste one activation from the clean
run into it, and see how much of the clean behaviour comes back.

Metric: ``m`` = logit(correct) − logit(incorrect) at the answer position (next token for causal LMs,
the ``[MASK]`` position for masked LMs), or the similarity score for encoders. It is normalised so the
corrupted run is 0 and the clean run is 1: ``(m_patched − m_corrupt) / (m_clean − m_corrupt)``.

Batched: every row of a batch is the corrupted input with its own site patched (row ``b`` carries its
own mask in every hook), as the head-ablation sweep does; a sweep of ``N`` sites takes ``N / batch``
forward passes.

Shared prefix: the layers before a chunk's first patched layer see the corrupted input in every row, so they
run once at batch 1 and the hidden state is copied to the chunk's rows where that layer starts (a sweep over
all layers then costs about half the full-batch passes; the values agree with the full batch to float32
rounding, tests/llmviz/interventions compare the two).

Shared suffix (causal LMs, next-token metric): a site at position ``p`` leaves positions ``< p`` as they are
in the corrupted run at every layer (causal attention), and a site at layer ``l`` leaves layers ``< l`` as
they are. So sites are grouped by ``p`` and sorted by layer; a group runs only positions ``p..T-1``, attending
to the corrupted run's cached keys and values of positions ``< p``, and each row joins the batch at its own
layer with the corrupted residual stream of that layer (the batch grows layer by layer). A sweep over all
layers and positions then does about a quarter of the full work; values agree with the full batch to float32
rounding (tests compare them on Llama, GPT-2 and Gemma 3 layouts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from llmviz.attention.extract import encode
from llmviz.errors import InputError
from llmviz.explain.targets import (
    KIND_FOR_MODEL,
    MASKED_TOKEN,
    SIMILARITY,
    Problem,
    Target,
    build_problem,
    mask_text,
    resolve_token,
)
from llmviz.interventions.sites import (
    ATTN,
    HEAD,
    MLP,
    RESID,
    SITE_KINDS,
    Modules,
    Site,
    first_tensor,
    modules_of,
    replace_first,
    require_positional_input,
)
from llmviz.models.anatomy import cache_keyword
from llmviz.models.hooks import scoped_hooks
from llmviz.models.loading import CAUSAL_LM, LoadedModel
from llmviz.precision import BF16, EXACT, check_mode, max_deviation, on_precision
from llmviz.tokens import display_token

MAX_PATCH_TOKENS = 48  # prompts are cut to this many tokens (special tokens included)
DEFAULT_BATCH = 32
MIN_GAP = 1e-6  # |m_clean − m_corrupt| below this: nothing to normalise by


@dataclass
class PatchSetup:
    """A clean/corrupted pair ready to patch. ``forward(embeds [B, T, D]) -> (metric [B], logits [B, V] | None)``
    runs the model (with whatever hooks are active). ``clean_acts``: site kind -> per-layer clean activation
    (``[T, D]``, heads: ``[T, H * head_dim]``)."""

    loaded: LoadedModel
    kind: str
    clean: Problem
    corrupt: Problem
    forward: Callable[[Any], tuple[Any, Any]]
    modules: Modules
    correct_id: int | None
    wrong_id: int | None
    label: str
    m_clean: float
    m_corrupt: float
    clean_acts: dict[str, list] = field(default_factory=dict)
    suffix: Any = field(default=None, repr=False)  # _SuffixState once a causal sweep needed it (lazy)
    fast: Any = field(default=None, repr=False)  # this setup on the bf16 twin, once a bf16 sweep ran (lazy)

    @property
    def tokens_clean(self) -> list[str]:
        return self.clean.tokens

    @property
    def tokens_corrupt(self) -> list[str]:
        return self.corrupt.tokens

    @property
    def n_tokens(self) -> int:
        return self.clean.n_tokens

    @property
    def diff_positions(self) -> list[int]:
        return [i for i, (a, b) in enumerate(zip(self.clean.token_ids, self.corrupt.token_ids)) if a != b]

    def normalise(self, m):
        return (np.asarray(m, dtype=np.float64) - self.m_corrupt) / (self.m_clean - self.m_corrupt)

    def params(self) -> dict[str, Any]:
        return {
            "clean": self.clean.text,
            "corrupt": self.corrupt.text,
            "target_kind": self.kind,
            "metric": self.label,
            "m_clean": self.m_clean,
            "m_corrupt": self.m_corrupt,
            "n_tokens": self.n_tokens,
            "diff_positions": self.diff_positions,
            "max_tokens": MAX_PATCH_TOKENS,
            "truncated": self.clean.truncated or self.corrupt.truncated,
        }


def replace_word(text: str, word: str, replacement: str) -> str:
    """``text`` with whole-word occurrences of ``word`` replaced (the "corrupt by replacing X with Y" helper)."""
    import re

    if not word or not word.strip():
        raise InputError("Type the word to replace.")
    pattern = re.compile(rf"(?<!\w){re.escape(word.strip())}(?!\w)")
    if not pattern.search(text):
        raise InputError(f"'{word.strip()}' does not occur as a word in the clean prompt.")
    return pattern.sub(replacement.strip(), text)


def _forward_fn(loaded: LoadedModel, kind: str, problem: Problem, correct_id, wrong_id):
    import torch

    model = loaded.model
    ids = torch.tensor([problem.token_ids], device=problem.embeds.device)
    attn = torch.ones_like(ids)
    if kind == SIMILARITY:

        def similarity(e):
            return problem.score(e), None

        return similarity

    def run(e):  # [B, T, D] -> ([B], [B, V])
        mask = attn.expand(e.shape[0], -1)
        e = e.to(model.dtype)  # the model's dtype (the bf16 twin keeps float32 activations)
        if loaded.facts.kind == CAUSAL_LM:
            logits = model(inputs_embeds=e, attention_mask=mask, use_cache=False, logits_to_keep=1).logits[:, -1]
        else:
            logits = model(inputs_embeds=e, attention_mask=mask).logits[:, problem.position]
        logits = logits.float()
        return logits[:, correct_id] - logits[:, wrong_id], logits

    return run


def prepare(
    loaded: LoadedModel,
    clean: str,
    corrupt: str,
    kind: str | None = None,
    correct: str | None = None,
    wrong: str | None = None,
    text_b: str | None = None,
    correct_id: int | None = None,
    wrong_id: int | None = None,
    max_tokens: int = MAX_PATCH_TOKENS,
) -> PatchSetup:
    """Tokenise both prompts, check they have the same length, resolve the answer tokens (default: the
    clean top prediction vs the corrupted top prediction) and record the clean activations."""
    import torch

    kind = kind or KIND_FOR_MODEL[loaded.facts.kind][0]
    target = Target(kind=kind, text_b=text_b)
    p_clean = build_problem(loaded, clean, target, max_tokens)
    p_corrupt = build_problem(loaded, corrupt, target, max_tokens)
    if p_clean.n_tokens != p_corrupt.n_tokens:
        raise InputError(
            f"The clean prompt has {p_clean.n_tokens} tokens and the corrupted one "
            f"{p_corrupt.n_tokens}; patching needs the same number. Compare the tokenizations "
            "below and change words that split into a different number of pieces."
        )
    if p_clean.token_ids == p_corrupt.token_ids:
        raise InputError("The clean and corrupted prompts are the same tokens; change at least one word.")
    if kind == MASKED_TOKEN and p_clean.position != p_corrupt.position:
        raise InputError("The [MASK] must be at the same position in both prompts.")
    label = "cos(A, B)"
    if kind != SIMILARITY:
        if correct_id is None:
            correct_id = resolve_token(loaded, correct, clean)[0] if correct else p_clean.target_id
        if wrong_id is None and wrong:
            wrong_id = resolve_token(loaded, wrong, corrupt)[0]
        elif wrong_id is None:  # the corrupted top prediction; its runner-up when both prompts agree
            with torch.inference_mode():
                logits = _forward_fn(loaded, kind, p_corrupt, 0, 0)(p_corrupt.embeds[None])[1][0]
                logits[correct_id] = -float("inf")
            wrong_id = int(logits.argmax())
        if correct_id == wrong_id:
            raise InputError(
                f"The correct and incorrect answers are the same token "
                f"('{display_token(loaded.tokenizer, correct_id)}'): the corrupted prompt predicts "
                "the same top token. Type the two answer tokens."
            )
        tok = loaded.tokenizer
        label = f"logit('{display_token(tok, correct_id)}') − logit('{display_token(tok, wrong_id)}')"
    modules = modules_of(loaded.model, loaded.facts.n_heads)
    fwd_clean = _forward_fn(loaded, kind, p_clean, correct_id, wrong_id)
    fwd = _forward_fn(loaded, kind, p_corrupt, correct_id, wrong_id)
    acts = capture(modules, lambda: fwd_clean(p_clean.embeds[None]))
    with torch.inference_mode():
        m_clean = float(fwd_clean(p_clean.embeds[None])[0][0])
        m_corrupt = float(fwd(p_corrupt.embeds[None])[0][0])
    if abs(m_clean - m_corrupt) < MIN_GAP:
        raise InputError(
            f"The metric is the same for both prompts ({m_clean:.4f}), so there is nothing to "
            "restore. Choose prompts or answer tokens that the model treats differently."
        )
    return PatchSetup(
        loaded, kind, p_clean, p_corrupt, fwd, modules, correct_id, wrong_id, label, m_clean, m_corrupt, acts
    )


def capture(modules: Modules, run: Callable[[], Any]) -> dict[str, list]:
    """Every site's activation (batch row 0) during ``run()``: kind -> per-layer tensor."""
    import torch

    n = len(modules.layers)
    acts: dict[str, list] = {k: [None] * n for k in SITE_KINDS}

    def pre(kind, layer):
        def hook(_m, args):
            require_positional_input(kind, args)
            acts[kind][layer] = args[0][0].detach().clone()

        return hook

    def post(kind, layer):
        def hook(_m, _args, output):
            acts[kind][layer] = first_tensor(output)[0].detach().clone()

        return hook

    pres = [(modules.layers[i], pre(RESID, i)) for i in range(n)] + [
        (modules.out_proj[i], pre(HEAD, i)) for i in range(n)
    ]
    posts = [(modules.out_proj[i], post(ATTN, i)) for i in range(n)] + [
        (modules.mlp[i], post(MLP, i)) for i in range(n)
    ]
    with scoped_hooks(pre=pres, post=posts), torch.inference_mode():
        run()
    return acts


def _patch_hooks(setup: PatchSetup, chunk: Sequence[Site]):
    """Pre- and post-hooks that patch row ``b`` at ``chunk[b]`` with the clean activation."""
    import torch

    T, H = setup.n_tokens, setup.modules.n_heads
    dev = setup.clean.embeds.device
    masks: dict[tuple[str, int], Any] = {}
    for row, site in enumerate(chunk):
        if site.kind == HEAD:
            m = masks.setdefault((HEAD, site.layer), torch.zeros(len(chunk), H, dtype=torch.bool, device=dev))
            m[row, site.index] = True
        else:
            m = masks.setdefault((site.kind, site.layer), torch.zeros(len(chunk), T, dtype=torch.bool, device=dev))
            if site.index is None:
                m[row] = True
            else:
                m[row, site.index] = True

    def patched(kind, layer, x):
        clean = setup.clean_acts[kind][layer].to(x.dtype)
        mask = masks[(kind, layer)]
        if kind == HEAD:  # x: [B, T, H * hd], heads concatenated head-major
            b, t, width = x.shape
            xv, cv = x.view(b, t, H, width // H), clean.view(t, H, width // H)
            return torch.where(mask[:, None, :, None], cv[None], xv).reshape(b, t, width)
        return torch.where(mask[:, :, None], clean[None], x)  # x: [B, T, D]

    return _site_hooks(setup.modules, list(masks), patched)


def _site_hooks(mods: Modules, where: Sequence[tuple[str, int]], patched: Callable):
    """(pre-hooks, post-hooks) applying ``patched(kind, layer, x)`` at each (kind, layer) of ``where``: to a
    module's input for resid and head sites, to its output for attn and mlp sites."""

    def pre(kind, layer):
        def hook(_m, args):
            require_positional_input(kind, args)
            return (patched(kind, layer, args[0]), *args[1:])

        return hook

    def post(kind, layer):
        def hook(_m, _args, output):
            return replace_first(output, patched(kind, layer, first_tensor(output)))

        return hook

    pres = [(mods.module(k, l), pre(k, l)) for (k, l) in where if Modules.is_pre(k)]
    posts = [(mods.module(k, l), post(k, l)) for (k, l) in where if not Modules.is_pre(k)]
    return pres, posts


def _widen_at(n_rows: int):
    """A pre-hook that copies a batch-1 hidden state ``[1, T, D]`` to ``n_rows`` rows (the shared prefix ends)."""

    def hook(_m, args):
        require_positional_input(RESID, args)
        return (args[0].expand(n_rows, -1, -1).contiguous(), *args[1:])

    return hook


def run_sites(
    setup: PatchSetup,
    sites: Sequence[Site],
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    keep_logits: bool = False,
    share_prefix: bool = True,
    precision: str = EXACT,
) -> tuple[np.ndarray, list]:
    """Raw metric ``[len(sites)]`` of the corrupted run with each site patched (NaN where stopped);
    optionally each row's logits. ``progress(done, total, values)`` after each batch, ``values`` the raw metric
    so far (NaN where not yet run; the same array, filled in place). ``precision="bf16"``: on the model's
    bf16 twin (:func:`llmviz.precision.bf16_twin`: linear layers multiply in bfloat16, the rest is float32).
    ``share_prefix``: run only what a site can
    change (the shared prefix and, for causal LMs, the shared suffix; see the module doc); ``False`` is the
    plain full-batch reference. ``precision``: a mode of :mod:`llmviz.precision` (exact float32 by default)."""
    import torch

    merge = precision == BF16
    if merge:  # the same sweep on the model's bf16 twin (weights cast once), twice the rows per pass
        check_mode(precision)
        setup, precision, batch_size = _bf16_setup(setup), EXACT, 2 * max(1, batch_size)
    out = np.full(len(sites), np.nan)
    logits_out: list = [None] * len(sites)
    suffix = share_prefix and _suffix_state(setup) is not None
    with torch.inference_mode():  # bf16: the twin above multiplies in bfloat16 by itself
        for idx in _chunks(sites, batch_size, suffix, merge):
            if stop is not None and stop():
                break
            chunk = [sites[i] for i in idx]
            m, logits = _run_suffix(setup, chunk) if suffix else _run_chunk(setup, chunk, share_prefix)
            out[idx] = m.double().cpu().numpy()
            if keep_logits and logits is not None:
                for j, i in enumerate(idx):
                    logits_out[i] = logits[j].cpu()
            if progress:  # the values so far (NaN where not yet run): pages draw the heatmap as it fills
                progress(int(np.sum(~np.isnan(out))), len(sites), out)
    return out, [x for x in logits_out if x is not None]


def _bf16_setup(setup: PatchSetup) -> PatchSetup:
    """``setup`` prepared again on the model's bf16 twin (:func:`llmviz.precision.bf16_twin`): the same
    prompts and answer tokens; kept on the setup."""
    if setup.fast is None:
        twin = on_precision(setup.loaded, BF16)
        setup.fast = prepare(
            twin,
            setup.clean.text,
            setup.corrupt.text,
            kind=setup.kind,
            text_b=getattr(setup.clean.target, "text_b", None),
            correct_id=setup.correct_id,
            wrong_id=setup.wrong_id,
            max_tokens=max(setup.n_tokens, MAX_PATCH_TOKENS),
        )
    return setup.fast


def _chunks(sites: Sequence[Site], batch_size: int, suffix: bool, merge: bool = False) -> list[list[int]]:
    """Indices of ``sites`` per forward pass: in order (``batch_size`` each); with the shared suffix, grouped by
    the first position a site changes and sorted by layer within a group. ``merge`` (the bf16 twin, whose
    matrix products need many rows to be fast): consecutive positions share a pass of ``batch_size`` rows, which
    then runs from the smallest of them (the others' earlier positions are recomputed as the corrupted run)."""
    size = max(1, batch_size)
    if not suffix:
        return [list(range(i, min(i + size, len(sites)))) for i in range(0, len(sites), size)]
    if merge:
        order = sorted(range(len(sites)), key=lambda i: (_first_position(sites[i]), sites[i].layer))
        return [sorted(order[i : i + size], key=lambda j: sites[j].layer) for i in range(0, len(order), size)]
    groups: dict[int, list[int]] = {}
    for i, site in enumerate(sites):
        groups.setdefault(_first_position(site), []).append(i)
    out = []
    for p in sorted(groups):
        idx = sorted(groups[p], key=lambda i: sites[i].layer)
        out += [idx[i : i + size] for i in range(0, len(idx), size)]
    return out


def _first_position(site: Site) -> int:
    """The first position a site changes (heads and whole-stream sites: all positions)."""
    return 0 if site.kind == HEAD or site.index is None else int(site.index)


def _run_chunk(setup: PatchSetup, chunk: list[Site], share_prefix: bool):
    """Every row the whole corrupted prompt, patched at its site (the prefix before the chunk's first layer
    run once at batch 1 when ``share_prefix``)."""
    pres, posts = _patch_hooks(setup, chunk)
    x = setup.corrupt.embeds[None]  # [1, T, D]
    if share_prefix:  # registered first: it runs before a resid patch on the same layer
        pres = [(setup.modules.layers[min(site.layer for site in chunk)], _widen_at(len(chunk))), *pres]
    else:
        x = x.expand(len(chunk), -1, -1)
    with scoped_hooks(pre=pres, post=posts):
        return setup.forward(x)


@dataclass
class _SuffixState:
    """The corrupted run as the shared suffix needs it: the residual stream entering each layer ``[T, D]``,
    each layer's cached keys and values ``[1, kv_heads, T, head_dim]`` and the forward's cache keyword."""

    resid: list
    keys: list
    values: list
    cache_kw: str


def _suffix_state(setup: PatchSetup) -> _SuffixState | None:
    """The corrupted run's state for the shared suffix (computed once per setup), or None where it does not
    apply: not a causal LM with a next-token metric, or a model whose cache does not hold every position."""
    import torch

    if setup.suffix is not None:
        return setup.suffix or None
    setup.suffix = False
    model = setup.loaded.model
    if setup.loaded.facts.kind != CAUSAL_LM or setup.kind in (SIMILARITY, MASKED_TOKEN):
        return None
    try:
        from transformers import DynamicCache
    except ImportError:  # pragma: no cover - transformers always has it
        return None
    cache_kw = cache_keyword(model)
    if cache_kw is None:
        return None
    cache = DynamicCache()  # no config: every layer keeps every position (sliding windows are masked instead)
    T, L = setup.n_tokens, len(setup.modules.layers)

    def run():
        e = setup.corrupt.embeds[None].to(model.dtype)
        model(inputs_embeds=e, use_cache=True, logits_to_keep=1, **{cache_kw: cache})

    try:
        acts = capture(setup.modules, run)
        layers = list(getattr(cache, "layers", []))
    except Exception:  # a model that cannot run with a cache this way: the prefix path
        return None
    if len(layers) != L or any(getattr(x, "keys", None) is None or x.keys.shape[-2] != T for x in layers):
        return None
    with torch.inference_mode():
        keys = [x.keys.detach().clone() for x in layers]
        values = [x.values.detach().clone() for x in layers]
    setup.suffix = _SuffixState(acts[RESID], keys, values, cache_kw)
    return setup.suffix


def _run_suffix(setup: PatchSetup, chunk: list[Site]):
    """One pass of the shared suffix (sites sorted by layer; ``p`` the first position any of them changes):
    positions ``p..T-1`` only, attending to the corrupted keys/values before ``p``; each row joins at its
    layer (a site at a later position recomputes the positions before it as the corrupted run)."""
    import torch
    from transformers import DynamicCache

    state: _SuffixState = setup.suffix
    p = min(_first_position(site) for site in chunk)  # positions before p: the corrupted run's cache
    L = len(setup.modules.layers)
    joins: dict[int, list[tuple[int, Site]]] = {}
    for row, site in enumerate(chunk):
        joins.setdefault(site.layer, []).append((row, site))
    first = chunk[0].layer
    cache = DynamicCache()
    active = 1  # layers before the first join carry one corrupted row (its values are not used)
    for layer in range(L):
        if layer in joins:
            active = (0 if layer == first else active) + len(joins[layer])
        k, v = state.keys[layer][:, :, :p], state.values[layer][:, :, :p]
        cache.update(k.expand(active, -1, -1, -1), v.expand(active, -1, -1, -1), layer)

    def join(layer):
        rows = joins[layer]

        def hook(_m, args):
            require_positional_input(RESID, args)
            new = state.resid[layer][p:].to(args[0].dtype).expand(len(rows), -1, -1).clone()
            for j, (_row, site) in enumerate(rows):
                if site.kind == RESID:
                    clean = setup.clean_acts[RESID][layer][p:].to(new.dtype)
                    if site.index is None:
                        new[j] = clean
                    else:
                        new[j, site.index - p] = clean[site.index - p]
            x = new if layer == first else torch.cat([args[0], new])
            return (x, *args[1:])

        return hook

    def patch(kind, layer, x):  # rows of this layer's joiners: the last ones of the batch
        rows = [site for _row, site in joins[layer] if site.kind == kind]
        if not rows:
            return x
        clean = setup.clean_acts[kind][layer][p:].to(x.dtype)
        x = x.clone()
        start = x.shape[0] - len(joins[layer])
        H = setup.modules.n_heads
        for j, (_row, site) in enumerate(joins[layer]):
            if site.kind != kind:
                continue
            if kind == HEAD:
                b, width = start + j, x.shape[-1] // H
                x[b, :, site.index * width : (site.index + 1) * width] = clean[
                    :, site.index * width : (site.index + 1) * width
                ]
            elif site.index is None:
                x[start + j] = clean
            else:
                x[start + j, site.index - p] = clean[site.index - p]
        return x

    mods = setup.modules
    where = sorted({(site.kind, layer) for layer, rows in joins.items() for _row, site in rows if site.kind != RESID})
    pres, posts = _site_hooks(mods, where, patch)  # resid sites are patched where their row joins
    pres = [(mods.layers[layer], join(layer)) for layer in joins] + pres
    e = setup.corrupt.embeds[None, p:].to(setup.loaded.model.dtype)
    with scoped_hooks(pre=pres, post=posts):
        out = setup.loaded.model(inputs_embeds=e, use_cache=True, logits_to_keep=1, **{state.cache_kw: cache})
    logits = out.logits[:, -1].float()
    return logits[:, setup.correct_id] - logits[:, setup.wrong_id], logits


def sites_work(setup: PatchSetup, sites: Sequence[Site], batch_size: int = DEFAULT_BATCH, precision: str = EXACT):
    """The work :func:`run_sites` does for ``sites`` (an :class:`llmviz.estimate.Work`): one call per batch and,
    in full-forward token units, each layer's rows × positions summed over layers / the layer count, as the
    batches are actually formed (the shared prefix and suffix included)."""
    from llmviz.estimate import Work

    L, T = len(setup.modules.layers), setup.n_tokens
    suffix, merge = _suffix_state(setup) is not None, precision == BF16
    chunks = _chunks(sites, 2 * max(1, batch_size) if merge else batch_size, suffix, merge)
    tokens = 0.0
    for idx in chunks:
        chunk = [sites[i] for i in idx]
        if suffix:
            p, first, active, per_layer = min(map(_first_position, chunk)), chunk[0].layer, 1, []
            joins = [site.layer for site in chunk]
            for layer in range(L):
                n = joins.count(layer)
                if n:
                    active = (0 if layer == first else active) + n
                per_layer.append(active)
            tokens += sum(per_layer) * (T - p) / L
        else:
            lo = min(site.layer for site in chunk)
            tokens += (lo + (L - lo) * len(chunk)) * T / L
    return Work(len(chunks), tokens)


def sweep_work(setup: PatchSetup, kinds: Sequence[str], batch_size: int = DEFAULT_BATCH, precision: str = EXACT):
    """The work of :func:`patching_sweep` (the whole-residual checks, the null run, the sites and, in ``bf16``,
    the first batch again in float32), for the estimate on the page's button."""
    from llmviz.estimate import Work

    L, T, H = len(setup.modules.layers), setup.n_tokens, setup.modules.n_heads
    sites = sweep_sites(L, T, H, kinds)
    work = sites_work(setup, [Site(RESID, layer, None) for layer in range(L)], batch_size) + Work(1, T)
    work += sites_work(setup, sites, batch_size, precision)
    if precision == BF16 and sites:
        work += sites_work(setup, sites[: max(1, batch_size)], batch_size)
    return work


def n_passes(setup: PatchSetup, kinds: Sequence[str], batch_size: int = DEFAULT_BATCH) -> int:
    """Forward passes a sweep of ``kinds`` makes for its sites (as the batches are formed)."""
    L, T, H = len(setup.modules.layers), setup.n_tokens, setup.modules.n_heads
    return len(_chunks(sweep_sites(L, T, H, kinds), batch_size, _suffix_state(setup) is not None))


def sweep_sites(n_layers: int, n_tokens: int, n_heads: int, kinds: Sequence[str]) -> list[Site]:
    sites = []
    for kind in kinds:
        if kind not in SITE_KINDS:
            raise InputError(f"Unknown site kind '{kind}'; choose from {', '.join(SITE_KINDS)}.")
        n = n_heads if kind == HEAD else n_tokens
        sites += [Site(kind, layer, i) for layer in range(n_layers) for i in range(n)]
    return sites


@dataclass
class PatchResult:
    """``scores``: kind -> normalised metric, ``[L, T]`` for position kinds, ``[L, H]`` for heads
    (NaN where the sweep was stopped). ``full_resid``: ``[L]`` normalised metric with the whole residual
    stream patched at each layer; ``null``: patching nothing (should be 0)."""

    setup_params: dict[str, Any]
    tokens_clean: list[str]
    tokens_corrupt: list[str]
    diff_positions: list[int]
    scores: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    full_resid: np.ndarray
    null: float
    seconds: float
    batch_size: int
    n_sites: int
    stopped: bool = False
    precision: str = EXACT
    deviation: float | None = None  # bf16: max |Δ raw metric| against float32 on the first batch of sites

    def params(self) -> dict[str, Any]:
        return {
            **self.setup_params,
            "batch_size": self.batch_size,
            "n_sites": self.n_sites,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "precision": self.precision,
            "deviation": self.deviation,
        }

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for kind, arr in self.scores.items():
            for layer in range(arr.shape[0]):
                for i in range(arr.shape[1]):
                    row = {
                        "site": kind,
                        "layer": layer,
                        "normalised": float(arr[layer, i]),
                        "raw_metric": float(self.raw[kind][layer, i]),
                    }
                    if kind == HEAD:
                        row["head"] = i
                    else:
                        row["position"] = i
                        row["clean_token"], row["corrupt_token"] = self.tokens_clean[i], self.tokens_corrupt[i]
                    out.append(row)
        return out


def patching_sweep(
    setup: PatchSetup,
    kinds: Sequence[str] = (RESID, ATTN, MLP, HEAD),
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    precision: str = EXACT,
) -> PatchResult:
    """Patch every site of ``kinds`` in turn (batched), plus the full-residual checks and a null row.
    ``precision="bf16"``: the sweep on the model's bf16 twin; its first batch also runs in float32 and the
    largest difference of the raw metric is kept as ``deviation``. The checks and the null row stay exact."""
    L, T, H = len(setup.modules.layers), setup.n_tokens, setup.modules.n_heads
    sites = sweep_sites(L, T, H, kinds)
    checks = [Site(RESID, layer, None) for layer in range(L)]
    t0 = time.perf_counter()
    raw_checks, _ = run_sites(setup, checks, batch_size)
    null = float(setup.normalise(run_null(setup)))
    raw, _ = run_sites(setup, sites, batch_size, progress, stop, precision=precision)
    deviation = None
    if precision == BF16 and not np.isnan(raw[0]):
        first = sites[: max(1, batch_size)]
        deviation = max_deviation(raw[: len(first)], run_sites(setup, first, batch_size)[0])
    scores, raws, at = {}, {}, 0
    for kind in kinds:
        n = H if kind == HEAD else T
        raws[kind] = raw[at : at + L * n].reshape(L, n)
        scores[kind] = setup.normalise(raws[kind])
        at += L * n
    return PatchResult(
        setup.params(),
        setup.tokens_clean,
        setup.tokens_corrupt,
        setup.diff_positions,
        scores,
        raws,
        setup.normalise(raw_checks),
        null,
        time.perf_counter() - t0,
        batch_size,
        len(sites),
        stopped=bool(np.isnan(raw).any()),
        precision=precision,
        deviation=deviation,
    )


def run_null(setup: PatchSetup) -> float:
    """The metric with patch hooks registered at every layer but no row patched (should equal m_corrupt)."""
    import torch

    mods = setup.modules

    def keep(_m, args):
        return None

    with (
        scoped_hooks(pre=[(m, keep) for m in mods.layers], post=[(m, lambda *_: None) for m in mods.mlp]),
        torch.inference_mode(),
    ):
        m, _ = setup.forward(setup.corrupt.embeds[None])
    return float(m[0])


def patched_predictions(setup: PatchSetup, site: Site, k: int = 10) -> tuple[float, list[tuple[str, float]]]:
    """Normalised metric of one patched run and its top ``k`` predictions (empty for similarity targets)."""
    import torch

    raw, logits = run_sites(setup, [site], 1, keep_logits=True)
    if not logits:
        return float(setup.normalise(raw[0])), []
    probs = torch.softmax(logits[0].float(), -1)
    p, i = probs.topk(k)
    tok = setup.loaded.tokenizer
    return float(setup.normalise(raw[0])), [(display_token(tok, int(t)), float(v)) for v, t in zip(p, i)]


def pair_tokens(
    loaded: LoadedModel, clean: str, corrupt: str, kind: str | None = None, max_tokens: int = MAX_PATCH_TOKENS
) -> tuple[list[str], list[str]]:
    """The two tokenizations (as the model sees them), without running the model, for the side-by-side view."""
    out = []
    for text in (clean, corrupt):
        if text is None or not str(text).strip():
            raise InputError("Both prompts are needed: type the clean and the corrupted prompt.")
        text = mask_text(loaded, str(text)) if kind == MASKED_TOKEN else str(text)
        enc = encode(loaded, text, None, max_tokens)[0]
        out.append([display_token(loaded.tokenizer, int(i)) for i in enc["input_ids"][0].tolist()])
    return out[0], out[1]
