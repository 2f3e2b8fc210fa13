"""Run every bench/*.py (except this file) and write their JSON into bench/results.json."""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    results = {}
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run_all.py", "__init__.py"):
            continue
        print(f"running {script.name}…", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=HERE.parent)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
        if proc.returncode != 0 or not lines:
            results[script.stem] = {"error": proc.stderr[-2000:]}
        else:
            results[script.stem] = json.loads(lines[-1])
        print(json.dumps({script.stem: results[script.stem]}), flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
