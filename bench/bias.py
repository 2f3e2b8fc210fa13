"""Bias-probe speed. Prints one JSON object.

mlm_pairs_per_s: batched CrowS-Pairs PLL (all masked copies of several sentences in one padded forward
pass) on a BERT-style masked LM built from a config (4 layers, 256 hidden, MiniLM's 30k WordPiece vocab);
mlm_reference_pairs_per_s: the straightforward metric.py algorithm (one sentence, one mask, one pass at a
time) on the same model and pairs; mlm_batched_speedup = their ratio (target >= 5); mlm_max_abs_diff:
largest score difference between the two (should be < 1e-5). smollm2_1000_pairs_s: wall time to score
1,000 pairs with smollm2 (sentence log-likelihood, batched with padding).
stereoset_examples_per_s: StereoSet examples (3 candidate sentences each, generative scoring) per second with
smollm2 on the illustrative set repeated; seat_items_per_s: SEAT items embedded and tested per second with
minilm (all layers, mean pooling) on a synthetic 4 x 200-sentence test.
Fast mode (bf16 twin, where the CPU has bfloat16 units; null otherwise), each timed in an interleaved pair with
exact, best of 2: {pairs,stereoset,seat}_fast_ratio_vs_exact (exact time / fast time; smollm2 on 144 pairs and on
the 56 StereoSet examples, minilm on a 4 x 100 SEAT test) and {pairs,stereoset,seat}_fast_deviation (what the
run reports on its own first item: nats, sentence score, 1 - cosine).
load_avg: /proc/loadavg at the start and the end (the machine is shared; read every figure next to it).
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
    from llmviz.models.loading import load_model
    from tests.fixtures import tiny
    from tests.fixtures.crows_reference import reference_crows_scores

    frame = starter_pairs().frame
    out = {"load_avg_start": _load()}
    with tempfile.TemporaryDirectory() as tmp:
        mlm = load_model(str(tiny.build_tiny_bert_mlm(Path(tmp) / "mlm", layers=4, heads=4, hidden=256)))
        score_pairs(mlm, frame.head(4))  # warm-up
        t0 = time.perf_counter()
        res = score_pairs(mlm, frame.head(N_BATCHED_PAIRS))
        out["mlm_pairs_per_s"] = N_BATCHED_PAIRS / (time.perf_counter() - t0)
        sub = frame.head(N_REFERENCE_PAIRS)
        t0 = time.perf_counter()
        ref = [
            reference_crows_scores(mlm.model, mlm.tokenizer, a, b) for a, b in zip(sub["sent_more"], sub["sent_less"])
        ]
        out["mlm_reference_pairs_per_s"] = N_REFERENCE_PAIRS / (time.perf_counter() - t0)
        out["mlm_batched_speedup"] = out["mlm_pairs_per_s"] / out["mlm_reference_pairs_per_s"]
        print(f"mlm: {out}", file=sys.stderr, flush=True)
        ref = np.array(ref)
        out["mlm_max_abs_diff"] = float(
            max(
                np.abs(res.score_more[:N_REFERENCE_PAIRS] - ref[:, 0]).max(),
                np.abs(res.score_less[:N_REFERENCE_PAIRS] - ref[:, 1]).max(),
            )
        )
    smol = load_model("smollm2")
    big = pd.concat([frame] * (1000 // len(frame) + 1), ignore_index=True).head(1000)
    score_pairs(smol, big.head(8))  # warm-up
    t0 = time.perf_counter()
    score_pairs(smol, big)
    out["smollm2_1000_pairs_s"] = time.perf_counter() - t0
    out.update(benchmark_speeds(smol))
    out.update(fast_modes(smol, frame))
    out["load_avg"] = _load()
    exact_keys = ("mlm_max_abs_diff", "pairs_fast_deviation", "stereoset_fast_deviation", "seat_fast_deviation")
    return {k: round(v, 3) if isinstance(v, float) and k not in exact_keys else v for k, v in out.items()}


def benchmark_speeds(smol) -> dict:
    """stereoset_examples_per_s (smollm2) and seat_items_per_s (minilm)."""
    from llmviz.bias import seat as SEAT
    from llmviz.bias import stereoset as SS
    from llmviz.models.loading import load_model

    out = {}
    ill = SS.illustrative_set()
    data = SS.StereoSetData("bench", ill.intrasentence * 4, ill.intersentence * 4)  # 56 examples
    items = [it for _, it in data.sentence_items()]
    SS.score_items(smol, items[:6])  # warm-up
    t0 = time.perf_counter()
    SS.score_items(smol, items)
    out["stereoset_examples_per_s"] = len(data.examples()) / (time.perf_counter() - t0)
    minilm = load_model("minilm")
    words = ["career", "family", "science", "art"]
    test = SEAT.SeatTest(
        "bench",
        {
            k: (k, [f"This sentence number {i} is about {w}, and nothing else." for i in range(200)])
            for k, w in zip(SEAT.SET_KEYS, words)
        },
    )
    SEAT.run_test(minilm, SEAT.SeatTest("warm", {k: (k, v[1][:4]) for k, v in test.sets.items()}))
    t0 = time.perf_counter()
    SEAT.run_test(minilm, test, "mean", "all")
    out["seat_items_per_s"] = sum(test.sizes) / (time.perf_counter() - t0)
    return out


def _load():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


def _pair(exact, fast, repeats: int = 2) -> tuple[float, object]:
    """exact time / fast time, interleaved, best of ``repeats`` each; and the fast run's result."""
    best = {"exact": float("inf"), "fast": float("inf")}
    res = None
    for _ in range(repeats):
        for name, fn in (("exact", exact), ("fast", fast)):
            t0 = time.perf_counter()
            r = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            res = r if name == "fast" else res
    return best["exact"] / best["fast"], res


def fast_modes(smol, frame) -> dict:
    """The bias scorers' bf16 mode against exact (null where the CPU has no bfloat16 units)."""
    import pandas as pd

    from llmviz.bias import seat as SEAT
    from llmviz.bias import stereoset as SS
    from llmviz.bias.pairs import score_pairs
    from llmviz.models.loading import load_model
    from llmviz.precision import bf16_support

    keys = [f"{w}_fast_{k}" for w in ("pairs", "stereoset", "seat") for k in ("ratio_vs_exact", "deviation")]
    if not bf16_support()[0]:
        return dict.fromkeys(keys)
    out = {}
    pairs = pd.concat([frame] * 2, ignore_index=True)
    score_pairs(smol, pairs.head(8), precision="bf16")  # warm-up: builds the twin
    out["pairs_fast_ratio_vs_exact"], res = _pair(
        lambda: score_pairs(smol, pairs), lambda: score_pairs(smol, pairs, precision="bf16")
    )
    out["pairs_fast_deviation"] = res.deviation
    ill = SS.illustrative_set()
    data = SS.StereoSetData("bench", ill.intrasentence * 4, ill.intersentence * 4)
    out["stereoset_fast_ratio_vs_exact"], run = _pair(
        lambda: SS.run_stereoset(smol, data, n_boot=10),
        lambda: SS.run_stereoset(smol, data, n_boot=10, precision="bf16"),
    )
    out["stereoset_fast_deviation"] = run.deviation
    minilm = load_model("minilm")
    test = SEAT.SeatTest(
        "bench",
        {
            k: (k, [f"This sentence number {i} is about {w}, and nothing else." for i in range(100)])
            for k, w in zip(SEAT.SET_KEYS, ["career", "family", "science", "art"])
        },
    )
    SEAT.run_test(minilm, SEAT.SeatTest("warm", {k: (k, v[1][:4]) for k, v in test.sets.items()}), precision="bf16")
    out["seat_fast_ratio_vs_exact"], entry = _pair(
        lambda: SEAT.run_test(minilm, test), lambda: SEAT.run_test(minilm, test, precision="bf16")
    )
    out["seat_fast_deviation"] = entry["deviation"]
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
