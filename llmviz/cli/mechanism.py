"""``llmviz bias-trace``: which heads and MLPs carry a benchmark's bias, and what removing them does on held-out
items (the parser and the command; the audit is :func:`llmviz.audits.mechanism.run_trace`)."""

from __future__ import annotations

import argparse
import sys

from llmviz import engine as E
from llmviz.cli.common import warn

COMMANDS = ("bias-trace",)


def register(sub) -> None:
    t = sub.add_parser(
        "bias-trace",
        help="Find the components that carry a benchmark's bias; test their removal on held-out items.",
        description="Split the items (seeded, stratified by bias type) into a find half and a test half; screen "
        "every attention head and MLP with attribution patching on the find half, confirm the top K by exact "
        "ablation (effect = mean over items of S with the component ablated minus S, bootstrap 95%% CI; negative "
        "= pushes towards the stereotype), ablate the top k in {1,2,4,8} and re-score both halves next to "
        "Self-Debias and a steering vector learned on the find half, with the cost of each correction.",
    )
    t.add_argument("--model", required=True, help="registry id (smollm2, gemma3), model folder or .gguf file")
    t.add_argument("--pairs", default=None, help="CrowS-Pairs-format CSV (default: the starter pairs)")
    t.add_argument("--benchmark", default="crows-pairs", choices=("crows-pairs", "stereoset"))
    t.add_argument("--data", default=None, help="StereoSet dev/test JSON (with --benchmark stereoset)")
    t.add_argument("--out", required=True, action="append", help="report.json and/or report.html (repeatable)")
    t.add_argument("--ablation", default="mean", choices=("mean", "zero"), help="mean (default) or zero ablation")
    t.add_argument("--top-k", type=int, default=20, help="components confirmed by exact ablation (default 20)")
    t.add_argument("--screen", default="atp", choices=("atp", "exact"), help="atp (default) or the exact sweep")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the find/test split (default 0)")
    t.add_argument("--limit", type=int, default=None, help="use only the first N items")
    t.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    t.add_argument("--steer-alpha", type=float, default=2.0, help="strength of the steering baseline (default 2)")
    t.add_argument(
        "--neutral", type=int, default=None, help="neutral sentences for the cost (default: all 111 shipped)"
    )
    t.add_argument(
        "--no-presets", action="store_true", help="skip the cost on the Playground presets' greedy answers (faster)"
    )
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    t.add_argument("--resume", action="store_true", help="continue from <first out>.partial.json")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    E.add_engine_args(t)


def dispatch(args: argparse.Namespace) -> int:
    from llmviz.audits import mechanism as audit  # deferred: torch, pandas (keeps --help fast)

    cfg = audit.TraceAuditConfig(
        model=args.model,
        outs=tuple(args.out),
        pairs=args.pairs,
        benchmark=args.benchmark,
        data=args.data,
        ablation=args.ablation,
        top_k=args.top_k,
        screen=args.screen,
        split_seed=args.split_seed,
        limit=args.limit,
        n_boot=args.n_boot,
        steer_alpha=args.steer_alpha,
        device=args.device,
        engine=E.from_args(args),
        resume=args.resume,
        presets=not args.no_presets,
        n_neutral=args.neutral,
    )
    last = {"stage": None}

    def progress(done: int, total: int, stage: str) -> None:
        if args.quiet:
            return
        if stage != last["stage"] or done == total:
            print(f"{stage}: {done}/{total}", file=sys.stderr)
            last["stage"] = stage

    report = audit.run_trace(cfg, progress=progress)
    audit.finish(cfg, report)
    for w in report.store_warnings:
        warn(w)
    for note in report.result.notes:
        warn(note)
    print(report.summary_line(*cfg.outs))
    return 0
