"""Results as they come and estimates on the pages (issue 27): the patching heatmap a stopped sweep finished
(NaN cells blank, "partial" caption, kept on later reruns), and the estimate on the Intervene, CrowS-Pairs and
StereoSet start buttons."""

from __future__ import annotations

import base64
import json
import re

import numpy as np

from llmviz.errors import LlmvizError
from llmviz.interventions import patching as P
from tests.fixtures.apptest_util import assert_ok, open_page, texts

CLEAN, CORRUPT = "the cat sat on the mat", "the dog sat on the mat"
ESTIMATE = re.compile(r"\(about \d+ s on this machine\)$")


def _array(z) -> np.ndarray:
    """A plotly array from a chart's spec: a list, or a typed array {dtype, bdata, shape} (plotly ≥ 6)."""
    if isinstance(z, dict):
        shape = [int(x) for x in str(z.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array(z, dtype=float)


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_a_stopped_sweep_keeps_its_partial_heatmap_and_the_button_has_an_estimate(tiny_llama_dir, kinds, monkeypatch):
    done = 5

    def stopped_sweep(setup, kinds, batch_size, progress, precision):  # 5 sites run, then Stop
        L, T, H = len(setup.modules.layers), setup.n_tokens, setup.modules.n_heads
        raw = np.full(len(P.sweep_sites(L, T, H, kinds)), np.nan)
        raw[:done] = setup.m_corrupt
        progress(done, len(raw), raw)
        raise LlmvizError("Stopped.")

    monkeypatch.setattr(P, "patching_sweep", stopped_sweep)
    at = open_page("pages/intervene.py", str(tiny_llama_dir), query={"section": "patching", "text": CLEAN})
    at.text_input(key="iv_corrupt_next_token").input(CORRUPT).run()
    assert ESTIMATE.search(_button(at, "iv_run_patch").label)
    _button(at, "iv_run_patch").click().run()
    for _ in range(2):  # the run that stopped, then a later rerun without a click
        assert_ok(at)
        (fig,) = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
        z = _array(fig["data"][0]["z"])  # resid: [L, T], NaN (null) where not yet run
        assert np.isnan(z).sum() == z.size - done and (z[0, :done] == 0).all()
        assert f"Partial result: {done} of " in texts(at)
        at.run()


def test_pairs_and_stereoset_buttons_show_their_estimates(tiny_llama_dir, kinds):
    at = open_page("pages/bias.py", str(tiny_llama_dir), query={"section": "pairs"})
    assert ESTIMATE.search(_button(at, "bias_pairs_run").label)
    _button(at, "bias_pairs_run").click().run()
    assert_ok(at)
    assert "Partial result" not in texts(at) and any(m.label == "95 % bootstrap CI" for m in at.metric)
    at = open_page("pages/bias.py", str(tiny_llama_dir), query={"section": "stereoset"})
    assert ESTIMATE.search(_button(at, "bias_ss_run").label)
