"""Benchmark commands of ``python -m llmviz`` (registered by llmviz.cli):

* ``stereoset-eval --gold DEV.json --predictions PRED.json --out REPORT.json``: re-score a StereoSet prediction
  file (``{"intrasentence": [{"id", "score"}], "intersentence": [...]}``) with the metrics of evaluation.py.
* ``bias-audit --benchmark stereoset --model M --data DEV.json --out REPORT.json [--predictions-out PRED.json]
  [--limit N]``: score the sentences with a model, then the same metrics.
* ``seat --model M --tests DIR|FILE... --out REPORT.json [--pooling mean|cls] [--layers all|last] [--n-samples N]
  [--html TABLE.html]``: the SEAT suite, per layer.
* ``runs list [--json] | show ID | compare ID1 ID2 | export ID``: the run store.

StereoSet REPORT: ``{"intrasentence": {"<bias_type>": {"Count", "LM Score", "SS Score", "ICAT Score"}, ...,
"overall": {...}}, "intersentence": {...}, "overall": {...}, "ci95": {same layout, [low, high] per score},
"model", "method", "data": {"path", "sha256"}, "versions", "date", "parameters", "run_id"}``.
SEAT REPORT: ``{"model", "pooling", "tests": [{"file", "targ1", "targ2", "attr1", "attr2", "n": [nx, ny, na, nb],
"layers": [{"layer", "effect_size", "p_value", "exact"}]}], "versions", "date", "parameters", "run_id"}``.
Every audit is recorded in the run store; when the store cannot be used the report is still written and a
warning says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmviz.errors import LlmvizError

COMMANDS = ("stereoset-eval", "seat", "runs")


def register(sub, bias_audit_parser) -> None:
    """Add the benchmark subcommands and bias-audit's StereoSet flags."""
    a = bias_audit_parser
    a.add_argument(
        "--benchmark",
        choices=("crows-pairs", "stereoset"),
        default="crows-pairs",
        help="crows-pairs (default; --pairs CSV) or stereoset (--data JSON)",
    )
    a.add_argument("--data", default=None, help="StereoSet dev/test JSON (with --benchmark stereoset)")
    a.add_argument(
        "--predictions-out",
        default=None,
        help="with --benchmark stereoset: also write the per-sentence scores in StereoSet's prediction format",
    )

    e = sub.add_parser(
        "stereoset-eval",
        help="Score a StereoSet predictions file against the gold file.",
        description="SS, LM and ICAT exactly as StereoSet's evaluation.py, with bootstrap CIs.",
    )
    e.add_argument("--gold", required=True, help="StereoSet dev/test JSON")
    e.add_argument("--predictions", required=True, help='{"intrasentence": [{"id", "score"}], "intersentence": [...]}')
    e.add_argument("--out", required=True, help="report .json")
    e.add_argument("--n-boot", type=int, default=5000, help="bootstrap resamples (default 5000)")
    e.add_argument("--seed", type=int, default=0)

    s = sub.add_parser(
        "seat",
        help="Run SEAT test files (May et al. 2019) on every layer of a model.",
        description="Effect size d (ddof = 1) and one-sided permutation p per test and layer.",
    )
    s.add_argument("--model", required=True, help="registry id, model folder, .gguf file or hub id")
    s.add_argument("--tests", required=True, nargs="+", help="SEAT test files and/or folders of them")
    s.add_argument("--out", required=True, help="report .json")
    s.add_argument(
        "--pooling",
        choices=("mean", "cls"),
        default="mean",
        help="mean over the attention mask, special tokens included (default), or the first token",
    )
    s.add_argument("--layers", choices=("all", "last"), default="all")
    s.add_argument("--n-samples", type=int, default=10_000, help="random partitions when exact is too many")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--html", default=None, help="also write the tests x layers table as HTML")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("runs", help="List, show, compare and export recorded audit runs.")
    rs = r.add_subparsers(dest="runs_command", required=True)
    ls = rs.add_parser("list", help="runs, newest first")
    ls.add_argument("--json", action="store_true", help="print JSON")
    sh = rs.add_parser("show", help="one run's metadata and summary")
    sh.add_argument("id", type=int)
    cp = rs.add_parser("compare", help="paired difference per item (b - a) with bootstrap CIs per group")
    cp.add_argument("id1", type=int)
    cp.add_argument("id2", type=int)
    cp.add_argument("--n-boot", type=int, default=5000)
    cp.add_argument("--seed", type=int, default=0)
    ex = rs.add_parser("export", help="one run with every item as JSON")
    ex.add_argument("id", type=int)
    ex.add_argument("--out", default=None, help="file (default: stdout)")


def dispatch(args: argparse.Namespace) -> int:
    return {"stereoset-eval": stereoset_eval, "seat": seat, "runs": runs}[args.command](args)


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


def _warn(msg: str | None) -> None:
    if msg:
        print(f"warning: {msg}", file=sys.stderr)


def _stereoset_report(run, model: Any, params: dict) -> dict[str, Any]:
    from llmviz.report import provenance

    prov = provenance(params)
    return {
        **run.results,
        "ci95": run.cis,
        "model": model,
        "method": run.method,
        "data": {
            "path": run.data.source,
            "sha256": run.data.sha256,
            "n_examples": {"intrasentence": len(run.data.intrasentence), "intersentence": len(run.data.intersentence)},
        },
        "versions": prov["versions"],
        "date": prov["created"],
        "parameters": params,
    }


def _print_stereoset(rep: dict, out: Path) -> None:
    o = rep["overall"]
    print(
        f"{o['Count']} examples · LM {o['LM Score']:.2f} · SS {o['SS Score']:.2f} · ICAT {o['ICAT Score']:.2f} "
        f"· wrote {out}"
    )


def stereoset_eval(args: argparse.Namespace) -> int:
    from llmviz.bias import stereoset as SS
    from llmviz.runs.store import try_record

    data = SS.load_stereoset(args.gold)
    pred = Path(args.predictions).expanduser()
    if not pred.is_file():
        raise LlmvizError(f"No predictions file at '{pred.name}'. Check --predictions.")
    scores = SS.parse_predictions(pred.read_bytes())
    from llmviz.report import sha256_bytes

    run = SS.StereoSetRun(
        data,
        scores,
        "predictions_file",
        SS.evaluate(data, scores),
        SS.bootstrap_cis(data, scores, args.n_boot, args.seed),
    )
    params = {
        "gold": str(args.gold),
        "predictions": str(pred),
        "predictions_sha256": sha256_bytes(pred.read_bytes()),
        "n_boot": args.n_boot,
        "seed": args.seed,
    }
    rep = _stereoset_report(run, {"model_id": f"predictions:{pred.name}"}, params)
    items = [
        {
            "key": o.example.id,
            "group": f"{o.example.split}/{o.example.bias_type}",
            "value": 100.0 * o.pro,
            "extra": {"scores": o.scores, "related": o.related},
        }
        for o in SS.outcomes(data, scores)
    ]
    rid, warn = try_record(
        kind="stereoset",
        model=f"predictions:{pred.name}",
        summary={"results": run.results, "ci95": run.cis, "method": run.method},
        items=items,
        data_sha256=data.sha256,
        data_path=data.source,
        parameters=params,
    )
    _warn(warn)
    rep["run_id"] = rid
    _write_json(Path(args.out), rep)
    _print_stereoset(rep, Path(args.out))
    return 0


def stereoset_audit(args: argparse.Namespace) -> int:
    """bias-audit --benchmark stereoset."""
    from tqdm import tqdm

    from llmviz.bias import stereoset as SS
    from llmviz.models.loading import load_model
    from llmviz.runs.record import record_stereoset

    if not args.data:
        raise LlmvizError("--benchmark stereoset needs --data DEV.json (the StereoSet dev or test file).")
    outs = [Path(o) for o in args.out]
    if any(o.suffix.lower() != ".json" for o in outs):
        raise LlmvizError("--benchmark stereoset writes a .json report; give --out REPORT.json.")
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise LlmvizError("--batch-size and --limit must be at least 1.")
    data = SS.load_stereoset(args.data).head(args.limit)
    for n in data.notices:
        _warn(n)
    loaded = load_model(args.model, device=args.device)
    n_sent = sum(len(ex.sentences) for ex in data.examples())
    bar = tqdm(total=n_sent, unit="sentence", desc="stereoset", disable=args.quiet, file=sys.stderr)
    from llmviz.bias.sharded import run_stereoset_on  # --engine local|ray (llmviz/engine.py)
    from llmviz.engine import from_args

    run = run_stereoset_on(
        from_args(args),
        loaded,
        args.model,
        args.device,
        data,
        args.batch_size,
        args.n_boot,
        args.seed,
        progress=bar.update,
    )
    bar.close()
    params = {
        "benchmark": "stereoset",
        "data": str(args.data),
        "model": args.model,
        "batch_size": args.batch_size,
        "limit": args.limit,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "device": args.device,
    }
    rep = _stereoset_report(run, loaded.facts.as_dict(), params)
    rid, warn = record_stereoset(loaded, run, params)
    _warn(warn)
    rep["run_id"] = rid
    for out in outs:
        _write_json(out, rep)
    if args.predictions_out:
        _write_json(Path(args.predictions_out), SS.predictions_doc(data, run.scores))
    _print_stereoset(rep, outs[0])
    return 0


def seat(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from llmviz.bias import seat as SEAT
    from llmviz.models.loading import load_model
    from llmviz.report import package_versions, provenance, sha256_bytes
    from llmviz.runs.record import record_seat_tests

    if args.n_samples < 1:
        raise LlmvizError("--n-samples must be at least 1.")
    tests = SEAT.load_seat_tests(args.tests)
    loaded = load_model(args.model, device=args.device)
    total = sum(sum(t.sizes) for t in tests)
    bar = tqdm(total=total, unit="item", desc="seat", disable=args.quiet, file=sys.stderr)
    from llmviz.bias.sharded import run_seat_on  # --engine local|ray (llmviz/engine.py)
    from llmviz.engine import from_args

    entries, s_values = [], []
    for entry, sv in run_seat_on(
        from_args(args),
        loaded,
        args.model,
        args.device,
        tests,
        args.pooling,
        args.layers,
        args.n_samples,
        args.seed,
        progress=bar.update,
    ):
        # as SEAT.run_suite; here the last-layer s(w, A, B) are kept for the run store
        entries.append(entry)
        s_values.append(sv)
    bar.close()
    params = {
        "tests": [str(x) for x in args.tests],
        "pooling": args.pooling,
        "layers": args.layers,
        "n_samples": args.n_samples,
        "seed": args.seed,
        "device": args.device,
        "model": args.model,
    }
    digest = sha256_bytes(json.dumps([[t.name, t.sets] for t in tests], sort_keys=True).encode())
    rid, warn = record_seat_tests(loaded, entries, s_values, digest, ", ".join(params["tests"]), params)
    _warn(warn)
    rep = {
        "model": loaded.facts.model_id,
        "pooling": args.pooling,
        "tests": entries,
        "versions": package_versions(),
        "date": provenance()["created"],
        "parameters": params,
        "data_sha256": digest,
        "model_facts": loaded.facts.as_dict(),
        "run_id": rid,
    }
    _write_json(Path(args.out), rep)
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(SEAT.html_table(rep), encoding="utf-8")
    print(f"{len(entries)} SEAT test(s) · {total} items · wrote {args.out}" + (f", {args.html}" if args.html else ""))
    return 0


def _fmt_summary(run: dict) -> str:
    s = run["summary"]
    if run["kind"] == "stereoset" and "results" in s:
        o = s["results"]["overall"]
        return f"SS {o['SS Score']:.1f} LM {o['LM Score']:.1f} ICAT {o['ICAT Score']:.1f}"
    if run["kind"] == "crows_pairs" and s.get("pct_stereotype") is not None:
        return f"{s['pct_stereotype']:.1f} % stereotype (n={s['n']})"
    if run["kind"] in ("seat", "weat") and s.get("tests"):
        return "; ".join(f"{t['file']}: d={t['last']['effect_size']:+.2f}" for t in s["tests"][:3])
    return json.dumps(s, default=str)[:60]


def runs(args: argparse.Namespace) -> int:
    from llmviz.runs import store as R

    if args.runs_command == "list":
        rows = R.list_runs()
        if args.json:
            print(
                json.dumps(
                    [{k: r[k] for k in ("id", "kind", "model", "data_sha256", "date", "summary")} for r in rows],
                    indent=1,
                    ensure_ascii=False,
                    default=str,
                )
            )
        else:
            for r in rows:
                print(
                    f"{r['id']:>5}  {r['date']}  {r['kind']:<15} {r['model'][:40]:<40} "
                    f"{(r['data_sha256'] or '')[:12]:<12}  {_fmt_summary(r)}"
                )
            if not rows:
                print("no runs recorded yet")
    elif args.runs_command == "show":
        print(json.dumps(R.get_run(args.id, with_items=False), indent=1, ensure_ascii=False, default=str))
    elif args.runs_command == "compare":
        cmp = R.compare_runs(args.id1, args.id2, args.n_boot, args.seed)
        cmp.pop("items")
        print(json.dumps(cmp, indent=1, ensure_ascii=False, default=str))
    else:
        doc = json.dumps(R.get_run(args.id), indent=1, ensure_ascii=False, default=str)
        if args.out:
            Path(args.out).write_text(doc, encoding="utf-8")
        else:
            print(doc)
    return 0
