"""SEAT audit (May et al. 2019): effect size d (ddof = 1) and one-sided permutation p per test file and layer.

Report (:meth:`SeatReport.to_dict`): ``{"model", "pooling", "tests": [{"file", "targ1", "targ2", "attr1", "attr2",
"n": [nx, ny, na, nb], "layers": [{"layer", "effect_size", "p_value", "exact"}]}], "versions", "date",
"parameters", "data_sha256", "model_facts", "run_id"}``; :meth:`SeatReport.html` is the tests × layers table.
A fast mode (``precision="bf16"``): each test entry carries ``"precision"`` and ``"deviation"`` (1 − cosine of its
first item's embedding against float32, max over layers) and the report ``"precision"`` and ``"deviation"`` (the
largest over the tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz import engine as E
from llmviz.audits.common import Counter, Progress, fast_fields, write_json
from llmviz.bias import seat as SEAT
from llmviz.bias.sharded import run_seat_on
from llmviz.errors import LlmvizError
from llmviz.models.loading import load_model
from llmviz.precision import EXACT, check_mode
from llmviz.report import package_versions, provenance, sha256_bytes
from llmviz.runs.record import record_seat_tests


@dataclass(frozen=True)
class SeatConfig:
    """Settings of a SEAT run: ``tests`` are SEAT files and/or folders of them."""

    model: str
    tests: tuple[str, ...]
    pooling: str = "mean"
    layers: str = "all"
    n_samples: int = 10_000
    seed: int = 0
    device: str = "cpu"
    engine: E.Engine = E.LOCAL
    precision: str = EXACT

    def params(self) -> dict[str, Any]:
        return {
            "tests": [str(x) for x in self.tests],
            "pooling": self.pooling,
            "layers": self.layers,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "device": self.device,
            "model": self.model,
            "precision": self.precision,
        }


@dataclass
class SeatReport:
    """A SEAT run (see the module docstring for the JSON layout); ``n_items``: words and sentences embedded."""

    model: str
    pooling: str
    tests: list[dict[str, Any]]
    versions: dict[str, str]
    date: str
    parameters: dict[str, Any]
    data_sha256: str
    model_facts: dict[str, Any]
    run_id: int | None = None
    store_warning: str | None = None
    n_items: int = 0
    precision: str = EXACT
    deviation: float | None = None  # a fast mode: the largest of the tests' deviations

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "pooling": self.pooling,
            "tests": self.tests,
            "versions": self.versions,
            "date": self.date,
            "parameters": self.parameters,
            "data_sha256": self.data_sha256,
            "model_facts": self.model_facts,
            "run_id": self.run_id,
            **fast_fields(self.precision, self.deviation),
        }

    def write(self, out: Path) -> None:
        write_json(out, self.to_dict())

    def html(self) -> str:
        return SEAT.html_table(self.to_dict())

    def summary_line(self, *written: str | Path) -> str:
        fast = SEAT.deviation_line(self.precision, self.deviation)
        fast = f"{fast} · " if fast else ""
        return f"{len(self.tests)} SEAT test(s) · {self.n_items} items · {fast}wrote {', '.join(map(str, written))}"


def run_seat(cfg: SeatConfig, progress: Progress | None = None, loaded=None) -> SeatReport:
    """Every test of ``cfg.tests`` on every layer (or the last) of ``cfg.model``, recorded in the run store."""
    check_mode(cfg.precision)  # unknown, or bf16 on a CPU without its units: one line before any work
    if cfg.n_samples < 1:
        raise LlmvizError("--n-samples must be at least 1.")
    tests = SEAT.load_seat_tests(cfg.tests)
    loaded = loaded or load_model(cfg.model, device=cfg.device)  # a notebook passes its loaded model
    total = sum(sum(t.sizes) for t in tests)
    count = Counter(progress, total)
    entries, s_values = [], []
    for entry, sv in run_seat_on(
        cfg.engine,
        loaded,
        cfg.model,
        cfg.device,
        tests,
        cfg.pooling,
        cfg.layers,
        cfg.n_samples,
        cfg.seed,
        progress=count.tell,
        precision=cfg.precision,
    ):
        # as SEAT.run_suite; here the last-layer s(w, A, B) are kept for the run store
        entries.append(entry)
        s_values.append(sv)
    params = cfg.params()
    digest = sha256_bytes(json.dumps([[t.name, t.sets] for t in tests], sort_keys=True).encode())
    deviation = SEAT.suite_deviation(entries)
    stored = {**params, **fast_fields(cfg.precision, deviation)}  # the deviation too, as the page records it
    rid, warn = record_seat_tests(loaded, entries, s_values, digest, ", ".join(params["tests"]), stored)
    return SeatReport(
        model=loaded.facts.model_id,
        pooling=cfg.pooling,
        tests=entries,
        versions=package_versions(),
        date=provenance()["created"],
        parameters=params,
        data_sha256=digest,
        model_facts=loaded.facts.as_dict(),
        run_id=rid,
        store_warning=warn,
        n_items=total,
        precision=cfg.precision,
        deviation=deviation,
    )
