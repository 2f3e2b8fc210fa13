"""Results as a Jupyter notebook shows them: :class:`View` wraps a library result (an ``AttentionResult``, a
``Generation``, ...) with the figure the app draws for it, a table and an offline HTML rendering.

``_repr_html_`` never loads anything from the network: plotly figures carry plotly.js inline the first time a
process renders one (later figures reuse it; :func:`reset_plotly` starts over, e.g. for a new notebook), and
the bertviz views carry their vendored scripts (``llmviz.viz.bertviz_offline``). The wrapped result stays
reachable as ``view.result`` and through attribute access (``view.tokens``, ``view.attention``).
"""

from __future__ import annotations

import html as _html
from typing import Any, Callable

import pandas as pd

from llmviz.report import csv_export, html_export, json_export

_plotly = {"sent": False}


def reset_plotly() -> None:
    """The next figure inlines plotly.js again (a fresh notebook page needs it once)."""
    _plotly["sent"] = False


def plotly_html(fig) -> str:
    """A plotly figure as an HTML fragment, plotly.js inlined only the first time."""
    first = not _plotly["sent"]
    _plotly["sent"] = True
    return fig.to_html(full_html=False, include_plotlyjs=bool(first), config={"displaylogo": False})


def frame_html(frame: pd.DataFrame, max_rows: int = 30) -> str:
    """A table as HTML; text cells are escaped (user text and model output stay text)."""
    return frame.head(max_rows).to_html(index=False, escape=True, border=0, classes="llmviz-table")


def flat_frame(doc: dict[str, Any], prefix: str = "") -> pd.DataFrame:
    """A nested dict of numbers as a two-column table (``key`` = the path joined by dots, ``value``)."""
    rows: list[dict[str, Any]] = []

    def walk(d: Any, path: str) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                walk(v, f"{path}.{k}" if path else str(k))
        else:
            rows.append({"key": path, "value": d})

    walk(doc, prefix)
    return pd.DataFrame(rows, columns=["key", "value"])


class View:
    """A result with its figure, its table and its notebook rendering.

    ``figure(**kw)`` builds the plotly figure (in the language of :func:`llmviz.set_language`), ``to_frame()``
    the table, ``to_json()``/``to_csv()``/``to_html()`` exports with provenance (model, versions, inputs,
    parameters, date). ``html`` (optional) renders the view itself (e.g. the offline bertviz head view)."""

    def __init__(
        self,
        result: Any,
        name: str,
        params: dict[str, Any] | None = None,
        figure: Callable[..., Any] | None = None,
        frame: Callable[[], pd.DataFrame] | None = None,
        html: Callable[[], str] | None = None,
        facts: Any = None,
    ):
        self.result = result
        self.name = name
        self.parameters = dict(params or {})
        self.facts = facts
        self._figure, self._frame, self._html = figure, frame, html

    def __getattr__(self, attr: str):
        if attr.startswith("_") or attr in ("result", "name", "parameters", "facts"):
            raise AttributeError(attr)
        return getattr(self.result, attr)

    def __repr__(self) -> str:
        return f"<llmviz {self.name}: {type(self.result).__name__}>"

    @property
    def meta(self) -> dict[str, Any]:
        """What the exports record as provenance (as the app's exports do: the model id, the view, the inputs and
        parameters)."""
        meta: dict[str, Any] = {"view": self.name}
        if self.facts is not None:
            meta["model"] = getattr(self.facts, "model_id", str(self.facts))
        return {**meta, **self.parameters}

    def figure(self, **kwargs):
        """The plotly figure the app shows for this result."""
        if self._figure is None:
            raise TypeError(f"{self.name} has no figure; use to_frame()")
        return self._figure(**kwargs)

    def to_frame(self) -> pd.DataFrame:
        if self._frame is None:
            raise TypeError(f"{self.name} has no table")
        return self._frame()

    def to_json(self) -> str:
        return json_export(self.to_frame() if self._frame is not None else {}, self.meta)

    def to_csv(self) -> str:
        return csv_export(self.to_frame(), self.meta)

    def to_html(self) -> str:
        """The figure as a standalone offline HTML page with its provenance."""
        return html_export(self.figure(), self.meta)

    def _repr_html_(self) -> str:
        if self._html is not None:
            body = self._html()
        elif self._figure is not None:
            body = plotly_html(self.figure())
        else:
            body = frame_html(self.to_frame())
        title = _html.escape(self.name)
        return f'<div class="llmviz-view" data-view="{title}">{body}</div>'
