"""``llmviz bias-audit`` (CrowS-Pairs): the parser and the command; the audit is
:func:`llmviz.audits.crows.run_crows`. ``--benchmark stereoset`` hands over to :mod:`llmviz.cli.bench`."""

from __future__ import annotations

import argparse

from llmviz import engine as E
from llmviz.cli import bench
from llmviz.cli.common import Bar, add_precision, warn


def register(sub) -> argparse.ArgumentParser:
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
    a.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="sequences per forward pass (default 32); pairs are scored and saved for --resume batch-size/2 at a "
        "time, so Ctrl-C loses at most that many. Another batch size groups and pads sentences differently, which "
        "moves float32 sums: per-pair scores then differ by about 1e-5",
    )
    a.add_argument(
        "--chunk-rows",
        type=int,
        default=256,
        help="CSV rows read at a time (default 256; bounds memory); the scores do not depend on it",
    )
    a.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    a.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    a.add_argument("--n-boot", type=int, default=5000, help="bootstrap resamples for the 95%% CI (default 5000)")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    a.add_argument(
        "--resume",
        action="store_true",
        help="continue from <first out>.partial.jsonl (in the --precision it was scored in)",
    )
    add_precision(a)
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    return a


def bias_audit(args: argparse.Namespace) -> int:
    if getattr(args, "benchmark", "crows-pairs") == "stereoset":
        return bench.stereoset_audit(args)
    from llmviz.audits import crows as audit_crows  # deferred: pandas, torch and the run store (keeps --help fast)

    cfg = audit_crows.CrowsConfig(
        model=args.model,
        pairs=args.pairs,
        outs=tuple(args.out),
        batch_size=args.batch_size,
        chunk_rows=args.chunk_rows,
        limit=args.limit,
        device=args.device,
        n_boot=args.n_boot,
        seed=args.seed,
        resume=args.resume,
        engine=E.from_args(args),
        precision=args.precision,
    )
    with Bar("bias-audit", "pair", args.quiet) as bar:
        report = audit_crows.run_crows(cfg, bar)
    warn(report.store_warning)
    report.write(cfg.out_paths)
    print(report.summary_line(*cfg.out_paths))
    return 0
