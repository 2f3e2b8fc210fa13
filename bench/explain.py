"""Explain timings on smollm2. Prints one JSON object.

ig64_s / ig64_unbatched_s: integrated gradients, 64 steps, 32 tokens, 16 steps per pass vs one step
per pass. ablation_sweep_s / ablation_unbatched_s: zero every head (30 × 9) one at a time, 32 ablated
copies per forward pass vs one per pass. Gaps and max differences show both variants agree.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT = ("The history of the city began when a small group of farmers settled near the river, and over the "
        "next two centuries the village grew into a busy market town where traders from the north met")


def main() -> dict:
    import numpy as np

    from llmviz.explain.ablation import head_ablation
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import Target, build_problem
    from llmviz.models import load_model

    loaded = load_model("smollm2")
    problem = build_problem(loaded, TEXT, Target("next_token"), max_tokens=32)
    assert problem.n_tokens == 32, problem.n_tokens
    attribute(problem, "integrated_gradients", steps=4)  # warm-up
    t0 = time.perf_counter()
    batched = attribute(problem, "integrated_gradients", steps=64, batch_size=16)
    ig = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = attribute(problem, "integrated_gradients", steps=64, batch_size=1)
    ig1 = time.perf_counter() - t0

    abl_problem = build_problem(loaded, TEXT, Target("next_token", score="log_prob"), max_tokens=32)
    t0 = time.perf_counter()
    sweep = head_ablation(abl_problem, whole_layers=False, batch_size=32)
    abl = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep1 = head_ablation(abl_problem, whole_layers=False, batch_size=1)
    abl1 = time.perf_counter() - t0
    out = {"ig64_s": ig, "ig64_unbatched_s": ig1, "ig_speedup": ig1 / ig,
           "ig64_completeness_gap": batched.completeness_gap,
           "ig_batched_vs_unbatched_max_diff": float(np.abs(batched.scores - single.scores).max()),
           "ablation_sweep_s": abl, "ablation_unbatched_s": abl1, "ablation_speedup": abl1 / abl,
           "ablation_heads": int(sweep.head_delta.size),
           "ablation_batched_vs_unbatched_max_diff": float(np.abs(sweep.head_delta - sweep1.head_delta).max()),
           "n_tokens": problem.n_tokens, "torch_threads": __import__("torch").get_num_threads()}
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
