"""The installable package: wheel contents and pins, the `llmviz` console script, `python -m llmviz`,
`llmviz app`, and the engine's local path (shards, order) and its message when Ray is missing."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmviz import engine as E
from llmviz.cli import main

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _pins(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text().splitlines() if x.strip() and not x.startswith("#")]


@pytest.mark.slow
def test_wheel_holds_data_files_pins_and_console_script(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    (whl,) = tmp_path.glob("llmviz-*.whl")
    z = zipfile.ZipFile(whl)
    names = set(z.namelist())
    for f in (
        "llmviz/viz/static/VENDORED.json",
        "llmviz/viz/static/d3/d3.min.js",
        "llmviz/viz/static/bertviz/head_view.js",
        "llmviz/viz/static/requirejs/require.js",
        "llmviz/bias/data/starter_pairs.csv",
        "llmviz/bias/data/weat_sets.json",
        "llmviz/engine.py",
        "llmviz/bias/sharded.py",
    ):
        assert f in names, f
    assert not any(n.startswith(("tests/", "pages/", "ui/")) for n in names)
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    deps = [x.split(": ", 1)[1] for x in meta.splitlines() if x.startswith("Requires-Dist: ")]
    assert [d for d in deps if "extra ==" not in d] == _pins(ROOT / "requirements.txt")  # one source of truth
    assert f'{_pins(ROOT / "requirements-ray.txt")[0]}; extra == "ray"' in deps
    assert f'{_pins(ROOT / "requirements-dev.txt")[0]}; extra == "dev"' in deps
    ep = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "llmviz = llmviz.cli:main" in ep


def test_console_script_and_module_list_the_commands():
    exe = VENV_BIN / "llmviz"
    assert exe.is_file(), "make install puts the llmviz command into .venv/bin (pip install -e .)"
    for cmd in ([str(exe), "--help"], [sys.executable, "-m", "llmviz", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/").stdout
        for sub in ("bias-audit", "seat", "stereoset-eval", "runs", "audit-matrix", "app"):
            assert sub in out, (cmd, sub)
    seat_help = subprocess.run([str(exe), "seat", "--help"], capture_output=True, text=True, timeout=120).stdout
    assert "--engine" in seat_help and "--num-gpus-per-actor" in seat_help and "--address" in seat_help


def test_app_command_runs_streamlit_on_the_checkout(capsys):
    assert main(["app", "--print-command", "--", "--server.port", "8599"]) == 0
    out = capsys.readouterr().out
    assert (
        "-m streamlit run" in out and str(ROOT / "app.py") in out and out.strip().endswith("app.py --server.port 8599")
    )


class _Doubler:  # a factory: picklable, returns the scorer
    def __call__(self):
        return lambda part: [2 * x for x in part]


def test_map_items_local_keeps_order_and_shards():
    seen = []
    got = E.map_items(_Doubler(), list(range(10)), E.LOCAL, shard_size=4, progress=seen.append)
    assert got == [2 * x for x in range(10)] and seen == [4, 4, 2]
    assert E.map_items(_Doubler(), [], shard_size=3) == []
    with pytest.raises(E.EngineError, match="2 results for 3 items"):
        E.map_items(lambda: lambda p: p[:2], [1, 2, 3], shard_size=3)


def test_engine_flags_and_missing_ray_message(monkeypatch, tiny_llama_dir, tmp_path, capsys):
    import argparse

    ns = argparse.Namespace(engine="ray", address="auto", num_gpus_per_actor=1.0, actors=None, ray_cpus=None)
    assert E.from_args(ns) == E.Engine("ray", "auto", 1.0, None, None)
    with pytest.raises(E.EngineError):
        E.from_args(argparse.Namespace(engine="ray", address=None, num_gpus_per_actor=-1, actors=None, ray_cpus=None))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    csv = tmp_path / "p.csv"
    csv.write_text("sent_more,sent_less,stereo_antistereo,bias_type\nA man.,A woman.,stereo,gender\n")
    rc = main(
        [
            "bias-audit",
            "--model",
            str(tiny_llama_dir),
            "--pairs",
            str(csv),
            "--out",
            str(tmp_path / "r.json"),
            "--engine",
            "ray",
            "--quiet",
            "--n-boot",
            "10",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'llmviz[ray]'" in err and "Traceback" not in err
