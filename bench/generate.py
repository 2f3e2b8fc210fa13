"""Generation speed with smollm2. Prints one JSON object.

tok_s: greedy, 64 new tokens (end-of-turn ignored so every run has 64), no probability records.
tok_s_with_probs: the same run with per-step records (probabilities, entropies, top-5 alternatives,
decoded text so far) — what the Playground streams. probs_overhead = (tok_s - tok_s_with_probs) / tok_s
(goal < 0.2). ttft_s: time from the call to the first token (prefill + first step), with records.
Each figure is the best of REPEATS runs (interleaved), to damp noise from other processes on shared
CPUs; cpu_* report process CPU time per token beside wall time, and load_avg_1m the machine's load.
gemma3_*: the same greedy 64-token run with gemma3 (a completion prompt, no chat template), one run each
(BENCH_GEMMA_REPEATS): gemma3_tok_s (llmviz's stream, no records), gemma3_tok_s_with_probs, and
gemma3_hf_generate_tok_s = transformers' own model.generate on the same prompt ids (greedy, 64 new
tokens, min_new_tokens=64) for comparison. Set BENCH_SKIP_GEMMA=1 to skip.
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
GEMMA_REPEATS = int(os.environ.get("BENCH_GEMMA_REPEATS", "1"))
GEMMA_PROMPT = "Once upon a time, there was a robot who wanted to learn to paint. Every morning,"


def run(loaded, prompt, record: bool):
    from llmviz.generation.generate import GenerationStream, SamplingParams

    stream = GenerationStream(
        loaded, prompt, SamplingParams(greedy=True, max_new_tokens=N_TOKENS), record=record, stop_at_eos=False
    )
    cpu0 = time.process_time()
    for _ in stream:
        pass
    cpu = time.process_time() - cpu0
    assert len(stream.steps) == N_TOKENS
    return N_TOKENS / stream.elapsed_s, stream.ttft_s, cpu / N_TOKENS


def hf_generate(loaded, prompt) -> float:
    """tokens/s of transformers' model.generate on the same ids (greedy, exactly N_TOKENS new tokens)."""
    import torch

    ids = torch.tensor([prompt.ids], device=loaded.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=N_TOKENS, min_new_tokens=N_TOKENS
        )
    elapsed = time.perf_counter() - t0
    assert out.shape[1] - ids.shape[1] == N_TOKENS
    return N_TOKENS / elapsed


def gemma3() -> dict:
    from llmviz.generation.generate import build_prompt
    from llmviz.models.loading import load_model

    loaded = load_model("gemma3")
    prompt = build_prompt(loaded, GEMMA_PROMPT)
    run(loaded, prompt, False)  # warm-up
    plain, probs, hf = [], [], []
    for _ in range(GEMMA_REPEATS):
        plain.append(run(loaded, prompt, False))
        probs.append(run(loaded, prompt, True))
        hf.append(hf_generate(loaded, prompt))
    return {
        "gemma3_tok_s": round(max(p[0] for p in plain), 2),
        "gemma3_tok_s_with_probs": round(max(p[0] for p in probs), 2),
        "gemma3_hf_generate_tok_s": round(max(hf), 2),
        "gemma3_cpu_s_per_token": round(min(p[2] for p in plain), 4),
        "gemma3_prompt_tokens": len(prompt.ids),
    }


def main() -> dict:
    import torch

    from llmviz.generation.generate import build_prompt
    from llmviz.models.loading import load_model

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
    return {
        "tok_s": round(tok_s, 2),
        "tok_s_with_probs": round(tok_s_probs, 2),
        "probs_overhead": round((tok_s - tok_s_probs) / tok_s, 4),
        "ttft_s": round(min(p[1] for p in probs), 4),
        "n_tokens": N_TOKENS,
        "prompt_tokens": len(prompt.ids),
        "threads": torch.get_num_threads(),
        # CPU seconds per token are less sensitive than wall time to other processes on the machine
        "cpu_s_per_token": round(cpu_plain, 4),
        "cpu_s_per_token_with_probs": round(cpu_probs, 4),
        "cpu_probs_overhead": round((cpu_probs - cpu_plain) / cpu_probs, 4),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **({} if os.environ.get("BENCH_SKIP_GEMMA") else gemma3()),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
