"""Scale-out commands of ``llmviz`` (registered by llmviz.cli):

* ``--engine local|ray --address ADDR --num-gpus-per-actor G --actors N --ray-cpus N`` on the batch commands
  (``bias-audit`` for CrowS-Pairs and StereoSet, ``seat``); see llmviz/engine.py.
* ``audit-matrix --models m1,m2 --benchmarks crows:FILE,stereoset:FILE,seat:DIR --out DIR [--engine ray]``:
  every model × benchmark, resumable; see llmviz/matrix.py.
* ``app [STREAMLIT ARGS...]``: start the Streamlit app of this checkout (``streamlit run app.py``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

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
    root = Path(__file__).resolve().parent.parent
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


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "app":
        return app_command(args)
    from llmviz.matrix import audit_matrix

    return audit_matrix(args)
