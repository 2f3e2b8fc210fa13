"""Worst inputs of the issue-12 catalogue against the bounds in llmviz/limits.py, on smollm2, in one
process. Prints one JSON object: per case wall/CPU seconds and the process's peak RSS growth (MB) over
the idle state after loading the model. Goal: every case bounded, peak growth <= 2,048 MB."""

import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from llmviz.errors import LlmvizError
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import NEXT_TOKEN, Target, build_problem
    from llmviz.generation.fill_mask import fill_mask
    from llmviz.generation.generate import SamplingParams, build_prompt, generate
    from llmviz.models.loading import load_model

    loaded = load_model("smollm2")
    idle = rss_mb()
    words = " ".join(f"word{i}" for i in range(5000))
    cases = {
        "system_prompt_5000_words": lambda: generate(
            loaded, build_prompt(loaded, "What is 2+2?", words), SamplingParams(greedy=True, max_new_tokens=8)
        ),
        "fill_candidates_5000_words_no_commas": lambda: fill_mask(loaded, "The [MASK] went home.", 5, words),
        "explain_64_tokens": lambda: [
            attribute(build_problem(loaded, words, Target(kind=NEXT_TOKEN)), m)
            for m in ("grad_x_input", "integrated_gradients", "occlusion")
        ],
    }
    out = {"model": "smollm2", "idle_rss_mb": round(idle, 1), "cases": {}}
    for name, fn in cases.items():
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            fn()
            status = "ran (bounded)"
        except LlmvizError as err:
            status = f"refused: {str(err)[:80]}"
        out["cases"][name] = {
            "wall_s": round(time.perf_counter() - t0, 2),
            "cpu_s": round(time.process_time() - c0, 2),
            "status": status,
            "peak_growth_mb": round(peak_mb() - idle, 1),
        }
    out["peak_growth_mb"] = round(peak_mb() - idle, 1)
    out["goal_met"] = out["peak_growth_mb"] <= 2048
    out["loadavg"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
