"""Intervention timings on smollm2. Prints one JSON object.

patch_sweep_s / patch_sweep_one_at_a_time_s: patch the residual stream entering every layer at every
position of a 16-token prompt pair (30 × 16 sites), 32 patched copies per forward pass vs one per pass;
patch_max_diff is the largest difference of the normalised metric between the two. dla_s: one direct
logit attribution. steer_generation_overhead: 1 − tokens/s with the steering hook / tokens/s without
(greedy, 32 new tokens). Wall and process-CPU seconds, with the load average (the machine may be shared).
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLEAN = "When Mary and John went to the store, John gave a drink to the girl whose name was"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to the girl whose name was"
N_TOKENS = 16


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _cut(loaded, text: str) -> str:
    """The first N_TOKENS tokens of ``text`` as text (both prompts then have N_TOKENS tokens)."""
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"][:N_TOKENS]
    return loaded.tokenizer.decode(ids)


def main() -> dict:
    import numpy as np

    from llmviz.generation.generate import SamplingParams, build_prompt, generate
    from llmviz.interventions import dla, patching, steering
    from llmviz.interventions.sites import RESID
    from llmviz.models.loading import load_model

    loaded = load_model("smollm2")
    setup = patching.prepare(loaded, _cut(loaded, CLEAN), _cut(loaded, CORRUPT))
    L, T = loaded.facts.n_layers, setup.n_tokens
    sites = patching.sweep_sites(L, T, loaded.facts.n_heads, (RESID,))
    patching.run_sites(setup, sites[:32], 32)  # warm-up
    with Clock() as batched_c:
        batched, _ = patching.run_sites(setup, sites, 32)
    with Clock() as single_c:
        single, _ = patching.run_sites(setup, sites, 1)
    with Clock() as dla_c:
        d = dla.direct_logit_attribution(setup)

    a, b = steering.DEFAULT_SETS["he_she"]
    vec = steering.steering_vector(loaded, a, b, L // 2)
    prompt = build_prompt(loaded, "The doctor said that", use_chat_template=False)
    params = SamplingParams(greedy=True, max_new_tokens=32)
    generate(loaded, prompt, SamplingParams(greedy=True, max_new_tokens=4))  # warm-up
    with Clock() as plain_c:
        plain = generate(loaded, prompt, params, stop_at_eos=False)
    with Clock() as steer_c:
        steered = steering.steered_generate(loaded, prompt, params, vec.vector, vec.layer, 0.0, stop_at_eos=False)
    plain_tps = len(plain.steps) / plain_c.wall
    steer_tps = len(steered.steps) / steer_c.wall
    return {
        "model": "smollm2",
        "n_tokens": T,
        "n_sites": len(sites),
        "batch_size": 32,
        "patch_sweep_s": batched_c.wall,
        "patch_sweep_one_at_a_time_s": single_c.wall,
        "patch_speedup": single_c.wall / batched_c.wall,
        "patch_sweep_cpu_s": batched_c.cpu,
        "patch_sweep_one_at_a_time_cpu_s": single_c.cpu,
        "patch_max_diff": float(np.max(np.abs(setup.normalise(batched) - setup.normalise(single)))),
        "dla_s": dla_c.wall,
        "dla_sum_error": d.sum_error,
        "dla_frozen_error": d.frozen_error,
        "plain_tokens_per_s": plain_tps,
        "steered_tokens_per_s": steer_tps,
        "steer_generation_overhead": 1 - steer_tps / plain_tps,
        "steer_alpha0_identical": plain.token_ids == steered.token_ids,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
