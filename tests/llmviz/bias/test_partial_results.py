"""Results as they come (issue 27): CrowS-Pairs and StereoSet hand the rows scored so far after each chunk, and
the running estimate with its interval, computed by the final's statistics on those rows, equals the final
one when every row is done."""

from __future__ import annotations

import numpy as np
import pytest

from llmviz.bias import pairs as PAIRS
from llmviz.bias import stereoset as SS
from llmviz.bias.pairs_data import starter_pairs
from llmviz.bias.stats import pct_summary


def test_pairs_partials_grow_and_the_running_ci_ends_as_the_final(tiny_llama, one_thread):
    frame = starter_pairs().frame  # 72 pairs: three chunks
    seen = []
    res = PAIRS.score_pairs(tiny_llama, frame, partial=lambda d, n, s: seen.append((d, n, s)))
    assert [(d, n) for d, n, _ in seen] == [(32, 72), (64, 72), (72, 72)]
    for done, _, part in seen:
        assert len(part.table()) == done
        np.testing.assert_array_equal(part.score_more, res.score_more[:done])
        np.testing.assert_array_equal(part.score_less, res.score_less[:done])
    running = pct_summary(seen[-1][2].score_more, seen[-1][2].score_less)
    final = res.summary()
    assert running["ci95"] == final["ci95"] and running["pct_stereotype"] == final["pct_stereotype"]
    first = pct_summary(seen[0][2].score_more, seen[0][2].score_less)
    assert first["n"] == 32 and first["ci95"][0] <= first["pct_stereotype"] <= first["ci95"][1]


def test_stereoset_partials_and_the_running_run_ends_as_the_final(tiny_llama, one_thread, monkeypatch):
    data = SS.illustrative_set()
    seen = []
    monkeypatch.setattr(SS, "ITEMS_PER_CHUNK", 9)  # several chunks from 42 sentences
    run = SS.run_stereoset(tiny_llama, data, n_boot=300, partial=lambda d, n, s: seen.append((d, n, dict(s))))
    assert [d for d, _, _ in seen] == [9, 18, 27, 36, 42] and {n for _, n, _ in seen} == {42}
    assert SS.partial_run(tiny_llama, data, {}) is None
    part = SS.partial_run(tiny_llama, data, seen[0][2], n_boot=300)  # 9 sentences: the first 3 examples
    assert part.results["overall"]["Count"] == 3 and len(part.data.examples()) == 3
    last = SS.partial_run(tiny_llama, data, seen[-1][2], n_boot=300)
    assert last.results == run.results and last.cis == run.cis
    assert last.scores == pytest.approx(run.scores)
