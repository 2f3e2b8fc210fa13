"""Results as they come (issue 27): head ablation hands the result so far after each batch (NaN where not yet
run; the last equals the final), attribution methods are handed over one by one as each finishes."""

from __future__ import annotations

import numpy as np

from llmviz.explain.ablation import ablation_problem, head_ablation
from llmviz.explain.attribution import attribute_all
from llmviz.explain.targets import Target, build_problem

TEXT = "the doctor said that"


def test_ablation_partials_fill_in_and_end_as_the_final(tiny_llama, one_thread):
    problem = ablation_problem(tiny_llama, TEXT, Target("next_token"))
    seen = []
    final = head_ablation(problem, whole_layers=True, batch_size=3, progress=lambda d, n, r: seen.append((d, n, r)))
    first_done, total, first = seen[0]
    assert total == final.head_delta.size + final.layer_delta.size + 1 and first_done == 3
    assert np.isnan(first.head_delta).sum() == final.head_delta.size - 3  # row-major: L0 h0..h2 done
    np.testing.assert_array_equal(first.head_delta.flat[:3], final.head_delta.flat[:3])
    done, _, last = seen[-1]
    assert done == total and [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    np.testing.assert_array_equal(last.head_delta, final.head_delta)
    np.testing.assert_array_equal(last.layer_delta, final.layer_delta)


def test_attribution_methods_come_one_by_one(tiny_llama, one_thread):
    problem = build_problem(tiny_llama, TEXT, Target("next_token"))
    methods = ["grad_x_input", "occlusion", "attention_rollout"]
    order = []
    out = attribute_all(
        problem,
        methods,
        progress=lambda d, n, name: order.append(("progress", d, n, name)),
        each=lambda r: order.append(("each", r.method)),
    )
    assert order == [x for i, m in enumerate(methods) for x in (("each", m), ("progress", i + 1, 3, m))]
    assert [r.method for r in out] == methods
