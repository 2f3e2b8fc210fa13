"""The main heavy actions on a quiet machine and beside two other heavy jobs, with torch's default thread
count and with the count ``llmviz.jobs.job_threads`` chooses per job. Prints one JSON object.

Actions (smollm2): the activation-patching sweep of ``bench/anchors.py`` (residual stream, every layer and
position of a 16-token pair) and integrated gradients (32 tokens, 32 steps). The "other heavy jobs" are two
processes each running float32 matrix products on torch's default threads (as another server's or a CLI
audit's job would), started before and stopped after each loaded measurement.

Keys: ``<action>_quiet_s`` (default threads, nothing else running), ``<action>_loaded_default_s`` (default
threads beside the two jobs), ``<action>_loaded_chosen_s`` and ``<action>_chosen_threads`` (the per-job
choice beside them), ``<action>_kept_default`` / ``<action>_kept_chosen`` = quiet time / loaded time (the
share of the quiet throughput kept), ``load_avg`` before and after. Best of ``BENCH_LOAD_REPEATS`` (2).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPEATS = int(os.environ.get("BENCH_LOAD_REPEATS", "2"))
OTHER_JOB = "import torch\na = torch.randn(256, 576)\nw = torch.randn(576, 1536)\nwhile True:\n    a @ w\n"


def load_avg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def best(fn) -> float:
    out = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


class OtherJobs:
    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", OTHER_JOB]) for _ in range(2)]
        time.sleep(1.0)  # both spinning
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def actions():
    from bench.anchors import IG_TEXT, PATCH_BATCH, PATCH_CLEAN, PATCH_CORRUPT, _cut
    from llmviz.explain.attribution import attribute
    from llmviz.explain.targets import Target, build_problem
    from llmviz.interventions import patching as P
    from llmviz.interventions.sites import RESID
    from llmviz.models.loading import load_model

    loaded = load_model("smollm2")
    setup = P.prepare(loaded, _cut(loaded, PATCH_CLEAN), _cut(loaded, PATCH_CORRUPT))
    sites = P.sweep_sites(loaded.facts.n_layers, setup.n_tokens, loaded.facts.n_heads, (RESID,))
    problem = build_problem(loaded, IG_TEXT, Target("next_token"), max_tokens=32)
    return {
        "patch": lambda: P.run_sites(setup, sites, PATCH_BATCH),
        "ig": lambda: attribute(problem, "integrated_gradients", steps=32, baseline="pad", batch_size=16),
    }


def main() -> dict:
    import torch

    from llmviz.threads import busy_elsewhere, choose_threads

    out = {"load_avg_start": load_avg(), "cores": os.cpu_count(), "default_threads": torch.get_num_threads()}
    acts = actions()
    for fn in acts.values():
        fn()  # warm-up
    for name, fn in acts.items():
        out[f"{name}_quiet_s"] = best(fn)
        with OtherJobs():
            out[f"{name}_loaded_default_s"] = best(fn)
            n = choose_threads(os.cpu_count() or 1, 1, busy_elsewhere(0.3))
            before = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                out[f"{name}_loaded_chosen_s"] = best(fn)
            finally:
                torch.set_num_threads(before)
        out[f"{name}_chosen_threads"] = n
        out[f"{name}_kept_default"] = out[f"{name}_quiet_s"] / out[f"{name}_loaded_default_s"]
        out[f"{name}_kept_chosen"] = out[f"{name}_quiet_s"] / out[f"{name}_loaded_chosen_s"]
    out["load_avg"] = load_avg()
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
