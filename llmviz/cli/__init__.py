"""Command line for batch work: ``llmviz ...`` or ``python -m llmviz ...``. It parses, calls the audits of
:mod:`llmviz.audits` (and the run store) and prints; no computation lives here.

- :mod:`~llmviz.cli.crows`: ``bias-audit`` (CrowS-Pairs; ``--benchmark stereoset`` goes to bench);
- :mod:`~llmviz.cli.bench`: ``stereoset-eval``, ``seat``, ``runs`` and bias-audit's StereoSet flags;
- :mod:`~llmviz.cli.scale`: the ``--engine`` flags, ``audit-matrix`` and ``app``;
- :mod:`~llmviz.cli.generate`: ``generate`` (``--precision exact|int8``, the deviation from float32 printed).

Exit status: 0 done, 2 an error written for the user (``error: ...`` on stderr), 130 interrupted (Ctrl-C;
a CrowS-Pairs audit keeps its scored pairs for ``--resume``).
"""

from __future__ import annotations

import argparse
import sys

from llmviz.audits.common import AuditInterrupted
from llmviz.cli import bench, crows, generate, mechanism, scale
from llmviz.errors import LlmvizError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmviz", description="llmviz batch tools (also: python -m llmviz).")
    sub = p.add_subparsers(dest="command", required=True)
    audit = crows.register(sub)
    bench.register(sub, audit)  # StereoSet, SEAT and run-store commands
    scale.register(sub)  # --engine flags on the batch commands, audit-matrix, app
    mechanism.register(sub)  # bias-trace
    generate.register(sub)  # generate
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "bias-audit":
            return crows.bias_audit(args)
        if args.command in bench.COMMANDS:
            return bench.dispatch(args)
        if args.command in scale.COMMANDS:
            return scale.dispatch(args)
        if args.command in mechanism.COMMANDS:
            return mechanism.dispatch(args)
        if args.command in generate.COMMANDS:
            return generate.dispatch(args)
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
