"""Generation speed with smollm2. Prints one JSON object.

tok_s: greedy, 64 new tokens (end-of-turn ignored so every run has 64), no probability records.
tok_s_with_probs: the same run with per-step records (probabilities, entropies, top-5 alternatives,
decoded text so far) — what the Playground streams. probs_overhead = (tok_s - tok_s_with_probs) / tok_s
(goal < 0.2). ttft_s: time from the call to the first token (prefill + first step), with records.
Each figure is the best of REPEATS runs (interleaved), to damp noise from other processes on shared
CPUs; cpu_* report process CPU time per token beside wall time, and load_avg_1m the machine's load.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

N_TOKENS = 64
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def run(loaded, prompt, record: bool):
    from llmviz.generate import GenerationStream, SamplingParams

    stream = GenerationStream(loaded, prompt, SamplingParams(greedy=True, max_new_tokens=N_TOKENS),
                              record=record, stop_at_eos=False)
    cpu0 = time.process_time()
    for _ in stream:
        pass
    cpu = time.process_time() - cpu0
    assert len(stream.steps) == N_TOKENS
    return N_TOKENS / stream.elapsed_s, stream.ttft_s, cpu / N_TOKENS


def main() -> dict:
    import torch

    from llmviz.generate import build_prompt
    from llmviz.models import load_model

    loaded = load_model("smollm2")
    prompt = build_prompt(loaded, "Write a short story about a robot who learns to paint.")
    run(loaded, prompt, True)  # warm-up
    plain, probs = [], []
    for _ in range(REPEATS):  # interleaved, so load from other processes hits both alike
        plain.append(run(loaded, prompt, False))
        probs.append(run(loaded, prompt, True))
    tok_s = max(p[0] for p in plain)
    tok_s_probs = max(p[0] for p in probs)
    cpu_plain, cpu_probs = min(p[2] for p in plain), min(p[2] for p in probs)
    return {"tok_s": round(tok_s, 2), "tok_s_with_probs": round(tok_s_probs, 2),
            "probs_overhead": round((tok_s - tok_s_probs) / tok_s, 4),
            "ttft_s": round(min(p[1] for p in probs), 4), "n_tokens": N_TOKENS,
            "prompt_tokens": len(prompt.ids), "threads": torch.get_num_threads(),
            # CPU seconds per token are less sensitive than wall time to other processes on the machine
            "cpu_s_per_token": round(cpu_plain, 4), "cpu_s_per_token_with_probs": round(cpu_probs, 4),
            "cpu_probs_overhead": round((cpu_probs - cpu_plain) / cpu_probs, 4),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    print(json.dumps(main()))
