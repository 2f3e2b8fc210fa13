"""Results as they come (issue 27): what drawing partial results costs, on smollm2. Prints one JSON object.

For each long action a page draws as it goes — the patching sweep (residual stream and heads of a 16-token pair:
30 × 16 + 30 × 9 sites, 32 per batch), head ablation (30 × 9 heads + 30 layers), four attribution methods (IG
with 32 steps), CrowS-Pairs (the 72 starter pairs twice, causal log-likelihood) and StereoSet (the
illustrative examples four times: 56 examples) — the run is timed with the page's progress bar only and with the
page's live drawing as well (ui.jobs.run_on_click's callback: the Throttle, the copy kept for Stop, and the
page's own partial figure or table built and marshalled by Streamlit, here in bare mode, where only the sending
to a browser is skipped), interleaved, best of REPEATS:

- ``stream_overhead_<action>``: best time with drawing / best time without − 1 (≤ 0.05 expected; on a shared
  machine differences of a few percent are noise, hence the next figure);
- ``stream_draw_share_<action>``: seconds spent inside the draws / seconds of that run (the same cost measured
  directly);
- ``stream_draws_<action>``: partial draws made, ``stream_seconds_<action>``: the run without drawing;
- ``load_avg_start`` / ``load_avg``: /proc/loadavg before and after.
"""

import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.disable(logging.WARNING)  # Streamlit in bare mode warns at every call

REPEATS = 3
CLEAN = "When Mary and John went to the store, John gave a drink to the girl whose name was"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to the girl whose name was"
N_TOKENS = 16
EXPLAIN_TEXT = "The doctor told the nurse that the results of the test were"


def load_avg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _cut(loaded, text: str) -> str:
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"][:N_TOKENS]
    return loaded.tokenizer.decode(ids)


def _stereoset_times(data, k: int):
    """The examples ``k`` times over, with fresh ids (a longer run of the same sentences)."""
    from llmviz.bias.stereoset import StereoSetData

    def copy(ex, i):
        return replace(ex, id=f"{ex.id}-{i}", sentences=[replace(s, id=f"{s.id}-{i}") for s in ex.sentences])

    intra = [copy(ex, i) for i in range(k) for ex in data.intrasentence]
    inter = [copy(ex, i) for i in range(k) for ex in data.intersentence]
    return StereoSetData(data.version, intra, inter, data.source, f"{data.sha256}x{k}")


def _actions(loaded):
    """name -> (run(progress), live drawer of the page)."""
    import pandas as pd

    from llmviz.bias import stereoset
    from llmviz.bias.pairs_data import starter_pairs
    from llmviz.explain.targets import Target
    from llmviz.interventions import patching
    from llmviz.interventions.sites import HEAD, RESID
    from ui.views import bias as bias_view
    from ui.views import explain as explain_view
    from ui.views.bias_parts import live as bias_live
    from ui.views.explain_parts import live as explain_live
    from ui.views.intervene_parts import sweep as sweep_view

    model = loaded.facts.model_id
    setup = patching.prepare(loaded, _cut(loaded, CLEAN), _cut(loaded, CORRUPT))
    kinds = (RESID, HEAD)
    target = Target("next_token")
    methods = ("grad_x_input", "integrated_gradients", "occlusion", "attention_rollout")
    params = {"integrated_gradients": {"steps": 32}}
    frame = pd.concat([starter_pairs().frame] * 2, ignore_index=True)
    data = _stereoset_times(stereoset.illustrative_set(), 4)
    return {
        "patching": (
            lambda cb: patching.patching_sweep(setup, kinds, batch_size=32, progress=cb),
            sweep_view.live(setup, kinds),
        ),
        "ablation": (
            lambda cb: explain_view._ablation(loaded, EXPLAIN_TEXT, target, True, 32, progress=cb),
            explain_live.ablation(model),
        ),
        "attribution": (
            lambda cb: explain_view._attributions(loaded, EXPLAIN_TEXT, target, methods, params, progress=cb),
            explain_live.attributions(model),
        ),
        "pairs": (lambda cb: bias_view._score_pairs(loaded, frame, progress=cb), bias_live.pairs),
        "stereoset": (
            lambda cb: bias_view._score_stereoset(loaded, data, progress=cb),
            bias_live.stereoset_live(loaded, data),
        ),
    }


def _timed(run, live=None) -> tuple[float, float, int]:
    """(seconds of the run, seconds inside the partial draws, draws) with the page's bar (and live drawing)."""
    import streamlit as st

    from ui import jobs

    bar = st.progress(0.0)
    shown = jobs._Live("bench", "sig", live, st.empty()) if live is not None else None
    spent = [0.0]
    if shown is not None:
        draw = shown._draw

        def timed_draw(*args):
            t0 = time.perf_counter()
            draw(*args)
            spent[0] += time.perf_counter() - t0

        shown._draw = timed_draw

    def progress(done, total, *rest):
        bar.progress(min(1.0, done / max(total, 1)), text=f"{done}/{total}")
        if shown is not None:
            shown(done, total, *rest)

    t0 = time.perf_counter()
    run(progress)
    return time.perf_counter() - t0, spent[0], shown.throttle.draws if shown is not None else 0


def main() -> dict:
    import torch

    from llmviz.models.loading import load_model

    out = {"load_avg_start": load_avg(), "torch_threads": torch.get_num_threads(), "repeats": REPEATS}
    loaded = load_model("smollm2")
    actions = _actions(loaded)
    for name, (run, live) in actions.items():
        _timed(run, live)  # warm-up: first calls, caches, the figure code
        plain, drawn = [], []
        for _ in range(REPEATS):  # interleaved: the load moves both alike
            plain.append(_timed(run)[0])
            drawn.append(_timed(run, live))
        best = min(drawn)
        out[f"stream_overhead_{name}"] = round(best[0] / min(plain) - 1, 4)
        out[f"stream_draw_share_{name}"] = round(best[1] / best[0], 4)
        out[f"stream_draws_{name}"] = best[2]
        out[f"stream_seconds_{name}"] = round(min(plain), 2)
        print(json.dumps({name: [plain, drawn]}), file=sys.stderr, flush=True)
    out["load_avg"] = load_avg()
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
