"""Benchmark commands of ``python -m llmviz`` (registered by :mod:`llmviz.cli`); the audits themselves are
:mod:`llmviz.audits.stereoset` and :mod:`llmviz.audits.seat`:

* ``stereoset-eval --gold DEV.json --predictions PRED.json --out REPORT.json``: re-score a StereoSet prediction
  file (``{"intrasentence": [{"id", "score"}], "intersentence": [...]}``) with the metrics of evaluation.py.
* ``bias-audit --benchmark stereoset --model M --data DEV.json --out REPORT.json [--predictions-out PRED.json]
  [--limit N] [--precision exact|bf16]``: score the sentences with a model, then the same metrics.
* ``seat --model M --tests DIR|FILE... --out REPORT.json [--pooling mean|cls] [--layers all|last] [--n-samples N]
  [--html TABLE.html] [--precision exact|bf16]``: the SEAT suite, per layer.
* ``runs list [--json] | show ID | compare ID1 ID2 | export ID``: the run store.

StereoSet REPORT: ``{"intrasentence": {"<bias_type>": {"Count", "LM Score", "SS Score", "ICAT Score"}, ...,
"overall": {...}}, "intersentence": {...}, "overall": {...}, "ci95": {same layout, [low, high] per score},
"model", "method", "data": {"path", "sha256"}, "versions", "date", "parameters", "run_id"}``.
SEAT REPORT: ``{"model", "pooling", "tests": [{"file", "targ1", "targ2", "attr1", "attr2", "n": [nx, ny, na, nb],
"layers": [{"layer", "effect_size", "p_value", "exact"}]}], "versions", "date", "parameters", "run_id"}``.
With ``--precision bf16`` both reports add ``"precision"`` and ``"deviation"`` (from float32, on the first item),
also shown in the summary line.
Every audit is recorded in the run store; when the store cannot be used the report is still written and a
warning says why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmviz import engine as E
from llmviz.audits.common import write_json
from llmviz.cli.common import Bar, add_precision, warn

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
    add_precision(s)

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


def stereoset_eval(args: argparse.Namespace) -> int:
    from llmviz.audits import stereoset as audit_stereoset  # deferred: the run store (keeps --help fast)

    report = audit_stereoset.evaluate_predictions(args.gold, args.predictions, args.n_boot, args.seed)
    warn(report.store_warning)
    report.write(Path(args.out))
    print(report.summary_line(Path(args.out)))
    return 0


def stereoset_audit(args: argparse.Namespace) -> int:
    """bias-audit --benchmark stereoset."""
    from llmviz.audits import stereoset as audit_stereoset  # deferred: torch and the run store (keeps --help fast)

    cfg = audit_stereoset.StereoSetConfig(
        model=args.model,
        data=args.data,
        outs=tuple(args.out),
        batch_size=args.batch_size,
        limit=args.limit,
        n_boot=args.n_boot,
        seed=args.seed,
        device=args.device,
        engine=E.from_args(args),
        precision=args.precision,
    )
    with Bar("stereoset", "sentence", args.quiet) as bar:
        report = audit_stereoset.run_stereoset(cfg, bar, notice=warn)
    warn(report.store_warning)
    outs = [Path(o) for o in args.out]
    for out in outs:
        report.write(out)
    if args.predictions_out:
        write_json(Path(args.predictions_out), report.predictions_doc())
    print(report.summary_line(outs[0]))
    return 0


def seat(args: argparse.Namespace) -> int:
    from llmviz.audits import seat as audit_seat  # deferred: torch and the run store (keeps --help fast)

    cfg = audit_seat.SeatConfig(
        model=args.model,
        tests=tuple(args.tests),
        pooling=args.pooling,
        layers=args.layers,
        n_samples=args.n_samples,
        seed=args.seed,
        device=args.device,
        engine=E.from_args(args),
        precision=args.precision,
    )
    with Bar("seat", "item", args.quiet) as bar:
        report = audit_seat.run_seat(cfg, bar)
    warn(report.store_warning)
    report.write(Path(args.out))
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(report.html(), encoding="utf-8")
    print(report.summary_line(args.out, *([args.html] if args.html else [])))
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
    from llmviz.runs import store as R  # deferred: SQLAlchemy (keeps --help fast)

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
