"""Local vs Ray: CrowS-Pairs starter pairs x BENCH_SCALE_REPEAT (default 10) with smollm2. Prints one JSON object.

local_s: scoring in this process (torch's default threads). ray_startup_s: start a local Ray (2 CPUs) and
bring up 2 actors that each load the model (one warm-up pair each). ray_s: the same pairs over the 2 actors
(one torch thread each). max_abs_diff: largest |local - ray| over all per-pair scores (natural log);
same_summary: the CrowS summary (%, CI, per type) of both runs is equal. Both runs cut the pairs into the
same 32-pair shards, so they score the same batches. On 2 shared cores Ray cannot be faster: the point is
the identical result and the overhead. BENCH_DEVICE=cuda (or auto) for a GPU box; load_avg_1m beside.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPEAT = int(os.environ.get("BENCH_SCALE_REPEAT", "10"))
DEVICE = os.environ.get("BENCH_DEVICE", "cpu")
ACTORS = 2


def main() -> None:
    import pandas as pd

    from llmviz import engine as E
    from llmviz.bias.pairs_data import COLUMNS, starter_pairs
    from llmviz.bias.sharded import CROWS_SHARD, CrowsScorer
    from llmviz.bias.stats import summary_by_type
    from llmviz.models.loading import load_model

    frame = pd.concat([starter_pairs().frame] * REPEAT, ignore_index=True)
    rows = frame[list(COLUMNS)].to_dict("records")
    scorer = CrowsScorer("smollm2", DEVICE, 32)
    loaded = load_model("smollm2", device=DEVICE)
    t0 = time.perf_counter()
    local = E.map_items(scorer, rows, E.LOCAL, shard_size=CROWS_SHARD, local_fn=scorer.bind(loaded))
    local_s = time.perf_counter() - t0

    engine = E.Engine("ray", actors=ACTORS, num_cpus=ACTORS)
    t0 = time.perf_counter()
    E.ensure_ray(engine)
    E.map_items(scorer, rows[:ACTORS], engine, shard_size=1)  # each actor loads the model
    ray_startup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    dist = E.map_items(scorer, rows, engine, shard_size=CROWS_SHARD)
    ray_s = time.perf_counter() - t0
    E.shutdown()

    diff = max(
        max(abs(a["score_more"] - b["score_more"]), abs(a["score_less"] - b["score_less"]))
        for a, b in zip(local, dist, strict=True)
    )

    def summ(recs):
        f = pd.DataFrame(recs)
        return summary_by_type(f["score_more"], f["score_less"], f["bias_type"], 1000, 0)

    print(
        json.dumps(
            {
                "n_pairs": len(rows),
                "device": DEVICE,
                "actors": ACTORS,
                "local_s": round(local_s, 2),
                "ray_s": round(ray_s, 2),
                "ray_startup_s": round(ray_startup_s, 2),
                "max_abs_diff": diff,
                "same_summary": summ(local) == summ(dist),
                "pairs_per_s_local": round(len(rows) / local_s, 2),
                "pairs_per_s_ray": round(len(rows) / ray_s, 2),
                "load_avg_1m": os.getloadavg()[0],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
