"""Where a benchmark's bias lives (issue 22): item scores equal the audit's, exact batched ablation equals a
one-at-a-time loop with a hand-written hook (mean over the items' positions), attribution patching equals the
exact effect where the model is linear in the component, Self-Debias equals the paper's formula written here,
and the split / bootstrap are reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from llmviz.bias import mechanism as mech
from llmviz.bias import scoring
from llmviz.bias.pairs import score_pairs
from llmviz.bias.pairs_data import STARTER_CSV
from llmviz.models.anatomy import anatomy
from llmviz.models.loading import load_model
from tests.fixtures import tiny
from tests.fixtures.tiny_gemma import build_tiny_gemma3
from tests.llmviz.interventions.test_interventions import _tiny_gpt2

FRAME = pd.read_csv(STARTER_CSV)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_mlm_dir):
    root = tmp_path_factory.mktemp("mech")
    return {
        "llama": load_model(str(tiny.build_tiny_llama(root / "llama")), source="path"),
        "gpt2": load_model(str(_tiny_gpt2(root / "gpt2")), source="path"),
        "gemma3": load_model(str(build_tiny_gemma3(root / "gemma")), source="path"),
        "bert": load_model(str(tiny_mlm_dir), source="path"),
    }


def _reference_S(loaded, items, comp=None, value=None):
    """S of each item, one row at a time, with a hand-written hook replacing ``comp``'s output by ``value``."""
    anat = anatomy(loaded.model)
    handles = []
    if comp is not None:
        dh = anat.head_dim
        if comp.kind == "head":

            def pre(_m, args):
                x = args[0].clone()
                x[..., comp.head * dh : (comp.head + 1) * dh] = value
                return (x,) + tuple(args[1:])

            handles.append(anat.o_proj(comp.layer).register_forward_pre_hook(pre))
        else:

            def post(_m, _a, out):
                y = out[0] if isinstance(out, tuple) else out
                y = torch.zeros_like(y) + value
                return (y,) + tuple(out[1:]) if isinstance(out, tuple) else y

            handles.append(anat.mlp(comp.layer).register_forward_hook(post))
    try:
        out = []
        for it in items:
            vals = []
            for unit in (it.a, it.b):
                lps = []
                for row, q in zip(unit.rows, unit.queries):
                    with torch.no_grad():
                        logits = loaded.model(input_ids=torch.tensor([row])).logits[0].double()
                    lp = torch.log_softmax(logits, -1)
                    lps += [float(lp[p, t]) for p, t in q]
                vals.append(sum(lps))
            out.append(vals[0] - vals[1])
        return np.array(out)
    finally:
        for h in handles:
            h.remove()


def _reference_means(loaded, items):
    """Mean of every W^O input and MLP output over all token positions of the items' rows (one row at a time)."""
    anat = anatomy(loaded.model)
    got = {}
    hs = []
    for layer in range(anat.n_layers):
        hs.append(
            anat.o_proj(layer).register_forward_pre_hook(
                lambda _m, a, layer=layer: got.setdefault(("h", layer), []).append(a[0][0].double())
            )
        )
        hs.append(
            anat.mlp(layer).register_forward_hook(
                lambda _m, _a, o, layer=layer: got.setdefault(("m", layer), []).append(
                    (o[0] if isinstance(o, tuple) else o)[0].double()
                )
            )
        )
    try:
        with torch.no_grad():
            for it in items:
                for unit in (it.a, it.b):
                    for row in unit.rows:
                        loaded.model(input_ids=torch.tensor([row]))
    finally:
        for h in hs:
            h.remove()
    return {k: torch.cat(v).mean(0) for k, v in got.items()}


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma3", "bert"])
def test_item_scores_are_the_audits(models, name):
    loaded = models[name]
    frame = FRAME.head(6)
    items = mech.items_from_pairs(loaded, frame)
    s = mech.scores(loaded, items)[0]
    ref = score_pairs(loaded, frame)
    assert s == pytest.approx(ref.diff, abs=1e-4)


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma3", "bert"])
def test_exact_batched_ablation_equals_a_one_at_a_time_loop(models, name):
    loaded = models[name]
    items = mech.items_from_pairs(loaded, FRAME.head(2 if name == "bert" else 3))  # bert: ~10 masked copies a sentence
    means = mech.site_means(loaded, mech._units(items))
    ref_means = _reference_means(loaded, items)
    anat = anatomy(loaded.model)
    for layer in range(anat.n_layers):  # the mean is over every item's positions, not one item's
        assert means.heads[layer] == pytest.approx(ref_means[("h", layer)].numpy(), abs=1e-5)
        assert means.mlp[layer] == pytest.approx(ref_means[("m", layer)].numpy(), abs=1e-5)
    one_item = mech.site_means(loaded, mech._units(items[:1]))
    assert not np.allclose(one_item.heads, means.heads)
    dh = anat.head_dim
    comps = [mech.Component("head", 0, 1), mech.Component("mlp", anat.n_layers - 1), mech.Component("head", 1, 0)]
    for mode, cs in (("mean", comps), ("zero", comps[:1])):
        s0, s_abl = mech.exact_effects(loaded, items, cs, means, mode, per_forward=2)
        assert s0 == pytest.approx(_reference_S(loaded, items), abs=1e-4)
        for c, got in zip(cs, s_abl):
            if mode == "zero":
                value = 0.0
            elif c.kind == "head":
                value = torch.as_tensor(means.heads[c.layer][c.head * dh : (c.head + 1) * dh])
            else:
                value = torch.as_tensor(means.mlp[c.layer])
            assert got == pytest.approx(_reference_S(loaded, items, c, value), abs=1e-4), (mode, c)


def test_attribution_patching_equals_the_exact_effect_where_the_model_is_linear_in_the_component(tmp_path):
    """Scale one head's and one MLP's output by 1e-3: removing them is then a first-order change, where
    AtP's estimate and the exact effect must agree (sign, positions and sums included)."""
    loaded = load_model(str(tiny.build_tiny_llama(tmp_path / "lin", seed=3)), source="path")
    loaded.model.double()  # exact effects of ~1e-5 need more than float32's digits
    anat = anatomy(loaded.model)
    dh, eps = anat.head_dim, 1e-3
    with torch.no_grad():
        anat.o_proj(1).weight[:, 2 * dh : 3 * dh] *= eps  # head 2 of layer 1 contributes eps x its output
        anat.mlp(0).down_proj.weight *= eps
    items = mech.items_from_pairs(loaded, FRAME.head(8))
    comps, per_item = mech.attribution_patching(loaded, items, None, "zero")
    targets = [mech.Component("head", 1, 2), mech.Component("mlp", 0)]
    s0, s_abl = mech.exact_effects(loaded, items, targets, None, "zero")
    for c, got in zip(targets, s_abl):
        exact = got - s0
        est = per_item[:, comps.index(c)]
        assert np.abs(exact).max() > 1e-6  # the component does something
        assert est == pytest.approx(exact, rel=2e-2, abs=1e-7)


def test_attribution_patching_tracks_exact_effects_on_a_tiny_model(models):
    loaded = models["llama"]
    items = mech.items_from_pairs(loaded, FRAME.head(10))
    means = mech.site_means(loaded, mech._units(items))
    comps, per_item = mech.attribution_patching(loaded, items, means, "mean")
    s0, s_abl = mech.exact_effects(loaded, items, comps, means, "mean")
    exact = (s_abl - s0[None, :]).mean(1)
    assert np.corrcoef(per_item.mean(0), exact)[0, 1] > 0.9


def test_self_debias_equals_the_papers_formula(models):
    loaded = models["llama"]
    items = mech.items_from_pairs(loaded, FRAME.head(2))
    prefixes = [[mech.debias_prefix(it.group)] for it in items]
    units = mech._units(items)
    got = mech.self_debias_values(loaded, units, prefixes + prefixes, lam=50.0)
    pre = scoring.prefix_token_id(loaded.tokenizer)
    expected = []
    for unit, (pfx,) in zip(units, prefixes + prefixes):
        (row,), (q,) = unit.rows, unit.queries
        p_ids = loaded.tokenizer(pfx + "\n", add_special_tokens=False)["input_ids"]
        deb = ([pre] if pre is not None else []) + p_ids + list(row[1 if pre is not None else 0 :])
        with torch.no_grad():
            pr = torch.softmax(loaded.model(input_ids=torch.tensor([row])).logits[0].double(), -1).numpy()
            pd_ = torch.softmax(loaded.model(input_ids=torch.tensor([deb])).logits[0].double(), -1).numpy()
        total = 0.0
        for pos, tgt in q:
            p, p_deb = pr[pos], pd_[pos + len(p_ids)]
            delta = p - p_deb
            alpha = np.where(delta >= 0, 1.0, np.exp(50.0 * delta))
            p_tilde = alpha * p / (alpha * p).sum()
            total += np.log(p_tilde[tgt])
        expected.append(total)
    assert got == pytest.approx(np.array(expected), abs=1e-6)
    plain = mech.unit_values(loaded, units)[0]
    assert np.abs(got - plain).max() > 1e-6  # the rescaling changed something


def test_split_and_bootstrap_are_reproducible_disjoint_and_stratified(models):
    items = mech.items_from_pairs(models["llama"], FRAME)
    a, b = mech.split_items(items, seed=7), mech.split_items(items, seed=7)
    assert np.array_equal(a, b) and not np.array_equal(a, mech.split_items(items, seed=8))
    find = {it.key for it, f in zip(items, a) if f}
    test = {it.key for it, f in zip(items, a) if not f}
    assert not find & test and len(find | test) == len(items)
    for g in {it.group for it in items}:
        n_f = sum(1 for it, f in zip(items, a) if f and it.group == g)
        n_t = sum(1 for it, f in zip(items, a) if not f and it.group == g)
        assert abs(n_f - n_t) <= 1, g
    before, after = np.array([1.0, -1, 1, 1, -1, 1]), np.array([-1.0, -1, 1, -1, -1, 1])
    ci = mech.paired_diff_ci(before, after, 500, 3)
    assert ci == mech.paired_diff_ci(before, after, 500, 3) and ci[0] <= -100 / 3 <= ci[1]


def test_trace_report_on_a_tiny_model(models):
    loaded = models["llama"]
    items = mech.items_from_pairs(loaded, FRAME.head(10))
    res = mech.trace(loaded, items, mech.TraceConfig(top_k=5, ks=(1, 2), n_boot=200, presets=False, n_neutral=6))
    doc = res.to_dict()
    effects = [c["effect"] for c in doc["components"]]
    assert len(effects) == 5 and effects == sorted(effects)
    assert all(c["ci95"][0] <= c["effect"] <= c["ci95"][1] for c in doc["components"])
    assert {i["split"] for i in doc["items"]} == {"find", "test"} and len(doc["items"]) == 10
    assert set(doc["correction"]) == {"ablate_top_k", "self_debias", "steering"}
    for block in doc["correction"].values():
        assert set(block["test"]) >= {"before", "after", "diff_ci95"} and "neutral_ll_per_token_change" in block["cost"]
        assert block["test"]["before"] == mech.bias_figure(res.s[~res.find])
    assert [b["k"] for b in doc["correction"]["ablate_top_k"]["curve"]] in ([1, 2], [1], [0])
    assert doc["screen"]["method"] == "atp" and doc["screen"]["pearson"] is not None


def test_bad_settings_say_what_to_do(models):
    loaded = models["llama"]
    items = mech.items_from_pairs(loaded, FRAME.head(6))
    with pytest.raises(mech.InputError, match="Ablation must be one of"):
        mech.trace(loaded, items, mech.TraceConfig(ablation="half"))
    with pytest.raises(mech.InputError, match="at least 4 items"):
        mech.trace(loaded, items[:3])
    with pytest.raises(mech.InputError, match="Top-k must be between 1 and"):
        mech.trace(loaded, items, mech.TraceConfig(top_k=10_000))


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_stereoset_item_scores_are_the_audits(models, name):
    """S = log score(stereotype) − log score(anti-stereotype), with the audit's own sentence scores."""
    from llmviz.bias import stereoset as SS

    loaded = models[name]
    data = SS.illustrative_set().head(3)
    items = mech.items_from_stereoset(loaded, data)
    got = mech.scores(loaded, items)[0]
    expected = []
    for ex in data.intrasentence:
        pair = [
            SS.SentenceItem(ex.split, ex.context, ex.by_label(x).sentence) for x in ("stereotype", "anti-stereotype")
        ]
        a, b = SS.score_items(loaded, pair)
        expected.append(np.log(a) - np.log(b))
    assert got == pytest.approx(np.array(expected), abs=1e-4)
