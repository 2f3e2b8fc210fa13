"""The Bias page's arithmetic (:mod:`llmviz.precision`): the exact/fast choice for CrowS-Pairs, StereoSet and
SEAT scoring, and after a run, which mode ran and, in the fast mode, its deviation against float32 measured on
the run's own first item (the first pair, the first example's sentences, the first SEAT item)."""

from __future__ import annotations

import streamlit as st

from llmviz.precision import BF16, EXACT
from ui.common import precision_choice
from ui.i18n import t
from ui.links import presenter_mode


def choice(key: str, what: str) -> str:
    """Exact (the default, and in presenter mode) or fast for ``what`` ("scores" or "seat"); its help says what
    the fast mode cannot show."""
    return EXACT if presenter_mode() else precision_choice(key, "bias", f"precision_help_{what}")


def kind(base: str, mode: str) -> str:
    """The estimator's kind of work: the fast mode's times are learnt apart from the exact mode's."""
    return base if mode == EXACT else f"{base}_{mode}"


def ran(what: str, precision: str, deviation: float | None, **fmt) -> None:
    """Which mode ran ``what`` ("pairs", "ss", "seat"), with the fast mode's measured deviation."""
    if precision != BF16 or deviation is None:
        st.caption(t("bias.ran_exact"))
        return
    st.info(t(f"bias.ran_bf16_{what}", d=f"{deviation:.2g}", **fmt))
