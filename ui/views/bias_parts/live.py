"""The Bias page's benchmark runs as they come and what they will cost.

CrowS-Pairs and StereoSet tables grow while the model scores them (``ui.jobs.run_on_click(live=...)``), with the
running estimate and its 95 % interval computed on the rows done so far by the same statistics as the final
figure (percentile bootstrap, same resamples and seed: with every row done they equal the final ones). The
start buttons carry an estimate counted from the model calls the scorers will make (``llmviz.estimate``).
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import streamlit as st

from llmviz.bias import pairs as pair_scoring
from llmviz.bias import seat as seat_files
from llmviz.bias import stereoset
from llmviz.bias.stats import pct_summary
from llmviz.errors import LlmvizError
from llmviz.estimate import estimate, pairs_work, seat_work, stereoset_work
from llmviz.models.loading import LoadedModel
from llmviz.precision import EXACT
from ui.i18n import t
from ui.jobs import remember, remembered
from ui.views.bias_parts.precision import kind as precision_kind


# ---------------------------------------------------------------- CrowS-Pairs
def pairs_metrics(summary: dict) -> None:
    """% stereotype-consistent, its 95 % interval and the number of pairs (final and running)."""
    c1, c2, c3 = st.columns(3)
    c1.metric(t("bias.pct_stereo"), f"{summary['pct_stereotype']:.1f} %")
    c2.metric(t("bias.ci95"), f"{summary['ci95'][0]:.1f} – {summary['ci95'][1]:.1f} %")
    c3.metric(t("bias.n_pairs"), summary["n"])


def pairs(done: int, total: int, scores: pair_scoring.PairScores, key: str) -> None:
    """The pairs scored so far: the running estimate with its interval, and their table."""
    if not done:
        return
    pairs_metrics(pct_summary(scores.score_more, scores.score_less))
    st.dataframe(scores.table(), key=f"{key}_table", hide_index=False)


# ---------------------------------------------------------------- StereoSet
def stereoset_metrics(run: stereoset.StereoSetRun) -> None:
    """SS, LM and ICAT overall with their 95 % intervals (final and running)."""
    o, ci = run.results["overall"], run.cis["overall"]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("benchmarks.ss"), f"{o['SS Score']:.1f}", help=t("benchmarks.ss_help"))
    c2.metric(t("benchmarks.lm"), f"{o['LM Score']:.1f}", help=t("benchmarks.lm_help"))
    c3.metric(t("benchmarks.icat"), f"{o['ICAT Score']:.1f}", help=t("benchmarks.icat_help"))
    st.caption(
        t(
            "benchmarks.ci_line",
            ss=f"{ci['SS Score'][0]:.1f}–{ci['SS Score'][1]:.1f}",
            lm=f"{ci['LM Score'][0]:.1f}–{ci['LM Score'][1]:.1f}",
            icat=f"{ci['ICAT Score'][0]:.1f}–{ci['ICAT Score'][1]:.1f}",
            n=o["Count"],
        )
    )


def stereoset_live(loaded: LoadedModel, data: stereoset.StereoSetData) -> Callable:
    """Draws the examples whose three sentences are scored so far: metrics, intervals and the results table."""

    def draw(done: int, total: int, scores: dict, key: str) -> None:
        run = stereoset.partial_run(loaded, data, scores)
        if run is None:
            return
        stereoset_metrics(run)
        st.dataframe(pd.DataFrame(stereoset.result_rows(run.results, run.cis)), hide_index=True, key=f"{key}_table")

    return draw


# ---------------------------------------------------------------- estimates
def _shapes(action: str, inputs, count: Callable[[], list]) -> list | None:
    """The model calls a run will make (tokenising only), kept for this session and inputs; None when the
    inputs cannot be scored (the run says why)."""
    shapes = remembered(action, inputs)
    if shapes is None:
        try:
            shapes = count()
        except LlmvizError:
            return None
        remember(action, inputs, shapes)
    return shapes


def pairs_estimate(loaded: LoadedModel, frame: pd.DataFrame, sha: str, mode: str = EXACT) -> float | None:
    shapes = _shapes(
        "bias_pairs_shapes", [loaded.spec, sha, len(frame)], lambda: pair_scoring.call_shapes(loaded, frame)
    )
    return None if shapes is None else estimate(loaded, precision_kind("pairs", mode), pairs_work(shapes))


def stereoset_estimate(loaded: LoadedModel, data: stereoset.StereoSetData, mode: str = EXACT) -> float | None:
    inputs = [loaded.spec, data.sha256, len(data.intrasentence), len(data.intersentence)]
    shapes = _shapes("bias_ss_shapes", inputs, lambda: stereoset.call_shapes(loaded, data))
    return None if shapes is None else estimate(loaded, precision_kind("stereoset", mode), stereoset_work(shapes))


def seat_estimate(loaded: LoadedModel, tests: list, mode: str = EXACT) -> float | None:
    inputs = [loaded.spec, [[x.name, x.sets] for x in tests]]
    shapes = _shapes("bias_seat_shapes", inputs, lambda: seat_files.call_shapes(loaded, tests))
    return None if shapes is None else estimate(loaded, precision_kind("seat", mode), seat_work(shapes))
