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

TEXT = (
    "The history of the city began when a small group of farmers settled near the river, and over the "
    "next two centuries the village grew into a busy market town where traders from the north met"
)


class Clock:
    """Wall and process-CPU seconds of a block (CPU time stays meaningful on a shared, loaded machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> dict:
    import numpy as np

    from llmviz.explain.ablation import head_ablation
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import Target, build_problem
    from llmviz.models.loading import load_model

    loaded = load_model("smollm2")
    problem = build_problem(loaded, TEXT, Target("next_token"), max_tokens=32)
    assert problem.n_tokens == 32, problem.n_tokens
    attribute(problem, "integrated_gradients", steps=4)  # warm-up
    with Clock() as ig:
        batched = attribute(problem, "integrated_gradients", steps=64, batch_size=16)
    with Clock() as ig1:
        single = attribute(problem, "integrated_gradients", steps=64, batch_size=1)

    abl_problem = build_problem(loaded, TEXT, Target("next_token", score="log_prob"), max_tokens=32)
    with Clock() as abl:
        sweep = head_ablation(abl_problem, whole_layers=False, batch_size=32)
    with Clock() as abl1:
        sweep1 = head_ablation(abl_problem, whole_layers=False, batch_size=1)
    out = {
        "ig64_s": ig.wall,
        "ig64_unbatched_s": ig1.wall,
        "ig_speedup": ig1.wall / ig.wall,
        "ig64_cpu_s": ig.cpu,
        "ig64_unbatched_cpu_s": ig1.cpu,
        "ig64_completeness_gap": batched.completeness_gap,
        "ig_batched_vs_unbatched_max_diff": float(np.abs(batched.scores - single.scores).max()),
        "ablation_sweep_s": abl.wall,
        "ablation_unbatched_s": abl1.wall,
        "ablation_speedup": abl1.wall / abl.wall,
        "ablation_sweep_cpu_s": abl.cpu,
        "ablation_unbatched_cpu_s": abl1.cpu,
        "ablation_heads": int(sweep.head_delta.size),
        "ablation_batched_vs_unbatched_max_diff": float(np.abs(sweep.head_delta - sweep1.head_delta).max()),
        "n_tokens": problem.n_tokens,
        "torch_threads": __import__("torch").get_num_threads(),
        "load_avg_1m": os.getloadavg()[0],
    }
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
