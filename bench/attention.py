"""Attention explorer bench. Prints one JSON object.

- ``minilm_128_ms`` / ``smollm2_128_ms`` / ``minilm_512_ms``: median wall time of ``extract_attention``
  (tokenise + forward with attentions + numpy conversion) for an input of exactly 128 / 512 tokens.
- ``stats_rollout_512_ms``: head statistics + rollout on the 512-token minilm result.
- ``smollm2_formula_ms``: the step-by-step recomputation of one layer (32 tokens).
- ``payload_bytes``: our offline head view for a 16-token minilm sentence, excluding the vendored
  libraries (d3/jQuery/RequireJS, inlined once per document); ``bertviz_stock_bytes``: stock
  ``bertviz.head_view(..., html_action="return")`` for the same attention; their ratio must be <= 0.25.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCE_16 = "The quick brown fox jumps over the lazy dog near the bank today again"
LONG = " ".join(["the students read a long story about attention heads in small language models"] * 60)


def median_ms(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> dict:
    import torch
    from bertviz import head_view

    from llmviz.attention.extract import extract_attention, head_statistics, rollout
    from llmviz.attention.steps import formula_steps
    from llmviz.models.loading import load_model
    from llmviz.viz.bertviz_offline import library_scripts, standalone_html, view_fragment

    minilm, smollm2 = load_model("minilm"), load_model("smollm2")
    out: dict = {}
    r128 = extract_attention(minilm, LONG, max_tokens=128)
    assert len(r128.tokens) == 128
    out["minilm_128_ms"] = median_ms(lambda: extract_attention(minilm, LONG, max_tokens=128))
    assert len(extract_attention(smollm2, LONG, max_tokens=128).tokens) == 128
    out["smollm2_128_ms"] = median_ms(lambda: extract_attention(smollm2, LONG, max_tokens=128))
    r512 = extract_attention(minilm, LONG, max_tokens=512)
    assert len(r512.tokens) == 512
    out["minilm_512_ms"] = median_ms(lambda: extract_attention(minilm, LONG, max_tokens=512))
    out["stats_rollout_512_ms"] = median_ms(
        lambda: (head_statistics(r512.attention, r512.special_mask), rollout(r512.attention))
    )
    out["smollm2_formula_ms"] = median_ms(lambda: formula_steps(smollm2, LONG, 15, 4, max_tokens=32))

    r16 = extract_attention(minilm, SENTENCE_16)
    assert len(r16.tokens) == 16, r16.tokens
    stock = head_view([torch.tensor(a)[None] for a in r16.attention], r16.tokens, html_action="return").data
    ours = view_fragment(r16.tokens, r16.attention, "head")
    out["n_tokens_payload"] = len(r16.tokens)
    out["payload_bytes"] = len(ours.encode("utf-8"))
    out["bertviz_stock_bytes"] = len(stock.encode("utf-8"))
    out["payload_ratio_vs_bertviz"] = out["payload_bytes"] / out["bertviz_stock_bytes"]
    out["model_view_payload_bytes"] = len(view_fragment(r16.tokens, r16.attention, "model").encode("utf-8"))
    out["vendored_library_bytes"] = len(library_scripts().encode("utf-8"))
    out["standalone_html_bytes"] = len(standalone_html(ours).encode("utf-8"))
    out["load_avg_1m"] = os.getloadavg()[0]  # timings are wall clock: context for a busy machine
    out["torch_threads"] = torch.get_num_threads()
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
