"""Model loading times. Prints one JSON object.

smollm2_cold_s uses an empty temporary cache (dequantize GGUF + write safetensors);
smollm2_warm_s reloads from that cache.
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
    from llmviz.models import load_model

    load_model("minilm")  # warm the imports so minilm_load_s measures loading, not `import transformers`
    out = {"minilm_load_s": timed(lambda: load_model("minilm"))}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLMVIZ_CACHE"] = tmp
        out["smollm2_cold_s"] = timed(lambda: load_model("smollm2"))
        out["smollm2_warm_s"] = min(timed(lambda: load_model("smollm2")) for _ in range(3))
    out["warm_speedup"] = out["smollm2_cold_s"] / out["smollm2_warm_s"]
    return {k: round(v, 3) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
