"""The notebooks in examples/ run offline from top to bottom in the project's venv (nbclient + ipykernel), each in
under 5 minutes, and their outputs hold the views' offline HTML: the bertviz head view's root element, plotly
figures, no script loaded from the network (issue 25)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.ipynb"))
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.I)


def _html_outputs(nb) -> list[str]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "text/html" in data:
                out.append("".join(data["text/html"]))
    return out


def test_three_notebooks_are_there():
    assert [p.name[:2] for p in EXAMPLES] == ["01", "02", "03"]


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LLMVIZ_HOME", str(tmp_path))  # the run store of this test only
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.monotonic() - t0
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < 300
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    html = _html_outputs(nb)
    assert html and not any(REMOTE_SCRIPT.search(h) for h in html)
    joined = "\n".join(html)
    if path.name.startswith("01"):
        assert 'class="llmviz-bertviz" data-view="head"' in joined  # the head view's root element
        assert "requirejs/require.js (vendored" in joined and "plotly" in joined.lower()
    if path.name.startswith("02"):
        assert 'data-view="runs"' in joined and 'data-view="runs_compare"' in joined
    if path.name.startswith("03"):
        assert 'data-view="attribution"' in joined and 'data-view="patching"' in joined and 'data-view="flow"' in joined
