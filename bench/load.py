"""Model loading times. Prints one JSON object.

smollm2_cold_s uses an empty temporary cache (dequantize GGUF + write safetensors);
smollm2_warm_s reloads from that cache.
gemma3_cold_s: the same for gemma3 (join four chunks, check SHA-256, dequantize, convert the 262k tokenizer,
write the cache; gemma3_stages_s the time at which each stage started). gemma3_warm_s: a load from that cache
in a fresh process after its imports (torch, transformers, llmviz and the Gemma 3 model and tokenizer classes),
as a restarted app's first load of it: best of WARM_PROCESSES (each in gemma3_warm_runs_s; goal <= 3 s);
gemma3_warm_cpu_s its CPU seconds (steadier than wall time on shared CPUs); gemma3_warm_bare_s the same without
importing the two classes first (transformers imports them, ~2 s, on a process's first load of any model);
gemma3_reload_s: best of 3 reloads in this process (the tokenizer is memoised). load_avg_1m: the machine's load.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
WARM_PROCESSES = 2
# run in a child: imports first, then one timed load; prints wall and CPU seconds. "classes" also imports the
# model and tokenizer classes transformers loads lazily (~2 s of imports, paid once per process for any model)
_FRESH_LOAD = """
import sys, time
from llmviz.models.loading import load_model
import torch, transformers, tokenizers, safetensors.torch  # noqa: F401 - the imports are not the load
if sys.argv[1] == "classes":
    from transformers import Gemma3ForCausalLM, GemmaTokenizer  # noqa: F401
t0, c0 = time.perf_counter(), time.process_time()
load_model("gemma3")
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fresh_process_load(imports: str = "classes") -> tuple[float, float]:
    """(wall, CPU) seconds of one warm gemma3 load in a new Python process, its imports done before the clock
    starts (``imports``: "classes" with the model/tokenizer classes, "bare" without them)."""
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_LOAD, imports],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    wall, cpu = done.stdout.split()[-2:]
    return float(wall), float(cpu)


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
        runs = [fresh_process_load() for _ in range(WARM_PROCESSES)]  # LLMVIZ_CACHE (the temp cache) inherited
        out["gemma3_warm_s"] = min(wall for wall, _ in runs)
        out["gemma3_warm_cpu_s"] = min(cpu for _, cpu in runs)
        out["gemma3_warm_bare_s"] = min(fresh_process_load("bare")[0] for _ in range(WARM_PROCESSES))
        out["gemma3_reload_s"] = min(timed(lambda: load_model("gemma3")) for _ in range(3))
    out["warm_speedup"] = out["smollm2_cold_s"] / out["smollm2_warm_s"]
    result = {k: round(v, 3) for k, v in out.items()}
    result["gemma3_stages_s"] = {k: round(v, 2) for k, v in stages.items()}
    result["gemma3_warm_runs_s"] = [round(wall, 3) for wall, _ in runs]
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
