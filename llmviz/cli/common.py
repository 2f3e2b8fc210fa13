"""What the commands share: warnings on stderr, tqdm bars fed by the audits' progress callbacks, and the
bias scorers' ``--precision`` flag."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from llmviz.precision import EXACT, MODES

PRECISION_HELP = (
    "exact (default): float32 throughout, the mode for audits; bf16: the linear layers in bfloat16, faster on CPUs "
    "with AVX-512 BF16 or AMX units (elsewhere refused with the reason); the deviation from float32, measured on "
    "the first item scored again in float32, is reported"
)


def add_precision(parser: argparse.ArgumentParser) -> None:
    """``--precision {exact,bf16}`` (bias-audit, both benchmarks, seat and audit-matrix)."""
    parser.add_argument("--precision", choices=tuple(MODES), default=EXACT, help=PRECISION_HELP)


def warn(msg: str | None) -> None:
    if msg:
        print(f"warning: {msg}", file=sys.stderr)


class Bar:
    """A tqdm bar on stderr fed by ``progress(done, total)`` calls; it opens at the first call."""

    def __init__(self, desc: str, unit: str, quiet: bool = False):
        self.desc, self.unit, self.quiet = desc, unit, quiet
        self.bar, self.done = None, 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=total, initial=done, unit=self.unit, desc=self.desc, disable=self.quiet, file=sys.stderr
            )
        elif done > self.done:
            self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
