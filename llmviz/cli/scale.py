"""Scale-out commands of ``llmviz`` (registered by :mod:`llmviz.cli`):

* ``--engine local|ray --address ADDR --num-gpus-per-actor G --actors N --ray-cpus N`` on the batch commands
  (``bias-audit`` for CrowS-Pairs and StereoSet, ``seat``); see llmviz/engine.py.
* ``audit-matrix --models m1,m2 --benchmarks crows:FILE,stereoset:FILE,seat:DIR --out DIR [--engine ray]``:
  every model × benchmark, resumable; see :mod:`llmviz.audits.matrix`.
* ``app [STREAMLIT ARGS...]``: start the Streamlit app of this checkout (``streamlit run app.py``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from llmviz import engine as E
from llmviz.cli.common import Bar, add_precision, warn
from llmviz.engine import add_engine_args
from llmviz.errors import LlmvizError

COMMANDS = ("audit-matrix", "app")
BATCH_COMMANDS = ("bias-audit", "seat")


def register(sub) -> None:
    for name in BATCH_COMMANDS:
        if name in sub.choices:
            add_engine_args(sub.choices[name])

    m = sub.add_parser(
        "audit-matrix",
        help="Every model × benchmark (CrowS-Pairs, StereoSet, SEAT), resumable.",
        description="Run each model on each benchmark (recorded in the run store like the single "
        "commands) and write summary.csv / summary.html with the headline metric and "
        "95%% CI per cell. Finished cells are skipped when run again.",
    )
    m.add_argument("--models", required=True, help="comma-separated registry ids, folders or .gguf files")
    m.add_argument(
        "--benchmarks",
        required=True,
        help="comma-separated KIND:PATH with KIND crows (CSV), stereoset (JSON) or seat (folder/file)",
    )
    m.add_argument("--out", required=True, help="output folder (cells/ + summary.csv + summary.html)")
    m.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    m.add_argument("--limit", type=int, default=None, help="CrowS-Pairs / StereoSet: only the first N items")
    m.add_argument("--n-boot", type=int, default=5000, help="bootstrap resamples (default 5000)")
    m.add_argument("--n-samples", type=int, default=10_000, help="SEAT random partitions (default 10000)")
    m.add_argument("--seat-pooling", choices=("mean", "cls"), default="mean")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    m.add_argument("--quiet", action="store_true", help="no progress bars")
    add_precision(m)
    add_engine_args(m)

    a = sub.add_parser(
        "app",
        help="Start the Streamlit app of this checkout.",
        description="Runs `streamlit run app.py` from the checkout that holds this llmviz package; "
        "arguments after -- go to streamlit (e.g. llmviz app -- --server.port 8502).",
    )
    a.add_argument("--print-command", action="store_true", help="print the command instead of running it")
    a.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="after --: passed to streamlit run")


def app_command(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]  # llmviz/cli/scale.py -> the checkout
    app = root / "app.py"
    if not app.is_file():
        raise LlmvizError(
            "`llmviz app` starts the app from a checkout (app.py beside the llmviz package); this "
            "llmviz is installed without one. Clone the repository and run `make run` there."
        )
    extra = list(args.streamlit_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), *extra]
    if args.print_command:
        print(" ".join(cmd))
        return 0
    return subprocess.call(cmd, cwd=root)


def audit_matrix(args: argparse.Namespace) -> int:
    from llmviz.audits import matrix as M  # deferred: pandas, torch and the run store (keeps --help fast)

    models = M.parse_models(args.models)
    benches = M.parse_benchmarks(args.benchmarks)
    cfg = M.MatrixConfig(
        models=tuple(models),
        benchmarks=tuple(benches),
        out=Path(args.out),
        batch_size=args.batch_size,
        limit=args.limit,
        n_boot=args.n_boot,
        n_samples=args.n_samples,
        seat_pooling=args.seat_pooling,
        seed=args.seed,
        device=args.device,
        engine=E.from_args(args),  # bad engine settings fail before any work
        precision=args.precision,
    )
    bars: list[Bar] = []
    names = {"crows": ("bias-audit", "pair"), "stereoset": ("stereoset", "sentence"), "seat": ("seat", "item")}

    def on_cell(k: int, n: int, cell, skipped: bool) -> None:
        note = ": done earlier, skipped" if skipped else ""
        print(f"[{k}/{n}] {cell.model} × {cell.bench.label}{note}", file=sys.stderr)

    def progress(kind: str) -> Bar:
        bars.append(Bar(*names[kind], quiet=args.quiet))
        return bars[-1]

    def on_report(cell, path: Path, report) -> None:
        bars[-1].close()
        warn(report.store_warning)
        print(report.summary_line(path))

    try:
        result = M.run_matrix(cfg, on_cell=on_cell, on_report=on_report, progress=progress, notice=warn)
    finally:
        for bar in bars:
            bar.close()
    print(f"{result.n_cells} cell(s) · wrote {result.csv}, {result.html}")
    return 0


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "app":
        return app_command(args)
    return audit_matrix(args)
