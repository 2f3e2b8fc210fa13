"""Helpers to run app pages under streamlit.testing.v1.AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.common import MODEL_KEY

APP = Path(__file__).resolve().parents[1] / "app.py"


def open_page(page: str, model: str = "minilm", timeout: float = 120, query: dict | None = None) -> AppTest:
    """Run app.py, select ``model`` in the sidebar state, switch to ``page`` and run it.

    Note: after ``switch_page`` AppTest (1.67) no longer reports the entrypoint's sidebar
    elements; the page itself runs normally. Test the sidebar on the default page (home).
    """
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.session_state[MODEL_KEY] = model
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    return at


def assert_ok(at: AppTest) -> None:
    """No exception element and no uncaught error; every chart on the page names its PNG export."""
    assert not at.exception, [e.value for e in at.exception]
    assert_charts_named(at)


def chart_exports(at: AppTest) -> list[tuple[str | None, str]]:
    """(PNG file name of the camera button, figure title) of every plotly chart the run drew: the names
    ui.common.plot put into the chart's config (``toImageButtonOptions.filename``)."""
    import json

    out = []
    for el in at.get("plotly_chart"):
        config = json.loads(el.proto.config or "{}")
        title = (json.loads(el.proto.spec or "{}").get("layout", {}).get("title") or {}).get("text") or ""
        out.append(((config.get("toImageButtonOptions") or {}).get("filename"), title))
    return out


def assert_charts_named(at: AppTest) -> None:
    """Issue 13: a chart's PNG is named from its data (llmviz.report.export_name via plot(export_name=)),
    never left to plotly (which names it after the figure's title, or 'newplot')."""
    from llmviz.report import export_name

    for name, title in chart_exports(at):
        assert name, f"a chart without an export name: plot(..., export_name=...) missing for {title!r}"
        slug = export_name(title) if title else ""
        assert not slug or not slug.startswith(name), f"export name {name!r} is the title {title!r}"


def texts(at: AppTest) -> str:
    """All markdown/info/error/warning/caption text on the page, for content assertions."""
    parts = []
    for kind in ("markdown", "info", "error", "warning", "success", "caption", "title", "header", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return unescape("\n".join(parts))


def unescape(text: str) -> str:
    """Text as the user reads it: markdown backslash escapes (ui.common.md_escape) removed."""
    import re

    return re.sub(r"\\(.)", r"\1", text)
