"""Command line for batch work: ``python -m llmviz bias-audit ...``.

bias-audit scores every minimal pair of a CrowS-Pairs-format CSV with a masked or causal LM and
writes a report (JSON, CSV and/or HTML, chosen by each ``--out`` file's extension). The file is read
in chunks (bounded memory), progress shows with tqdm, and finished chunks are appended to
``<first out>.partial.jsonl`` so an interrupted audit continues with ``--resume``.

JSON layout::

    {"summary": {"n", "pct_stereotype", "ci95": [low, high], "n_ties", "by_bias_type": {type: {...}}},
     "pairs": [{"sent_more", "sent_less", "stereo_antistereo", "bias_type", "score_more", "score_less"}, ...],
     "method", "model", "data": {"path", "sha256", "n_pairs"}, "date", "versions", "parameters"}

Scores are log-likelihoods in natural log (pseudo-log-likelihood over shared tokens for masked LMs).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from llmviz.errors import LlmvizError

OUT_FORMATS = (".json", ".csv", ".html")
log = logging.getLogger(__name__)


def _test_pace_s() -> float:
    """Seconds to pause after each written chunk, for the interrupt tests only (``LLMVIZ_TESTING=1``):
    on a quiet machine the tiny test model would otherwise finish before a SIGINT can land."""
    if os.environ.get("LLMVIZ_TESTING") != "1":
        return 0.0
    try:
        return max(0.0, min(1.0, float(os.environ.get("LLMVIZ_TEST_PACE_S", "0"))))
    except ValueError:
        return 0.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmviz", description="llmviz batch tools (also: python -m llmviz).")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser(
        "bias-audit",
        help="Score a CrowS-Pairs-format CSV and write a report.",
        description="Score every minimal pair (sent_more, sent_less, stereo_antistereo, bias_type) "
        "with a masked LM (CrowS-Pairs pseudo-log-likelihood) or a causal LM (sentence "
        "log-likelihood) and report the % of pairs where the stereotype scores higher.",
    )
    a.add_argument("--model", required=True, help="registry id (smollm2), model folder, .gguf file or hub id")
    a.add_argument("--pairs", default=None, help="CSV with columns sent_more,sent_less,stereo_antistereo,bias_type")
    a.add_argument(
        "--out",
        required=True,
        action="append",
        help="report file; .json, .csv or .html (repeat --out for several formats)",
    )
    a.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    a.add_argument("--chunk-rows", type=int, default=256, help="CSV rows read and scored at a time (default 256)")
    a.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    a.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    a.add_argument("--n-boot", type=int, default=5000, help="bootstrap resamples for the 95%% CI (default 5000)")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    a.add_argument("--resume", action="store_true", help="continue from <first out>.partial.jsonl")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    from llmviz import cli_bench  # StereoSet, SEAT and run-store commands (llmviz/cli_bench.py)

    cli_bench.register(sub, a)
    from llmviz import cli_scale  # --engine flags on the batch commands, audit-matrix, app (llmviz/cli_scale.py)

    cli_scale.register(sub)
    return p


def _count_rows(path: Path) -> int:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        return sum(1 for r in rows if any(c.strip() for c in r))


class AuditInterrupted(Exception):
    """Ctrl-C during bias-audit; ``n`` pairs are kept in the partial file for --resume."""

    def __init__(self, n: int):
        super().__init__(n)
        self.n = n


def _is_header(rec: dict) -> bool:
    return "sha256" in rec and "score_more" not in rec


def _load_partial(path: Path, sha: str, model: str) -> list[dict[str, Any]]:
    """Scored rows of an earlier run. The first line is the header (input file SHA-256 and model);
    a repeated header (left by older builds) is skipped, and a last line cut by an interrupt mid-write
    is dropped from the file, so that appending continues on a clean line."""
    done: list[dict[str, Any]] = []
    if not path.is_file():
        return done
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    header, keep = None, 0  # keep: bytes of whole, valid lines
    for i, line in enumerate(lines):
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError(line)
            except ValueError:
                if i == len(lines) - 1:  # torn last line: drop it
                    break
                raise LlmvizError(f"'{path}' is damaged (line {i + 1}); delete it or drop --resume.") from None
            if _is_header(rec):
                if header is None:
                    header = rec
                    if rec.get("sha256") != sha or rec.get("model") != model:
                        raise LlmvizError(
                            f"'{path}' was made from another data file or model (the file's SHA-256 "
                            "changed since); delete it or drop --resume."
                        )
            elif header is None or not all(isinstance(rec.get(k), (int, float)) for k in ("score_more", "score_less")):
                raise LlmvizError(f"'{path}' is damaged (line {i + 1}); delete it or drop --resume.")
            else:
                done.append(rec)
        keep += len(line) + 1
    if keep < len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
    return done


def _partial_rows(path: Path) -> int:
    """Scored rows in a partial file (0 when missing or unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return sum(1 for line in fh if line.strip() and '"score_more"' in line)
    except OSError:
        return 0


def write_html(report: dict[str, Any], path: Path) -> None:
    """Standalone offline HTML: provenance, summary chart (plotly inlined) and the escaped per-pair table."""
    import html

    import pandas as pd

    from llmviz.viz.bias import pairs_summary

    fig = pairs_summary(report["summary"])
    chart = fig.to_html(include_plotlyjs=True, full_html=False)
    by_type = pd.DataFrame(
        [
            {
                "bias_type": k,
                "n": v["n"],
                "pct_stereotype": v["pct_stereotype"],
                "ci95_low": v["ci95"][0],
                "ci95_high": v["ci95"][1],
            }
            for k, v in report["summary"]["by_bias_type"].items()
        ]
    )
    s = report["summary"]
    meta = {
        "model": report["model"]["model_id"],
        "method": report["method"],
        "data": report["data"]["path"],
        "sha256": report["data"]["sha256"],
        "date": report["date"],
        "versions": ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>llmviz bias audit</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style></head><body>"
        f"<h1>Bias audit: {html.escape(meta['model'])}</h1>"
        f"<p><b>{s['pct_stereotype']:.2f} %</b> of {s['n']} pairs prefer the more-stereotypical sentence "
        f"(95 % bootstrap CI {s['ci95'][0]:.2f}–{s['ci95'][1]:.2f} %; 50 % = no preference; "
        "not a proof of fairness either way).</p>"
        f"<table>{rows}</table>{chart}<h2>By bias type</h2>{by_type.to_html(index=False, escape=True)}"
        f"<h2>Pairs</h2>{pd.DataFrame(report['pairs']).to_html(index=True, escape=True)}</body></html>"
    )
    path.write_text(doc, encoding="utf-8")


def bias_audit(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from llmviz.bias.pairs_data import COLUMNS, file_sha256, iter_pairs_file
    from llmviz.bias.stats import summary_by_type
    from llmviz.models.loading import load_model
    from llmviz.report import frame_csv, package_versions, provenance

    if getattr(args, "benchmark", "crows-pairs") == "stereoset":
        from llmviz.cli_bench import stereoset_audit

        return stereoset_audit(args)
    if not args.pairs:
        raise LlmvizError("bias-audit needs --pairs CSV (CrowS-Pairs), or --benchmark stereoset --data JSON.")
    outs = [Path(o) for o in args.out]
    bad = [str(o) for o in outs if o.suffix.lower() not in OUT_FORMATS]
    if bad:
        raise LlmvizError(f"Unknown report format for {', '.join(bad)}; use {', '.join(OUT_FORMATS)}.")
    if args.batch_size < 1 or args.chunk_rows < 1:
        raise LlmvizError("--batch-size and --chunk-rows must be at least 1.")
    if args.limit is not None and args.limit < 1:
        raise LlmvizError(f"--limit must be at least 1 (the number of pairs to score; got {args.limit}).")
    data = Path(args.pairs).expanduser()
    if not data.is_file():
        raise LlmvizError(f"No CSV file at '{data}'. Check --pairs.")
    sha = file_sha256(data)
    total = _count_rows(data)
    if args.limit is not None:
        total = min(total, args.limit)
    from llmviz import engine as E
    from llmviz.bias.sharded import CROWS_SHARD, CrowsScorer

    engine = E.from_args(args)
    loaded = load_model(args.model, device=args.device)
    scorer = CrowsScorer(args.model, args.device, args.batch_size)
    partial = outs[0].with_name(outs[0].name + ".partial.jsonl")
    done = _load_partial(partial, sha, args.model) if args.resume else []
    if not args.resume and partial.exists():
        partial.unlink()
    records = list(done)
    notices: list[str] = []
    method = None
    bar = tqdm(total=total, initial=len(done), unit="pair", desc="bias-audit", disable=args.quiet, file=sys.stderr)
    seen = 0
    pace = _test_pace_s()
    try:
        with open(partial, "a", encoding="utf-8") as sink:
            if sink.tell() == 0:  # header once, at the top of a new file (a resumed file has it)
                sink.write(json.dumps({"sha256": sha, "model": args.model}) + "\n")
                sink.flush()
            time.sleep(pace)
            for chunk in iter_pairs_file(data, args.chunk_rows, notices):
                if args.limit is not None:
                    chunk = chunk.head(max(0, args.limit - seen))
                start, seen = seen, seen + len(chunk)
                skip = max(0, len(done) - start)  # rows already scored in an earlier run
                todo = chunk.iloc[skip:]
                if len(todo):
                    # --engine local|ray (llmviz/engine.py): same 32-pair shards either way, results in order
                    scored = E.map_items(
                        scorer,
                        todo[list(COLUMNS)].to_dict("records"),
                        engine,
                        shard_size=CROWS_SHARD,
                        progress=bar.update,
                        local_fn=scorer.bind(loaded),
                    )
                    for rec in scored:
                        records.append(rec)
                        sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    sink.flush()
                    time.sleep(pace)
                if args.limit is not None and seen >= args.limit:
                    break
    except BaseException as err:  # failed or interrupted: keep the partial file only if it holds scored rows
        bar.close()
        n = _partial_rows(partial)
        if n == 0:
            partial.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt):
            raise AuditInterrupted(n) from None
        raise
    bar.close()
    if not records:
        partial.unlink(missing_ok=True)
        raise LlmvizError(f"'{data}' has no pairs to score.")
    frame = pd.DataFrame(records)
    params = {
        "pairs": str(data),
        "batch_size": args.batch_size,
        "chunk_rows": args.chunk_rows,
        "limit": args.limit,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "device": args.device,
        "model": args.model,
    }
    prov = provenance(params, loaded.facts)
    report = {
        "summary": summary_by_type(
            frame["score_more"], frame["score_less"], frame["bias_type"], args.n_boot, args.seed
        ),
        "pairs": records,
        "method": method or ("mlm_pll" if loaded.facts.kind == "masked_lm" else "causal_loglik"),
        "model": loaded.facts.as_dict(),
        "data": {"path": str(data), "sha256": sha, "n_pairs": len(records)},
        "date": prov["created"],
        "versions": package_versions(),
        "parameters": params,
        "notices": notices,
    }
    from llmviz.runs.record import record_crows  # the run store; a store failure only warns

    report["run_id"], store_warning = record_crows(loaded, records, report["summary"], sha, str(data), params)
    if store_warning:
        print(f"warning: {store_warning}", file=sys.stderr)
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        suffix = out.suffix.lower()
        if suffix == ".json":
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        elif suffix == ".csv":
            table = frame[list(COLUMNS) + ["score_more", "score_less"]].copy()
            table["difference"] = table["score_more"] - table["score_less"]
            frame_csv(table, out)  # formula-like text cells neutralised; the JSON keeps raw values
        else:
            write_html(report, out)
    partial.unlink(missing_ok=True)
    s = report["summary"]
    print(
        f"{s['n']} pairs · stereotype preferred in {s['pct_stereotype']:.2f} % "
        f"(95 % CI {s['ci95'][0]:.2f}–{s['ci95'][1]:.2f}) · wrote {', '.join(map(str, outs))}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "bias-audit":
            return bias_audit(args)
        from llmviz import cli_bench

        if args.command in cli_bench.COMMANDS:
            return cli_bench.dispatch(args)
        from llmviz import cli_scale

        if args.command in cli_scale.COMMANDS:
            return cli_scale.dispatch(args)
    except LlmvizError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except AuditInterrupted as err:
        print(f"interrupted after {err.n} pairs; continue with --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
