"""llmviz entry point: page config, navigation and the shared sidebar (language, classroom
settings, model picker, guided-tour controls)."""

import streamlit as st

from ui.common import model_picker
from ui.guard import apply_error_display, page_guard
from ui.i18n import LANG_KEY, LANG_SWITCH, LANGS, lang, set_lang, t
from ui.jobs import cancel_stale
from ui.learn import tour_sidebar
from ui.links import CONTRAST_KEY, PRESENTER_KEY, accept_flag_from_query, apply_presenter_style
from ui.registry import DEFAULT_PAGE, PAGES

st.set_page_config(page_title="llmviz", page_icon="static/icon.png", layout="wide")  # local file: no CDN
if apply_error_display():  # a shared server shows no error details or help links; the browser learns it on a run
    st.rerun()

# One rule for the language: ?lang= in the URL (a link, a reload) wins over the session; a URL
# without it (sidebar navigation) keeps the session's language and gets it back.
_url_lang = st.query_params.get(LANG_KEY)
if _url_lang in LANGS and _url_lang != st.session_state.get(LANG_KEY):
    st.session_state[LANG_KEY] = _url_lang
    st.session_state[LANG_SWITCH] = _url_lang
elif st.session_state.get(LANG_KEY, "en") != "en" and _url_lang != st.session_state[LANG_KEY]:
    st.query_params[LANG_KEY] = st.session_state[LANG_KEY]

nav = st.navigation(
    [
        st.Page(p.file, title=t(f"app.page_{p.url}"), icon=p.icon, url_path=p.url, default=(p.url == DEFAULT_PAGE))
        for p in PAGES
    ]
)

tour_sidebar(nav.url_path)  # during the guided tour: the step's question and Next, at the top

# Language and classroom settings, kept in the URL (?lang=zh, ?presenter=true, ?contrast=true)
# so reloads and shared links keep them.
sb = st.sidebar
if LANG_KEY not in st.session_state:
    st.session_state[LANG_KEY] = lang()  # from ?lang=, else English; kept for the session
sb.segmented_control(
    t("app.lang_label"),
    list(LANGS),
    format_func=LANGS.get,
    default=lang(),
    key=LANG_SWITCH,
    required=True,
    on_change=set_lang,
)
accept_flag_from_query(PRESENTER_KEY)  # ?presenter=1 works as well as ?presenter=true
accept_flag_from_query(CONTRAST_KEY)
with sb.expander(t("app.classroom"), expanded=bool(st.session_state.get(PRESENTER_KEY))):
    st.toggle(t("app.presenter"), key=PRESENTER_KEY, help=t("app.presenter_help"), bind="query-params")
    st.toggle(t("app.contrast"), key=CONTRAST_KEY, help=t("app.contrast_help"), bind="query-params")
apply_presenter_style()

cancel_stale()  # a new run of this session (click, rerun, other page) stops its older queued/running job
# A shared server: a failure shows a short message and its traceback goes to the server's log
with page_guard("sidebar"):
    model_picker()
with page_guard(nav.url_path):
    nav.run()
