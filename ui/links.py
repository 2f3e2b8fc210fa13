"""Deep links, presenter mode and the colour-blind-safe colour option.

Pages read their initial state from URL query parameters with ``qp(name, default, cast)``
(``choices=`` drops unknown values silently) and offer ``copy_link(page, state, key)`` so a
teacher can prepare a link to exactly this view. ``link_for`` / ``parse_link`` are inverse:
``parse_link(link_for(page, state))`` gives back ``(page, state)`` as strings.

Presenter mode (sidebar toggle, ``?presenter=1``) enlarges the base font, widens the layout
and lets pages hide advanced controls (``if not presenter_mode(): ...``). The high-contrast
option (``?contrast=1``) switches every chart drawn through ``ui.common.plot`` to
colour-blind-safe scales; pages that build colours themselves call ``colorscale()`` /
``palette()``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit

import streamlit as st

from ui.i18n import LANG_KEY, lang, t
from ui.registry import DEFAULT_PAGE, MODEL_KEY, PAGE_FILES

PRESENTER_KEY = "presenter"
CONTRAST_KEY = "contrast"
PRESENTER_FONT_PX = 22  # root font size in presenter mode (Streamlit's default is 16 px)
FIGURE_FONT_PRESENTER = 18
PRESENTER_CELL_FONT = 14  # text inside heatmap cells in presenter mode (readable from the back of a room)

# Colour scales. Cividis (Nuñez et al. 2018) is designed for colour-vision deficiency and has a
# monotonic lightness ramp; PuOr is ColorBrewer's colour-blind-safe diverging scheme; Okabe–Ito
# is the standard colour-blind-safe qualitative palette.
SEQUENTIAL = {False: "Blues", True: "Cividis"}
DIVERGING = {False: "RdBu", True: "PuOr"}
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def qp(name: str, default: Any, cast: Callable[[str], Any] = str, choices: Iterable | None = None) -> Any:
    """Initial value for a widget from ``?name=...``; falls back to ``default`` on bad values
    (a failed ``cast`` or a value outside ``choices``)."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        return default
    if choices is not None and value not in tuple(choices):
        return default
    return value


NAV_SEEN = "llmviz_nav_seen"  # (page, URL signature) whose parameters this session last applied
# Kept in the URL by app.py / the model picker on every run, so they are not part of a page's view.
SELF_KEPT = ("model", "lang", "presenter", "contrast")


def _signature(page: str) -> str:
    query = {k: v for k, v in st.query_params.to_dict().items() if k not in SELF_KEPT}
    return json.dumps([page, sorted(query.items())], ensure_ascii=False)


def url_state(page: str, fields: dict[str, Any]) -> bool:
    """One rule for a page's state: the URL. ``fields`` maps widget keys to their value read from
    the URL (the default when the parameter is absent). On the first run after a navigation that
    changed the page's URL (tour step, card, copied link, sidebar) every field is set from the URL,
    replacing what the widgets held; on other runs (the user moving a widget) only missing keys are
    filled. Call before the widgets are drawn; returns True when the URL was applied."""
    sig = _signature(page)
    fresh = st.session_state.get(NAV_SEEN) != sig
    for key, value in fields.items():
        if fresh or key not in st.session_state:
            st.session_state[key] = value
    st.session_state[NAV_SEEN] = sig
    return fresh


def to_url(key: str, param: str, page: str) -> Callable[[], None]:
    """``on_change`` callback for a URL-bound widget: writes its value to ``?param=`` so a reload,
    a copied URL and a later link to the old view all behave (the page's signature follows)."""

    def _write() -> None:
        value = st.session_state.get(key)
        if value is None:
            st.query_params.pop(param, None)
        else:
            st.query_params[param] = _as_param(value)
        st.session_state[NAV_SEEN] = _signature(page)

    return _write


def _as_param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def link_for(page_path: str, state: dict[str, Any]) -> str:
    """Relative link (``/attention?text=...``) that reopens a view in the given state.

    The default page (Home / Learn) lives at the root: ``/?section=tour``. ``None`` values are
    left out; booleans become ``1``/``0``; lists and dicts become JSON.
    """
    path = "" if page_path == DEFAULT_PAGE else page_path
    clean = {k: _as_param(v) for k, v in state.items() if v is not None}
    return f"/{path}?{urlencode(clean)}" if clean else f"/{path}"


def parse_link(link: str) -> tuple[str, dict[str, str]]:
    """Inverse of :func:`link_for`: ``(page_path, {param: str})`` from a relative or absolute
    link (with or without the app's base path)."""
    parts = urlsplit(link)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    page = last if last in PAGE_FILES else DEFAULT_PAGE
    return page, dict(parse_qsl(parts.query, keep_blank_values=True))


def _base_url() -> str:
    """Scheme, host and base path of the running app, without the page ('' when unknown)."""
    try:
        url = st.context.url
    except Exception:  # outside a session (AppTest, bare mode)
        return ""
    if not url:
        return ""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in PAGE_FILES:
        path = head
    return f"{parts.scheme}://{parts.netloc}{path}"


def view_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` plus what every view shares: the model, and language/presenter when not default."""
    shared: dict[str, Any] = {"model": st.session_state.get(MODEL_KEY)}
    if lang() != "en":
        shared["lang"] = lang()
    if presenter_mode():
        shared["presenter"] = "1"
    if high_contrast():
        shared["contrast"] = "1"
    return {**shared, **state}


def copy_link(page_path: str, state: dict[str, Any], key: str) -> str:
    """Show the link to this view in a copyable code box (copy icon top right); returns the link."""
    link = _base_url() + link_for(page_path, view_state(state))
    with st.popover(f":material/link: {t('app.copy_link')}", key=f"{key}_link"):
        st.caption(t("app.copy_link_help"))
        st.code(link, language=None, wrap_lines=True)
    return link


def presenter_mode() -> bool:
    """True when the teacher turned on presenter mode: pages hide advanced controls."""
    return bool(st.session_state.get(PRESENTER_KEY, False))


def high_contrast() -> bool:
    """True when the colour-blind-safe high-contrast colour option is on."""
    return bool(st.session_state.get(CONTRAST_KEY, False))


def colorscale(diverging: bool = False, contrast: bool | None = None) -> str:
    """Plotly colour scale name for heatmaps: sequential (weights, probabilities) or diverging
    (signed scores, use with ``zmid=0``). Colour-blind safe when the high-contrast option is on."""
    on = high_contrast() if contrast is None else contrast
    return (DIVERGING if diverging else SEQUENTIAL)[on]


def palette(contrast: bool | None = None) -> list[str] | None:
    """Colours for categories (lines, bars): Okabe–Ito when high contrast is on, else ``None``
    (plotly's default)."""
    on = high_contrast() if contrast is None else contrast
    return list(OKABE_ITO) if on else None


def _diverging_scales() -> list:
    import plotly.colors as pc

    scales = []
    for name in (
        "RdBu",
        "RdBu_r",
        "PuOr",
        "BrBG",
        "PiYG",
        "PRGn",
        "RdYlBu",
        "RdYlGn",
        "Spectral",
        "Picnic",
        "Portland",
        "balance",
        "curl",
        "delta",
        "Tealrose",
        "Temps",
        "Tropic",
        "Armyrose",
        "Fall",
        "Geyser",
        "Earth",
    ):
        try:
            scales.append(tuple(c for _, c in pc.get_colorscale(name)))
        except Exception:  # a name missing from this plotly version
            continue
    return scales


def apply_presentation(fig, presenter: bool, contrast: bool):
    """Restyle a plotly figure for the classroom; returns a new figure (``fig`` is untouched).

    presenter: larger fonts. contrast: every continuous colour scale becomes Cividis, or PuOr
    where the scale is diverging (``zmid``/``cmid`` set, or a known diverging scale), and the
    category colours become Okabe–Ito.
    """
    if not (presenter or contrast):
        return fig
    import plotly.graph_objects as go

    fig = go.Figure(fig)
    if presenter:
        size = max(FIGURE_FONT_PRESENTER, (fig.layout.font.size or 12) + 6)
        grow = size / (fig.layout.font.size or 12)
        fig.update_layout(font_size=size)
        if fig.layout.height:  # larger text needs a taller plot, or the data area shrinks to a strip
            fig.update_layout(height=int(fig.layout.height * min(grow, 1.5)))
        for trace in fig.data:  # text written in cells (logit lens tokens) is auto-shrunk to ~8 px otherwise
            if getattr(trace, "texttemplate", None) and "textfont" in trace:
                trace.textfont.size = max(trace.textfont.size or 0, PRESENTER_CELL_FONT)
    if contrast:
        diverging = _diverging_scales()
        fig.update_layout(colorway=list(OKABE_ITO))
        holders = [(fig.layout.coloraxis, "cmid")]  # px.imshow & co. keep the scale in layout.coloraxis
        for trace in fig.data:
            holders += [(trace, "zmid"), (getattr(trace, "marker", None), "cmid")]
        for holder, mid in holders:
            if holder is None or "colorscale" not in holder:
                continue
            if (
                holder.colorscale is None
                and mid == "cmid"
                and holder is not fig.layout.coloraxis
                and not isinstance(getattr(holder, "color", None), (list, tuple))
                and not hasattr(getattr(holder, "color", None), "shape")
            ):
                continue  # a marker with a plain colour: no scale to replace
            current = tuple(c for _, c in holder.colorscale) if holder.colorscale else None
            is_div = getattr(holder, mid, None) is not None or current in diverging
            holder.colorscale = colorscale(diverging=is_div, contrast=True)
    return fig


def fit_figure(fig):
    """Never clip: axis titles, tick labels and the title get the margin they need (plotly's
    automargin), in the browser and in exported HTML/PNG. Mutates and returns ``fig``."""
    if fig is None or not hasattr(fig, "update_xaxes"):
        return fig
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    if fig.layout.title is not None and fig.layout.title.text:
        fig.update_layout(title_automargin=True)
    return fig


def presenter_css() -> str:
    """CSS for presenter mode: larger root font (Streamlit sizes text in rem), full-width
    content, roomier widgets. Offline: no fonts or images are fetched."""
    return f"""
<style>
html {{ font-size: {PRESENTER_FONT_PX}px !important; }}
[data-testid="stMainBlockContainer"], .block-container {{
  max-width: 100% !important; padding-left: 2.5rem !important; padding-right: 2.5rem !important; }}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {{ line-height: 1.5; }}
[data-testid="stSidebar"] {{ font-size: 1rem; }}
.katex {{ font-size: 1.3em !important; }}
</style>"""


def apply_presenter_style() -> None:
    """Inject the presenter CSS when presenter mode is on (called once per run by app.py)."""
    if presenter_mode():
        st.html(presenter_css())


def accept_flag_from_query(key: str) -> None:
    """Let ``?key=1`` (or ``yes``/``on``) switch on a toggle bound to ``?key=true``; call before
    the toggle is created. Only the first run of a session reads it."""
    raw = str(st.query_params.get(key, "")).lower()
    if key not in st.session_state and raw in ("1", "yes", "on"):
        st.session_state[key] = True


__all__ = [
    "qp",
    "url_state",
    "to_url",
    "link_for",
    "parse_link",
    "copy_link",
    "presenter_mode",
    "high_contrast",
    "colorscale",
    "palette",
    "apply_presentation",
    "presenter_css",
    "apply_presenter_style",
    "accept_flag_from_query",
    "view_state",
    "LANG_KEY",
]
