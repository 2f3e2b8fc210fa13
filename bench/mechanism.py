"""Where a benchmark's bias lives: timings of the trace (issue 22). Prints one JSON object.

200 CrowS-Pairs-format pairs (the starter pairs repeated), smollm2, all 270 heads + 30 MLPs:
- ``screen_s``: attribution patching of every component on the find half (one forward + backward per input);
- ``exact_top20_s``: the exact ablation of the screen's top 20 on the find half (batched variants);
- ``exact_all_s``: the brute-force sweep the screen replaces — every component ablated exactly — measured on 40
  pairs for 60 of the 300 components (every 5th) and scaled to 300 components and the 200 pairs' find half;
- ``speedup_screen_vs_exact``: ``exact_all_s / screen_s`` (goal ≥ 20);
- ``trace_s``: the whole trace of the 200 pairs (screen, exact top 20, correction k ∈ {1,2,4,8} with its costs,
  Self-Debias, steering; goal ≤ 600 s);
- ``starter``: the trace on the 72 starter pairs as they are: top 5 components (effect, CI), the screen's
  correlation with the exact effects, and the three corrections' find/test figures;
- ``load_avg`` (1-minute load average at start and end).
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> dict:
    import pandas as pd

    from llmviz.bias import mechanism as mech
    from llmviz.bias.pairs_data import starter_pairs
    from llmviz.models.loading import load_model

    load0 = os.getloadavg()[0]
    loaded = load_model("smollm2")
    frame = starter_pairs().frame
    big = pd.concat([frame] * 3, ignore_index=True).head(200)
    items = mech.items_from_pairs(loaded, big)
    find = mech.split_items(items, 0)
    find_items = [it for it, f in zip(items, find) if f]
    means = mech.site_means(loaded, mech._units(find_items))
    out: dict = {"n_pairs": len(items), "n_find": len(find_items)}

    t0 = time.perf_counter()
    comps, per_item = mech.attribution_patching(loaded, find_items, means, "mean")
    out["screen_s"] = time.perf_counter() - t0
    est = per_item.mean(0)
    top = [comps[i] for i in sorted(range(len(comps)), key=lambda i: -abs(est[i]))[:20]]
    base = mech.scores(loaded, find_items, means=means)[0]
    t0 = time.perf_counter()
    mech.exact_effects(loaded, find_items, top, means, "mean", base=base)
    out["exact_top20_s"] = time.perf_counter() - t0

    small = find_items[:20]  # the find half of 40 pairs
    sample = comps[::5]
    sbase = mech.scores(loaded, small, means=means)[0]
    t0 = time.perf_counter()
    mech.exact_effects(loaded, small, sample, means, "mean", base=sbase)
    sweep = time.perf_counter() - t0
    out["exact_all_s"] = sweep * (len(comps) / len(sample)) * (len(find_items) / len(small))
    out["speedup_screen_vs_exact"] = out["exact_all_s"] / out["screen_s"]

    t0 = time.perf_counter()
    mech.trace(loaded, items, mech.TraceConfig())
    out["trace_s"] = time.perf_counter() - t0

    starter = mech.items_from_pairs(loaded, frame)
    res = mech.trace(loaded, starter, mech.TraceConfig())
    out["starter"] = {
        "n_pairs": len(starter),
        "bias_figure": mech.bias_figure(res.s),
        "top5": [
            {"component": r["name"], "effect": r["effect"], "ci95": r["ci95"], "screen_estimate": r["screen_estimate"]}
            for r in res.components[:5]
        ],
        "screen_pearson_top20": res.screen["pearson"],
        "screen_spearman_top20": res.screen["spearman"],
        "correction": {
            k: None
            if b is None
            else {
                "k": b.get("k"),
                "find": b["find"],
                "test": {x: b["test"][x] for x in ("before", "after", "diff_ci95")},
                "neutral_ll_per_token_change": b["cost"]["neutral_ll_per_token_change"],
                "presets_same": (b["cost"].get("presets") or {}).get("same_answers"),
            }
            for k, b in res.correction.items()
        },
        "seconds": res.seconds,
    }
    out["load_avg"] = [load0, os.getloadavg()[0]]
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
