"""``llmviz audit-matrix``: every model × benchmark, each cell a normal audit, one summary table.

Benchmarks: ``crows:PAIRS.csv`` (bias-audit, CrowS-Pairs), ``stereoset:DEV.json`` (bias-audit --benchmark
stereoset), ``seat:DIR_OR_FILE`` (seat). Each cell runs the same code as its command (so it is recorded in
the run store the same way) and writes ``OUT/cells/<cell>.json``; a cell whose report is already there (and
names the same model and data) is skipped, so a killed matrix continues where it stopped (a half-scored
CrowS-Pairs cell also continues from its ``.partial.jsonl``). The summary (``OUT/summary.csv`` and
``OUT/summary.html``) has one row per model × benchmark with its headline metric and 95 % CI:

* crows: % of pairs where the more-stereotypical sentence scores higher (50 = no preference), bootstrap CI;
* stereoset: overall SS score (50 = no preference), bootstrap CI over examples;
* seat: effect size d at the last layer per test file, with the permutation p (no CI: SEAT reports p).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz.errors import InputError

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
)


@dataclass(frozen=True)
class Benchmark:
    kind: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{Path(self.path).name}"


@dataclass(frozen=True)
class Cell:
    model: str
    bench: Benchmark

    @property
    def name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{Path(self.model).name}__{self.bench.kind}")[-80:]
        key = hashlib.sha1(f"{self.model}\0{self.bench.kind}\0{self.bench.path}".encode()).hexdigest()[:8]
        return f"{slug}__{key}"


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


def _done(path: Path, cell: Cell) -> dict[str, Any] | None:
    """The finished cell report, or None (missing, half-written or from another model/data)."""
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rep, dict) or rep.get("matrix_cell") != {
        "model": cell.model,
        "benchmark": cell.bench.kind,
        "path": cell.bench.path,
    }:
        return None
    return rep


def _cell_args(cell: Cell, out: Path, args: argparse.Namespace) -> argparse.Namespace:
    common = {
        "model": cell.model,
        "device": args.device,
        "seed": args.seed,
        "quiet": args.quiet,
        "engine": args.engine,
        "address": args.address,
        "num_gpus_per_actor": args.num_gpus_per_actor,
        "actors": args.actors,
        "ray_cpus": args.ray_cpus,
    }
    if cell.bench.kind == "crows":
        return argparse.Namespace(
            **common,
            pairs=cell.bench.path,
            out=[str(out)],
            batch_size=args.batch_size,
            chunk_rows=256,
            limit=args.limit,
            n_boot=args.n_boot,
            resume=True,
            benchmark="crows-pairs",
            data=None,
            predictions_out=None,
        )
    if cell.bench.kind == "stereoset":
        return argparse.Namespace(
            **common,
            data=cell.bench.path,
            out=[str(out)],
            batch_size=args.batch_size,
            limit=args.limit,
            n_boot=args.n_boot,
            benchmark="stereoset",
            pairs=None,
            predictions_out=None,
        )
    return argparse.Namespace(
        **common,
        tests=[cell.bench.path],
        out=str(out),
        pooling=args.seat_pooling,
        layers="all",
        n_samples=args.n_samples,
        html=None,
    )


def run_cell(cell: Cell, out: Path, args: argparse.Namespace) -> None:
    from llmviz import cli, cli_bench

    ns = _cell_args(cell, out, args)
    if cell.bench.kind == "crows":
        cli.bias_audit(ns)
    elif cell.bench.kind == "stereoset":
        cli_bench.stereoset_audit(ns)
    else:
        cli_bench.seat(ns)
    rep = json.loads(out.read_text(encoding="utf-8"))
    rep["matrix_cell"] = {"model": cell.model, "benchmark": cell.bench.kind, "path": cell.bench.path}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(rep, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(out)  # the marker lands atomically: a cell without it is run again


def headline_rows(cell: Cell, rep: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "model": cell.model,
        "benchmark": cell.bench.kind,
        "data": Path(cell.bench.path).name,
        "run_id": rep.get("run_id"),
        "cell": cell.name,
        "p_value": None,
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
    import pandas as pd

    from llmviz.report import frame_csv, provenance

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


def audit_matrix(args: argparse.Namespace) -> int:
    from llmviz import engine as E

    models = parse_models(args.models)
    benches = parse_benchmarks(args.benchmarks)
    E.from_args(args)  # bad engine settings fail before any work
    out_dir = Path(args.out).expanduser()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    cells = [Cell(m, b) for m in models for b in benches]
    rows: list[dict[str, Any]] = []
    for k, cell in enumerate(cells, 1):
        path = out_dir / "cells" / f"{cell.name}.json"
        rep = _done(path, cell)
        if rep is None:
            print(f"[{k}/{len(cells)}] {cell.model} × {cell.bench.label}", file=sys.stderr)
            run_cell(cell, path, args)
            rep = _done(path, cell)
        else:
            print(f"[{k}/{len(cells)}] {cell.model} × {cell.bench.label}: done earlier, skipped", file=sys.stderr)
        rows += headline_rows(cell, rep)
    params = {
        "models": models,
        "benchmarks": [f"{b.kind}:{b.path}" for b in benches],
        "limit": args.limit,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "device": args.device,
        "engine": args.engine,
    }
    csv_path, html_path = write_summary(rows, out_dir, params)
    print(f"{len(cells)} cell(s) · wrote {csv_path}, {html_path}")
    return 0
