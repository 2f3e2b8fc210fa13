"""Streamlit side of the Learn content: concept cards, the guided tour on the Learn page, and
the tour controls in the sidebar of every other page.

The content itself (which cards, which links, which steps) is plain data in ``llmviz.learn``;
the texts are in the ``learn`` catalogues.
"""

from __future__ import annotations

import streamlit as st

from ui.i18n import LANG_KEY, lang, t
from ui.learn_content import (
    CARDS,
    DEFAULT_HOME_SECTION,
    HOME_SECTIONS,
    PAGE_FILES,
    SECTIONS,
    TOUR,
    Card,
    Link,
    clamp_step,
)
from ui.links import copy_link, link_for, presenter_mode, qp, url_state

TOUR_STEP_KEY = "tour_step"  # 1-based step, kept for the whole session
TOUR_ACTIVE_KEY = "tour_active"  # True once the teacher opened a tour step's live view
SECTION_KEY = "home_section"


def nav_params(link: Link) -> dict[str, str]:
    """Query params for opening ``link``: its own plus the language when it is not English, so the
    URL of the new page keeps it (presenter and contrast are URL-bound toggles and follow by themselves)."""
    extra = {LANG_KEY: lang()} if lang() != "en" else {}
    return {**link.query(), **extra}


def page_title(page: str) -> str:
    return t(f"app.page_{page}")


def link_help(link: Link) -> str:
    return t("learn.link_help", page=page_title(link.page), link=link_for(link.page, dict(link.params)))


def render_card(card: Card) -> None:
    """One concept card: title, 2–5 sentences, the formula with its symbols, a link to the live view."""
    with st.container(border=True, key=f"card_{card.id}"):
        st.markdown(f"#### {t(card.key('title'))}")
        st.markdown(t(card.key("body")))
        if card.formula:
            st.latex(card.formula)
            st.markdown(f"**{t('learn.formula_symbols')}**")
            st.markdown(t(card.key("symbols")))
        st.page_link(
            card.link.file,
            label=t(card.key("link")),
            icon=":material/play_circle:",
            query_params=nav_params(card.link),
            help=link_help(card.link),
        )


def render_cards(section: str) -> None:
    ids = SECTIONS[section]
    st.caption(t(f"learn.section_{section}_intro"))
    n_cols = 1 if presenter_mode() else 2
    cols = st.columns(n_cols)
    for i, cid in enumerate(ids):
        with cols[i % n_cols]:
            render_card(CARDS[cid])


def current_step() -> int:
    if TOUR_STEP_KEY not in st.session_state:
        st.session_state[TOUR_STEP_KEY] = clamp_step(qp("step", 1))
    return clamp_step(st.session_state[TOUR_STEP_KEY])


def go_to_step(step: int) -> None:
    """Callback: move the tour to ``step`` and keep the URL in step (reload and copy keep it)."""
    step = clamp_step(step)
    st.session_state[TOUR_STEP_KEY] = step
    st.query_params["section"] = "tour"
    st.query_params["step"] = str(step)


def open_step(step: int) -> None:
    """Start (or continue) the tour at ``step`` and open its live view."""
    st.session_state[TOUR_STEP_KEY] = clamp_step(step)
    st.session_state[TOUR_ACTIVE_KEY] = True
    link = TOUR[clamp_step(step) - 1].link
    st.switch_page(link.file, query_params=nav_params(link))


@st.fragment
def render_tour() -> None:
    """The guided tour on the Learn page: progress, narration, question, live view, prev/next,
    and the link to this step. A fragment, so Next/Previous redraw only the tour (fast on a
    projector laptop)."""
    n, i = len(TOUR), current_step()
    step = TOUR[i - 1]
    st.markdown(t("learn.tour_intro", n=n))
    st.progress(i / n, text=t("learn.tour_step", i=i, n=n))
    with st.container(border=True, key="tour_panel"):
        st.markdown(f"### {t(step.key('title'))}")
        st.markdown(t(step.key("narration")))
        st.info(f"**{t('learn.tour_question')}** {t(step.key('question'))}", icon=":material/forum:")
        st.caption(t("learn.tour_view", page=page_title(step.link.page)))
    cols = st.columns([1, 2, 1])
    cols[0].button(
        t("learn.tour_prev"),
        key="home_tour_prev",
        icon=":material/arrow_back:",
        on_click=go_to_step,
        args=(i - 1,),
        disabled=i == 1,
        use_container_width=True,
    )
    if cols[1].button(
        t("learn.tour_open"),
        key="home_tour_open",
        type="primary",
        icon=":material/play_circle:",
        use_container_width=True,
        help=link_help(step.link),
    ):
        open_step(i)
    if i < n:
        cols[2].button(
            t("learn.tour_next"),
            key="home_tour_next",
            icon=":material/arrow_forward:",
            icon_position="right",
            on_click=go_to_step,
            args=(i + 1,),
            use_container_width=True,
        )
    else:
        cols[2].button(
            t("learn.tour_restart"),
            key="home_tour_restart",
            icon=":material/replay:",
            on_click=go_to_step,
            args=(1,),
            use_container_width=True,
        )
        st.success(t("learn.tour_done"))
    copy_link("home", {"section": "tour", "step": i}, key="home")
    if not presenter_mode():
        with st.expander(t("learn.tour_all_steps")):
            st.markdown(
                "\n".join(
                    f"{k}. "
                    + (f"**{t(s.key('title'))}**" if k == i else t(s.key("title")))
                    + f" — {page_title(s.link.page)}"
                    for k, s in enumerate(TOUR, start=1)
                )
            )


def end_tour() -> None:
    st.session_state[TOUR_ACTIVE_KEY] = False


def tour_sidebar(url_path: str) -> None:
    """While a tour is running, every page except Learn shows the current step's question and
    buttons to go back to the narration or on to the next step's live view."""
    if not st.session_state.get(TOUR_ACTIVE_KEY) or url_path == "home":
        return
    n, i = len(TOUR), current_step()
    step = TOUR[i - 1]
    with st.sidebar.container(border=True, key="tour_sidebar"):
        st.markdown(f"**{t('learn.sidebar_tour', i=i, n=n)}**  \n{t(step.key('title'))}")
        st.progress(i / n)
        st.markdown(f"*{t(step.key('question'))}*")
        # Stacked, not in columns: the sidebar is narrow, more so with presenter-size text.
        if i < n and st.button(
            t("learn.tour_next"),
            key="tour_sb_next",
            icon=":material/arrow_forward:",
            icon_position="right",
            type="primary",
            use_container_width=True,
        ):
            open_step(i + 1)
        if st.button(t("learn.sidebar_back"), key="tour_sb_back", icon=":material/school:", use_container_width=True):
            st.switch_page(PAGE_FILES["home"], query_params=nav_params(Link("home", {"section": "tour", "step": i})))
        st.button(t("learn.sidebar_end"), key="tour_sb_end", type="tertiary", on_click=end_tour)


def home_section() -> str:
    """The Learn section picker (``?section=``); writes the choice back to the URL."""

    def _sync():
        st.query_params["section"] = st.session_state[SECTION_KEY]
        if st.session_state[SECTION_KEY] != "tour" and "step" in st.query_params:
            del st.query_params["step"]

    default = qp("section", DEFAULT_HOME_SECTION, choices=HOME_SECTIONS)
    # The URL is the page's state on every navigation (ui.links.url_state); the tour keeps its
    # step when a link (the sidebar) does not name one.
    fields = {SECTION_KEY: default}
    if "step" in st.query_params:
        fields[TOUR_STEP_KEY] = clamp_step(qp("step", 1))
    url_state("home", fields)
    section = st.segmented_control(
        t("learn.section_label"),
        HOME_SECTIONS,
        key=SECTION_KEY,
        required=True,
        format_func=lambda s: t(f"learn.section_{s}"),
        on_change=_sync,
        label_visibility="collapsed",
    )
    return section or default
