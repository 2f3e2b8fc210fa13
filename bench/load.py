"""Model loading times. Prints one JSON object.

smollm2_cold_s uses an empty temporary cache (dequantize GGUF + write safetensors);
smollm2_warm_s reloads from that cache.
gemma3_cold_s: the same for gemma3 (join four chunks, check SHA-256, dequantize, convert the 262k tokenizer,
write the cache; gemma3_stages_s the time at which each stage started); gemma3_first_warm_s: the first load
from that cache in this process (the tokenizer is read from disk); gemma3_warm_s: best of 3 reloads in
process (the tokenizer is memoised; goal <= 3 s). load_avg_1m: the machine's load (shared CPUs).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> dict:
    from llmviz.models.loading import load_model

    load_model("minilm")  # warm the imports so minilm_load_s measures loading, not `import transformers`
    out = {"minilm_load_s": timed(lambda: load_model("minilm"))}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLMVIZ_CACHE"] = tmp
        out["smollm2_cold_s"] = timed(lambda: load_model("smollm2"))
        out["smollm2_warm_s"] = min(timed(lambda: load_model("smollm2")) for _ in range(3))
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        out["gemma3_cold_s"] = timed(
            lambda: load_model("gemma3", progress=lambda s: stages.setdefault(s, time.perf_counter() - t0))
        )
        from llmviz.models import gguf_cache as gguf_cache

        gguf_cache._TOKENIZERS.clear()  # as in a fresh process: the tokenizer is read from the cache folder
        out["gemma3_first_warm_s"] = timed(lambda: load_model("gemma3"))
        out["gemma3_warm_s"] = min(timed(lambda: load_model("gemma3")) for _ in range(3))
    out["warm_speedup"] = out["smollm2_cold_s"] / out["smollm2_warm_s"]
    result = {k: round(v, 3) for k, v in out.items()}
    result["gemma3_stages_s"] = {k: round(v, 2) for k, v in stages.items()}
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
