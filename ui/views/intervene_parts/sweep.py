"""The patching sweep's heatmaps: one builder for the final figures and for the heatmap that fills while the
sweep runs (``ui.jobs.run_on_click(live=...)``; ``patching_sweep`` hands the raw metric so far to its progress
callback, NaN where not yet run, which stays blank)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import streamlit as st

from llmviz.interventions.patching import PatchSetup
from llmviz.interventions.sites import HEAD
from llmviz.report import export_name
from llmviz.viz import interventions as viz
from ui.common import plot
from ui.i18n import fig_labels, t


def patch_figure(scores: np.ndarray, kind: str, tokens_clean: list[str], tokens_corrupt: list[str]):
    """Layer × position (or head) heatmap of the normalised metric of one site kind, labels from the catalogue."""
    return viz.patch_heatmap(
        scores,
        kind,
        tokens_clean,
        tokens_corrupt,
        t(f"intervene.fig_patch_{kind}"),
        t("intervene.axis_head") if kind == HEAD else t("intervene.axis_position"),
        t("intervene.axis_layer"),
        t("intervene.colour_restored"),
        labels=fig_labels(),
    )


def partial_scores(setup: PatchSetup, kinds: Sequence[str], raw: np.ndarray) -> dict[str, np.ndarray]:
    """kind -> normalised metric ``[L, T]`` (heads: ``[L, H]``) from the sweep's raw values ``[n_sites]`` in the
    order of ``patching.sweep_sites`` (kinds in turn, layer-major), NaN where not yet run."""
    L, T, H = len(setup.modules.layers), setup.n_tokens, setup.modules.n_heads
    out, at = {}, 0
    for kind in kinds:
        n = H if kind == HEAD else T
        out[kind] = setup.normalise(raw[at : at + L * n].reshape(L, n))  # [L, n]
        at += L * n
    return out


def filling(scores: dict[str, np.ndarray]) -> str:
    """The site kind the sweep is filling now: the last one with a value."""
    return next((k for k in reversed(list(scores)) if np.isfinite(scores[k]).any()), next(iter(scores)))


def live(setup: PatchSetup, kinds: Sequence[str]) -> Callable:
    """The heatmap of the kind being filled, drawn from the raw values so far (``run_on_click(live=...)``)."""

    def draw(done: int, total: int, raw: np.ndarray, key: str) -> None:
        scores = partial_scores(setup, kinds, raw)
        kind = filling(scores)
        st.markdown(f"**{t(f'intervene.site_{kind}')}**")
        name = export_name("intervene", setup.loaded.facts.model_id, "patching", kind, "partial")
        plot(patch_figure(scores[kind], kind, setup.tokens_clean, setup.tokens_corrupt), key=key, export_name=name)

    return draw
