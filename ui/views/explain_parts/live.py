"""The Explain page's results as they come (``ui.jobs.run_on_click(live=...)``): attribution methods appear one by
one as each finishes, the head-ablation heatmap fills batch by batch (NaN cells, not yet run, stay blank). Each
draws with the builder of the final figure."""

from __future__ import annotations

from typing import Callable

from llmviz.explain.ablation import AblationResult
from llmviz.explain.attribution import Attribution
from llmviz.report import export_name
from llmviz.viz import explain as viz
from ui.common import plot
from ui.i18n import fig_labels


def attributions(model_id: str) -> Callable:
    """The methods finished so far, one row each."""

    def draw(done: int, total: int, results: list[Attribution], key: str) -> None:
        if results:
            name = export_name("explain", model_id, *(r.method for r in results), "partial")
            plot(viz.method_heatmap(results, labels=fig_labels()), key=key, export_name=name)

    return draw


def ablation(model_id: str) -> Callable:
    """Layer × head heatmap of the heads ablated so far."""

    def draw(done: int, total: int, partial: AblationResult, key: str) -> None:
        name = export_name("explain", model_id, "head-ablation", "partial")
        plot(viz.ablation_heatmap(partial, labels=fig_labels()), key=key, export_name=name)

    return draw
