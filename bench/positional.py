"""Positional-encoding lab timings (seconds, best of 3) and the numbers the page checks. Prints one JSON object."""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCE = "The dog chased the cat across the garden."


def best(fn, n: int = 3):
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> dict:
    import numpy as np

    from llmviz.models.loading import load_model
    from llmviz.positional import ablation as PA
    from llmviz.positional import encodings as P
    from llmviz.positional import model as PM

    out = {}
    out["sinusoidal_1024x1024_s"], pe = best(lambda: P.sinusoidal(1024, 1024, 10000))
    out["distance_similarity_1024_s"], ds = best(lambda: P.distance_similarity(pe, "cosine"))
    out["shift_map_max_error"] = P.shift_map(pe, 100).max_error
    out["distance_max_spread"] = ds.max_spread
    minilm, smollm2 = load_model("minilm"), load_model("smollm2")
    out["learned_analysis_s"], an = best(lambda: PM.analyse_learned(PM.learned_positions(minilm)))
    cfg = PM.rope_config(smollm2)
    pos = np.arange(8192)
    c32, _ = P.rope_cos_sin(pos, cfg.model_inv_freq, float32=True)
    out["rope_vs_model_max_abs_8192"] = float(np.abs(c32 - PM.model_rope_cos_sin(smollm2, pos)[0]).max())
    out["encoder_ablation_s"], enc = best(lambda: PA.encoder_ablation(minilm, SENTENCE))
    out["minilm_cos_with"], out["minilm_cos_without"] = enc.cos_with, enc.cos_without
    out["rope_ablation_s"], rope = best(lambda: PA.rope_ablation(smollm2, SENTENCE))
    out["smollm2_kl_rope_off_bits"] = rope.kl_rope_off
    out["smollm2_layer1_diff_without"] = rope.layer1_diff_without
    return {k: float(f"{v:.4g}") for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
