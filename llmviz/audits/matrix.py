"""Every model × benchmark, each cell a normal audit, one summary table (``llmviz audit-matrix``).

Benchmarks: ``crows:PAIRS.csv`` (:func:`llmviz.audits.crows.run_crows`), ``stereoset:DEV.json``
(:func:`llmviz.audits.stereoset.run_stereoset`), ``seat:DIR_OR_FILE`` (:func:`llmviz.audits.seat.run_seat`).
Each cell calls the same audit function as its command (so it is recorded in the run store the same way)
and writes ``OUT/cells/<cell>.json``: the audit's report plus a ``matrix_cell`` marker, written atomically. A
cell whose report is already there (and names the same model and data) is skipped, so a killed matrix
continues where it stopped (a half-scored CrowS-Pairs cell also continues from its ``.partial.jsonl``). The
summary (``OUT/summary.csv`` and ``OUT/summary.html``) has one row per model × benchmark with its headline
metric and 95 % CI:

* crows: % of pairs where the more-stereotypical sentence scores higher (50 = no preference), bootstrap CI;
* stereoset: overall SS score (50 = no preference), bootstrap CI over examples;
* seat: effect size d at the last layer per test file, with the permutation p (no CI: SEAT reports p).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from llmviz import engine as E
from llmviz.audits.common import Notice, Progress
from llmviz.audits.crows import CrowsConfig, CrowsReport, run_crows
from llmviz.audits.seat import SeatConfig, SeatReport, run_seat
from llmviz.audits.stereoset import StereoSetConfig, StereoSetReport, run_stereoset
from llmviz.errors import InputError
from llmviz.precision import EXACT, check_mode
from llmviz.report import frame_csv, provenance

KINDS = ("crows", "stereoset", "seat")
SUMMARY_COLUMNS = (
    "model",
    "benchmark",
    "data",
    "metric",
    "value",
    "ci95_low",
    "ci95_high",
    "n",
    "p_value",
    "run_id",
    "cell",
    "precision",
)
Report = CrowsReport | StereoSetReport | SeatReport


@dataclass(frozen=True)
class Benchmark:
    kind: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{Path(self.path).name}"


@dataclass(frozen=True)
class Cell:
    """One model on one benchmark in one arithmetic. An exact cell keeps the name and marker it had before
    fast modes existed (earlier matrices continue); a fast cell's name and marker name its mode, so an exact
    cell is never taken for a fast one, nor the other way round."""

    model: str
    bench: Benchmark
    precision: str = EXACT

    @property
    def name(self) -> str:
        mode = "" if self.precision == EXACT else f"__{self.precision}"
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{Path(self.model).name}__{self.bench.kind}{mode}")[-80:]
        ident = f"{self.model}\0{self.bench.kind}\0{self.bench.path}" + (f"\0{self.precision}" if mode else "")
        key = hashlib.sha1(ident.encode()).hexdigest()[:8]
        return f"{slug}__{key}"

    @property
    def marker(self) -> dict[str, str]:
        marker = {"model": self.model, "benchmark": self.bench.kind, "path": self.bench.path}
        return marker if self.precision == EXACT else {**marker, "precision": self.precision}


@dataclass(frozen=True)
class MatrixConfig:
    """Settings of a matrix: the audits' settings shared by every cell; ``out``: the output folder."""

    models: tuple[str, ...]
    benchmarks: tuple[Benchmark, ...]
    out: Path
    batch_size: int = 32
    limit: int | None = None
    n_boot: int = 5000
    n_samples: int = 10_000
    seat_pooling: str = "mean"
    seed: int = 0
    device: str = "cpu"
    engine: E.Engine = E.LOCAL
    precision: str = EXACT  # llmviz.precision.MODES, for every cell

    @property
    def cells(self) -> list[Cell]:
        return [Cell(m, b, self.precision) for m in self.models for b in self.benchmarks]

    def params(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "benchmarks": [f"{b.kind}:{b.path}" for b in self.benchmarks],
            "limit": self.limit,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "device": self.device,
            "engine": self.engine.kind,
            "precision": self.precision,
        }


@dataclass
class MatrixReport:
    """``rows``: the summary table's rows (:data:`SUMMARY_COLUMNS`); ``csv`` / ``html``: where it was written."""

    rows: list[dict[str, Any]]
    n_cells: int
    csv: Path
    html: Path


def parse_models(text: str) -> list[str]:
    models = [m.strip() for m in (text or "").split(",") if m.strip()]
    if not models:
        raise InputError("--models needs at least one model id or path, comma-separated (e.g. smollm2,minilm).")
    return list(dict.fromkeys(models))


def parse_benchmarks(text: str) -> list[Benchmark]:
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, path = part.partition(":")
        if not sep or kind not in KINDS or not path:
            raise InputError(
                f"Benchmark '{part}' is not KIND:PATH with KIND one of {', '.join(KINDS)} "
                "(e.g. crows:pairs.csv,stereoset:dev.json,seat:tests/)."
            )
        if not Path(path).expanduser().exists():
            raise InputError(f"No file or folder at '{path}' for benchmark {kind}.")
        out.append(Benchmark(kind, path))
    if not out:
        raise InputError("--benchmarks needs at least one KIND:PATH (crows, stereoset or seat).")
    return list(dict.fromkeys(out))


def cell_done(path: Path, cell: Cell) -> dict[str, Any] | None:
    """The finished cell report, or None (missing, half-written or from another model/data)."""
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: a cell file nested too deeply
        return None
    if not isinstance(rep, dict) or rep.get("matrix_cell") != cell.marker:
        return None
    return rep


def run_cell(
    cell: Cell, out: Path, cfg: MatrixConfig, progress: Progress | None = None, notice: Notice | None = None
) -> tuple[Report, dict[str, Any]]:
    """Run one cell's audit and write its report with the ``matrix_cell`` marker (atomically: a cell file
    without the marker is run again). Returns the report and the document written."""
    kind = cell.bench.kind
    report: Report
    if kind == "crows":
        crows = CrowsConfig(
            cell.model,
            cell.bench.path,
            (str(out),),
            batch_size=cfg.batch_size,
            chunk_rows=256,
            limit=cfg.limit,
            device=cfg.device,
            n_boot=cfg.n_boot,
            seed=cfg.seed,
            resume=True,
            engine=cfg.engine,
            precision=cell.precision,
        )
        report = run_crows(crows, progress)
    elif kind == "stereoset":
        stereo = StereoSetConfig(
            cell.model,
            cell.bench.path,
            (str(out),),
            batch_size=cfg.batch_size,
            limit=cfg.limit,
            n_boot=cfg.n_boot,
            seed=cfg.seed,
            device=cfg.device,
            engine=cfg.engine,
            precision=cell.precision,
        )
        report = run_stereoset(stereo, progress, notice)
    else:
        seat = SeatConfig(
            cell.model,
            (cell.bench.path,),
            pooling=cfg.seat_pooling,
            layers="all",
            n_samples=cfg.n_samples,
            seed=cfg.seed,
            device=cfg.device,
            engine=cfg.engine,
            precision=cell.precision,
        )
        report = run_seat(seat, progress)
    doc = {**report.to_dict(), "matrix_cell": cell.marker}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(out)  # the marker lands atomically: a cell without it is run again
    if isinstance(report, CrowsReport) and report.partial is not None:
        report.partial.unlink(missing_ok=True)
    return report, doc


def headline_rows(cell: Cell, rep: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "model": cell.model,
        "benchmark": cell.bench.kind,
        "data": Path(cell.bench.path).name,
        "run_id": rep.get("run_id"),
        "cell": cell.name,
        "p_value": None,
        "precision": cell.precision,
    }
    if cell.bench.kind == "crows":
        s = rep["summary"]
        return [
            {
                **base,
                "metric": "pct_stereotype",
                "value": s["pct_stereotype"],
                "ci95_low": s["ci95"][0],
                "ci95_high": s["ci95"][1],
                "n": s["n"],
            }
        ]
    if cell.bench.kind == "stereoset":
        o, ci = rep["overall"], rep.get("ci95", {}).get("overall", {}).get("SS Score", [None, None])
        return [
            {
                **base,
                "metric": "SS Score",
                "value": o["SS Score"],
                "ci95_low": ci[0],
                "ci95_high": ci[1],
                "n": o["Count"],
            }
        ]
    rows = []
    for t in rep["tests"]:
        last = t["layers"][-1]
        rows.append(
            {
                **base,
                "data": t["file"],
                "metric": f"effect_size (layer {last['layer']})",
                "value": last["effect_size"],
                "ci95_low": None,
                "ci95_high": None,
                "n": sum(t["n"]),
                "p_value": last["p_value"],
            }
        )
    return rows


def write_summary(rows: list[dict[str, Any]], out_dir: Path, params: dict[str, Any]) -> tuple[Path, Path]:
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    csv_path, html_path = out_dir / "summary.csv", out_dir / "summary.html"
    frame_csv(frame, csv_path)
    prov = provenance(params)
    meta = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in {"date": prov["created"], **params}.items()
    )
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>llmviz audit matrix</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style></head><body>"
        "<h1>Audit matrix</h1><p>One row per model × benchmark: CrowS-Pairs % stereotype preferred and "
        "StereoSet SS score (50 = no preference; bootstrap 95 % CI), SEAT effect size d at the last layer "
        "(permutation p). Each measures preferences on its own test sentences; none proves a model fair.</p>"
        f"<table>{meta}</table><h2>Results</h2>{frame.to_html(index=False, escape=True, na_rep='')}"
        "</body></html>"
    )
    html_path.write_text(doc, encoding="utf-8")
    return csv_path, html_path


def run_matrix(
    cfg: MatrixConfig,
    *,
    on_cell: Callable[[int, int, Cell, bool], None] | None = None,
    on_report: Callable[[Cell, Path, Report], None] | None = None,
    progress: Callable[[str], Progress | None] | None = None,
    notice: Notice | None = None,
) -> MatrixReport:
    """Run every cell not finished earlier, then write the summary. Callbacks: ``on_cell(k, n, cell, skipped)``
    before each cell (k from 1); ``on_report(cell, path, report)`` after a cell ran; ``progress(kind)`` gives the
    ``progress(done, total)`` callback of one cell's audit; ``notice`` hears the data files' notices."""
    check_mode(cfg.precision)  # an unknown mode, or one this CPU lacks: one message before any work
    out_dir = Path(cfg.out).expanduser()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    cells = cfg.cells
    rows: list[dict[str, Any]] = []
    for k, cell in enumerate(cells, 1):
        path = out_dir / "cells" / f"{cell.name}.json"
        rep = cell_done(path, cell)
        if on_cell is not None:
            on_cell(k, len(cells), cell, rep is not None)
        if rep is None:
            report, rep = run_cell(cell, path, cfg, progress(cell.bench.kind) if progress else None, notice)
            if on_report is not None:
                on_report(cell, path, report)
        rows += headline_rows(cell, rep)
    csv_path, html_path = write_summary(rows, out_dir, cfg.params())
    return MatrixReport(rows, len(cells), csv_path, html_path)
