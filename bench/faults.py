"""Faults an attacker or a clumsy user causes (issue 24). Prints one JSON object.

- tracebacks: deeply nested JSON / JSONL handed to the page's parsers (StereoSet, predictions, SEAT) and to the
  CLI (stereoset-eval --gold/--predictions, seat --tests): how many answers were a traceback instead of one line.
- outbound_attempts: DNS lookups and connections tried while the app's model loading meets a hub-like ?model=
  (localhost and shared mode) and the deep files above, under a socket guard (goal 0).
- lost_runs: 4 processes x 50 runs written to one fresh run store at once (goal 0).
- time_to_stop_s: the Training lab's live run with 5,000 stories x 500 epochs and max_seconds=5, in a process
  whose imports are warm as a running app's are (goal <= 7 s).
- kept_pairs_after_interrupt: bias-audit on smollm2 over the starter pairs ten times over, Ctrl-C after 20 s; how
  many scored pairs the partial file keeps (pairs_total: the run's size; 0 kept was the old behaviour).
- load_avg_1m: the machine's load when the bench ran.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEPTH = 100_000
WRITERS, RUNS_EACH = 4, 50


def _deep_json() -> bytes:
    return b'{"version":"1","data":' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def _tracebacks(tmp: Path) -> tuple[int, int]:
    """(tracebacks, cases): the page's parsers and the CLI on deep files."""
    from llmviz.bias.seat import parse_seat
    from llmviz.bias.stereoset import parse_predictions, parse_stereoset
    from llmviz.errors import LlmvizError

    deep = _deep_json()
    deep_jsonl = b"[" * (DEPTH // 2) + b"]" * (DEPTH // 2) + b"\n"
    bad, cases = 0, 0
    for fn, raw in ((lambda r: parse_stereoset(r, "deep.json"), deep), (parse_predictions, deep)):
        cases += 1
        try:
            fn(raw)
        except LlmvizError:
            pass
        except BaseException:  # noqa: BLE001 - what the bench counts
            bad += 1
    cases += 1
    try:
        parse_seat(deep_jsonl, "deep.jsonl")
    except LlmvizError:
        pass
    except BaseException:  # noqa: BLE001
        bad += 1
    (tmp / "deep.json").write_bytes(deep)
    seat_dir = tmp / "seat"
    seat_dir.mkdir()
    (seat_dir / "deep.jsonl").write_bytes(deep_jsonl)
    for args in (
        ["stereoset-eval", "--gold", str(tmp / "deep.json"), "--predictions", str(tmp / "deep.json")],
        ["seat", "--model", "minilm", "--tests", str(seat_dir), "--out", str(tmp / "seat.json")],
    ):
        cases += 1
        proc = subprocess.run([sys.executable, "-m", "llmviz", *args], capture_output=True, text=True, cwd=ROOT)
        bad += "Traceback" in proc.stderr or proc.returncode == 0
    return bad, cases


def _outbound() -> int:
    """Connections tried by the app's model loading for hub-like links, localhost and shared mode."""
    from llmviz import serving
    from llmviz.errors import LlmvizError
    from llmviz.models.loading import load_model

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("no route (bench guard)")

    saved = socket.getaddrinfo, socket.create_connection
    socket.getaddrinfo, socket.create_connection = refuse, refuse
    offline = os.environ.pop("HF_HUB_OFFLINE", None)
    try:
        for shared in (False, True):
            if shared:
                os.environ[serving.SHARED_ENV] = "1"
            for spec, source in (("some-user/some-model", "local"), ("bert-base-uncased", "local")):
                try:
                    load_model(spec, source=source)
                except LlmvizError:
                    pass
            if shared:
                for source in ("auto", "hub"):
                    try:
                        load_model("some-user/some-model", source=source)
                    except LlmvizError:
                        pass
    finally:
        socket.getaddrinfo, socket.create_connection = saved
        os.environ.pop(serving.SHARED_ENV, None)
        if offline is not None:
            os.environ["HF_HUB_OFFLINE"] = offline
    return len(attempts)


def _writer(home: str, worker: int) -> int:
    os.environ["LLMVIZ_HOME"] = home
    os.environ.pop("LLMVIZ_DB_URL", None)
    from llmviz.runs import store

    ok = 0
    for i in range(RUNS_EACH):
        items = [{"key": f"k{j}", "group": "g", "value": float(j)} for j in range(200)]
        try:
            store.record_run("weat", f"bench-{worker}", {"i": i}, items)
            ok += 1
        except Exception:  # noqa: BLE001 - a lost run is what the bench counts
            pass
    return ok


def _lost_runs(tmp: Path) -> tuple[int, float]:
    home = tmp / "store"
    home.mkdir()
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(WRITERS) as pool:
        pool.starmap(_writer, [(str(home), w) for w in range(WRITERS)])
    seconds = time.perf_counter() - t0
    os.environ["LLMVIZ_HOME"] = str(home)
    from llmviz.runs import store

    store.reset_engines()
    recorded = len(store.list_runs(limit=100_000))
    return WRITERS * RUNS_EACH - recorded, seconds


def _time_to_stop() -> float:
    from llmviz.train import experiments

    params = replace(experiments.PRESETS["more_data"], stories=5000, epochs=500, max_seconds=5.0)
    # warm the process as a running app server is (transformers imports its model classes on first use, ~2 s)
    experiments.run_live(replace(experiments.PRESETS["overfit"], stories=8, epochs=1))
    t0 = time.perf_counter()
    experiments.run_live(params)
    return time.perf_counter() - t0


def _interrupt(tmp: Path) -> tuple[int, int]:
    import pandas as pd

    from llmviz.bias.pairs_data import starter_pairs

    frame = pd.concat([starter_pairs().frame] * 10, ignore_index=True)  # long enough to be cut at 20 s
    data = tmp / "pairs.csv"
    frame.to_csv(data, index=False)
    out = tmp / "audit.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmviz", "bias-audit", "--model", "smollm2", "--pairs", str(data), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(20)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    partial = Path(f"{out}.partial.jsonl")
    kept = 0
    if partial.exists():
        kept = sum(1 for line in partial.read_text().splitlines() if line.strip() and '"sha256"' not in line)
    elif out.exists():
        kept = len(json.loads(out.read_text()).get("pairs", []))
    return kept, len(frame)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["LLMVIZ_HOME"] = str(tmp / "home")
        tracebacks, cases = _tracebacks(tmp)
        outbound = _outbound()
        lost, store_s = _lost_runs(tmp)
        stop_s = _time_to_stop()
        kept, total = _interrupt(tmp)
    print(
        json.dumps(
            {
                "tracebacks": tracebacks,
                "deep_file_cases": cases,
                "outbound_attempts": outbound,
                "lost_runs": lost,
                "store_writers": f"{WRITERS} x {RUNS_EACH}",
                "store_seconds": round(store_s, 2),
                "time_to_stop_s": round(stop_s, 2),
                "time_to_stop_goal_s": 7.0,
                "kept_pairs_after_interrupt": kept,
                "pairs_total": total,
                "load_avg_1m": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
