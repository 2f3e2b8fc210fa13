"""Information flow timings (issue 23). Prints one JSON object.

smollm2_graph_s / gemma3_graph_s: the contribution graph of a 32-token prompt (one forward pass, the exact
decomposition of every update, the proportion-rule importances and the route at τ = 0.04), after one warm-up.
qk_attribution_s: QK attribution of one head, query and key on smollm2 (forward pass included).
max_rel_error: the largest relative error of the decomposition's sum against the model's own residual after
every attention block and MLP (hooked), over both models. Goals: ≤ 5 s, ≤ 8 s and ≤ 1 s on the 2-core machine.
"""

import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT = (
    "The history of the city began when a small group of farmers settled near the river, and over the "
    "next two centuries the village grew into a busy market town where traders from the north met"
)


def _graph(loaded):
    from llmviz.explain.flow import build_graph, information_flow

    t0 = time.perf_counter()
    res = information_flow(loaded, TEXT, max_tokens=32)
    graph = build_graph(res, 0.04, route_only=True)
    return time.perf_counter() - t0, res, graph


def main() -> dict:
    from llmviz.explain.qk_attribution import qk_attribution
    from llmviz.models.loading import load_model

    out: dict = {}
    errors = []
    for mid in ("smollm2", "gemma3"):
        loaded = load_model(mid)
        _graph(loaded)  # warm-up (first-call allocations)
        seconds, res, graph = _graph(loaded)
        assert len(res.tokens) == 32, len(res.tokens)
        out[f"{mid}_graph_s"] = seconds
        out[f"{mid}_route_edges"] = len(graph.edges)
        errors.append(res.max_rel_error)
        if mid == "smollm2":
            t0 = time.perf_counter()
            qk = qk_attribution(loaded, TEXT, 15, 3, -1, 5, max_tokens=32)
            out["qk_attribution_s"] = time.perf_counter() - t0
            out["qk_softmax_error"] = qk.softmax_error
    out["max_rel_error"] = max(errors)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch_threads"] = __import__("torch").get_num_threads()
    out["load_avg"] = os.getloadavg()[0]
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
