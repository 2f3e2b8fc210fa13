"""The Explain page's arithmetic (:mod:`llmviz.precision`): the exact/fast choice for integrated gradients and
head ablation, and after a run, which mode ran and, in the fast mode, its deviation against float32 measured on
the run's own first batch."""

from __future__ import annotations

import streamlit as st

from llmviz.explain.ablation import AblationResult
from llmviz.precision import BF16, EXACT
from ui.common import precision_choice
from ui.i18n import t
from ui.links import presenter_mode


def choice(key: str, what: str) -> str:
    """Exact (the default, and in presenter mode) or fast for ``what`` ("ig" or "ablation"); its help says
    what the fast mode cannot show."""
    return EXACT if presenter_mode() else precision_choice(key, "explain", f"precision_help_{what}")


def ig_ran(params: dict) -> None:
    """Integrated gradients' mode, from its result's ``params`` (``deviation``: relative to the largest
    contribution of the first batch of steps)."""
    if params.get("precision", EXACT) != BF16 or params.get("deviation") is None:
        st.caption(t("explain.ran_exact"))
        return
    n = min(int(params["batch_size"]), int(params["steps"]))
    st.info(t("explain.ran_bf16_ig", d=f"{100 * params['deviation']:.3g}", n=n))


def ablation_ran(abl: AblationResult) -> None:
    """Head ablation's mode (``deviation``: max |Δ score| on the first batch of ablations)."""
    if abl.precision != BF16 or abl.deviation is None:
        st.caption(t("explain.ran_exact"))
        return
    n = min(abl.batch_size, abl.head_delta.size + (0 if abl.layer_delta is None else abl.layer_delta.size) + 1)
    st.info(t("explain.ran_bf16_ablation", d=f"{abl.deviation:.2g}", n=n))
