"""Picklable scorer factories for :func:`llmviz.engine.map_items` (one per batch benchmark).

Each factory is a frozen dataclass naming the model and the scoring settings. Calling it loads the model
(once per Ray actor) and returns ``fn(shard) -> list`` with one result per item; ``.bind(loaded)`` returns
the same scorer over a model already loaded in this process (the local engine). The shard sizes below
match the chunks the scoring functions already use, so sharding never changes which sentences share a
forward pass.

Each scorer has a ``precision`` (a mode of :mod:`llmviz.precision`, last so positional construction still works):
the items are scored on the model that mode runs on (:func:`llmviz.precision.on_precision`). A fast run's
deviation from float32 is measured once per run by the caller (:func:`run_stereoset_on`, the CrowS-Pairs audit),
not once per shard; SEAT measures it per test (``run_test_full``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from llmviz.bias import stereoset as SS
from llmviz.bias.pairs import PAIRS_PER_CHUNK, score_pairs
from llmviz.bias.seat import run_test_full
from llmviz.bias.stereoset import ITEMS_PER_CHUNK, score_items
from llmviz.engine import map_items
from llmviz.models.loading import load_model
from llmviz.precision import EXACT, on_precision

CROWS_SHARD = PAIRS_PER_CHUNK  # pairs per shard
STEREOSET_SHARD = ITEMS_PER_CHUNK  # sentences per shard
SEAT_SHARD = 1  # SEAT tests per shard


@dataclass(frozen=True)
class _ModelScorer:
    model: str
    device: str = "cpu"

    def __call__(self) -> Callable[[list], list]:
        return self.bind(load_model(self.model, device=self.device))

    def bind(self, loaded) -> Callable[[list], list]:
        raise NotImplementedError


@dataclass(frozen=True)
class CrowsScorer(_ModelScorer):
    """Items: CrowS-Pairs rows as dicts (the four columns). Results: ``PairScores.records()`` rows."""

    batch_size: int = 32
    precision: str = EXACT

    def bind(self, loaded):
        import pandas as pd

        # the pairs scored on the mode's model (the same numbers as score_pairs(..., precision=)), without the
        # float32 re-scoring of each shard's first pair: the audit measures the deviation once, on its first pair
        run_on = on_precision(loaded, self.precision)

        def fn(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return score_pairs(run_on, pd.DataFrame(rows), batch_size=self.batch_size).records()

        return fn


@dataclass(frozen=True)
class StereoSetScorer(_ModelScorer):
    """Items: ``stereoset.SentenceItem``. Results: one float score per sentence."""

    batch_size: int = 32
    precision: str = EXACT

    def bind(self, loaded):
        return lambda items: score_items(loaded, items, self.batch_size, precision=self.precision)


@dataclass(frozen=True)
class SeatScorer(_ModelScorer):
    """Items: ``seat.SeatTest``. Results: ``seat.run_test_full`` tuples (report entry, last-layer s values)."""

    pooling: str = "mean"
    layers: str = "all"
    n_samples: int = 10_000
    seed: int = 0
    precision: str = EXACT

    def bind(self, loaded):
        return lambda tests: [
            run_test_full(loaded, t, self.pooling, self.layers, self.n_samples, self.seed, precision=self.precision)
            for t in tests
        ]


def run_stereoset_on(
    engine,
    loaded,
    spec: str,
    device: str,
    data,
    batch_size: int,
    n_boot: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    precision: str = EXACT,
):
    """``stereoset.run_stereoset`` with the sentence scoring sent through ``engine`` (same numbers); a fast
    ``precision`` is measured against float32 on the first example (``stereoset.with_precision``)."""
    pairs = data.sentence_items()
    scorer = StereoSetScorer(spec, device, batch_size, precision)
    vals = map_items(
        scorer,
        [it for _, it in pairs],
        engine,
        shard_size=STEREOSET_SHARD,
        progress=progress,
        local_fn=scorer.bind(loaded),
    )
    scores = {sid: s for (sid, _), s in zip(pairs, vals, strict=True)}
    run = SS.evaluated_run(data, scores, SS.method_name(loaded), loaded.facts, n_boot, seed)
    return SS.with_precision(run, loaded, precision, batch_size)


def run_seat_on(
    engine,
    loaded,
    spec: str,
    device: str,
    tests: list,
    pooling: str,
    layers: str,
    n_samples: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    precision: str = EXACT,
) -> list[tuple]:
    """``seat.run_test_full`` per test, tests spread over ``engine``; ``progress(n)`` hears items (words) done.
    A fast ``precision``: each entry carries "precision" and its first item's "deviation"."""
    scorer = SeatScorer(spec, device, pooling, layers, n_samples, seed, precision)
    if engine.kind == "local":  # per-item progress inside each test, as before
        return [
            run_test_full(loaded, t, pooling, layers, n_samples, seed, progress=progress, precision=precision)
            for t in tests
        ]
    done = [0]

    def per_test(n: int) -> None:  # shards are single tests, finished in order
        for t in tests[done[0] : done[0] + n]:
            if progress:
                progress(sum(t.sizes))
        done[0] += n

    return map_items(scorer, tests, engine, shard_size=SEAT_SHARD, progress=per_test)


@dataclass(frozen=True)
class MechanismExactScorer(_ModelScorer):
    """Items: ``mechanism.Component`` s. Results: each component's item scores ``S`` (ablated alone) on
    ``items`` (the trace's find half), as the local :func:`mechanism.exact_effects` computes them."""

    items: tuple = ()
    means: Any = None
    mode: str = "mean"

    def bind(self, loaded):
        from llmviz.bias import mechanism

        def fn(comps: list) -> list:
            _, s_abl = mechanism.exact_effects(loaded, list(self.items), comps, self.means, self.mode)
            return [row.tolist() for row in s_abl]

        return fn
