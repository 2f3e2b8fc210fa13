"""Bias-probe speed. Prints one JSON object.

mlm_pairs_per_s: batched CrowS-Pairs PLL (all masked copies of several sentences in one padded forward
pass) on a BERT-style masked LM built from a config (4 layers, 256 hidden, MiniLM's 30k WordPiece vocab);
mlm_reference_pairs_per_s: the straightforward metric.py algorithm (one sentence, one mask, one pass at a
time) on the same model and pairs; mlm_batched_speedup = their ratio (target >= 5); mlm_max_abs_diff:
largest score difference between the two (should be < 1e-5). smollm2_1000_pairs_s: wall time to score
1,000 pairs with smollm2 (sentence log-likelihood, batched with padding).
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

N_REFERENCE_PAIRS = 16
N_BATCHED_PAIRS = 72


def main() -> dict:
    import numpy as np
    import pandas as pd

    from llmviz.bias.pairs import score_pairs
    from llmviz.bias.pairs_data import starter_pairs
    from llmviz.models import load_model
    from tests import tiny
    from tests.crows_reference import reference_crows_scores

    frame = starter_pairs().frame
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        mlm = load_model(str(tiny.build_tiny_bert_mlm(Path(tmp) / "mlm", layers=4, heads=4, hidden=256)))
        score_pairs(mlm, frame.head(4))  # warm-up
        t0 = time.perf_counter()
        res = score_pairs(mlm, frame.head(N_BATCHED_PAIRS))
        out["mlm_pairs_per_s"] = N_BATCHED_PAIRS / (time.perf_counter() - t0)
        sub = frame.head(N_REFERENCE_PAIRS)
        t0 = time.perf_counter()
        ref = [reference_crows_scores(mlm.model, mlm.tokenizer, a, b) for a, b in zip(sub["sent_more"], sub["sent_less"])]
        out["mlm_reference_pairs_per_s"] = N_REFERENCE_PAIRS / (time.perf_counter() - t0)
        out["mlm_batched_speedup"] = out["mlm_pairs_per_s"] / out["mlm_reference_pairs_per_s"]
        print(f"mlm: {out}", file=sys.stderr, flush=True)
        ref = np.array(ref)
        out["mlm_max_abs_diff"] = float(max(np.abs(res.score_more[:N_REFERENCE_PAIRS] - ref[:, 0]).max(),
                                            np.abs(res.score_less[:N_REFERENCE_PAIRS] - ref[:, 1]).max()))
    smol = load_model("smollm2")
    big = pd.concat([frame] * (1000 // len(frame) + 1), ignore_index=True).head(1000)
    score_pairs(smol, big.head(8))  # warm-up
    t0 = time.perf_counter()
    score_pairs(smol, big)
    out["smollm2_1000_pairs_s"] = time.perf_counter() - t0
    return {k: round(v, 3) if k != "mlm_max_abs_diff" else v for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
