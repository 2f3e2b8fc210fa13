"""Provenance for every export: model, package versions, inputs, parameters, date."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import platform
import re
from importlib import metadata
from typing import Any

import numpy as np

from llmviz import __version__

PACKAGES = ("llmviz", "torch", "transformers", "numpy", "streamlit", "plotly")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "llmviz":
                out[name] = __version__
    return out


def provenance(params: dict[str, Any] | None = None, facts=None) -> dict[str, Any]:
    """A dict recorded in every export. ``facts`` is a ModelFacts (optional)."""
    doc: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "parameters": params or {},
    }
    if facts is not None:
        doc["model"] = facts.as_dict()
    return doc


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- export file names
MAX_NAME = 120  # characters in a file name stem (most file systems allow 255 bytes; CJK takes 3 each)
_MAX_PART = 48
_UNSAFE = re.compile(r"[^\w-]+")  # letters and digits of any script, '_' and '-' are kept
_PATHLIKE = re.compile(r"^(?:[/~.]|[A-Za-z]:[\\/])")


def export_name(*parts: Any, lower: bool = True) -> str:
    """A file-name stem built from what the file holds, e.g. ``("crows-pairs", "smollm2", "by category")``
    -> ``crows-pairs_smollm2_by-category``: each part lower-cased, anything but letters, digits and ``-``
    turned into ``-``; a part that is a file-system path is cut to its last component (a local model
    folder); empty parts dropped; parts joined by ``_``. Never a figure's (truncated) title."""
    slugs = []
    for part in parts:
        text = str(part or "").strip()
        if _PATHLIKE.match(text):
            text = re.split(r"[/\\]", text.rstrip("/\\"))[-1]
        slug = _UNSAFE.sub("-", (text.lower() if lower else text).replace("_", "-")).strip("-")
        if slug:
            slugs.append(slug[:_MAX_PART].rstrip("-"))
    name = "_".join(slugs) or "llmviz"
    while len(name) > MAX_NAME and len(slugs) > 1:  # shorten the longest part, keep every part
        i = max(range(len(slugs)), key=lambda k: len(slugs[k]))
        if len(slugs[i]) <= 1:
            break
        slugs[i] = slugs[i][: max(1, len(slugs[i]) - (len(name) - MAX_NAME))].rstrip("-")
        name = "_".join(slugs)
    return name[:MAX_NAME]


def safe_stem(stem: Any) -> str:
    """A stem already joined by ``_`` (an ``export_name`` result or a fixed one) made safe; ``_`` and
    letter case are kept."""
    return export_name(*str(stem or "").split("_"), lower=False)


# ---------------------------------------------------------------- CSV safety
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) leaks data,
# +cmd|... runs a program via DDE). OWASP "CSV Injection": prefix such text cells with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``'`` + a text cell that a spreadsheet would read as a formula; other values unchanged.
    Only CSV gets this; JSON exports keep the raw value."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame):
    """A copy of a DataFrame with every text cell (and column name) neutralised for CSV."""
    from pandas.api.types import is_numeric_dtype

    out = frame.copy()
    for col in out.columns:
        if not is_numeric_dtype(out[col].dtype):  # object, str, category: any may hold text
            out[col] = out[col].astype(object).map(neutralise_cell)
    out.columns = [neutralise_cell(c) for c in out.columns]
    return out


def frame_csv(frame, path=None, index: bool = False):
    """``DataFrame.to_csv`` with formula cells neutralised: the text when ``path`` is None."""
    # CRLF rows (RFC 4180): the csv writer then quotes cells holding a lone CR, which pandas' "\n" does not
    return safe_frame(frame).to_csv(path, index=index, lineterminator="\r\n")


def safe_row(row: dict) -> dict:
    return {neutralise_cell(k): neutralise_cell(v) for k, v in row.items()}


def safe_comment(text: str) -> str:
    """A ``# key: value`` provenance line is split at commas by a spreadsheet: neutralise each piece."""
    pieces = text.replace("\r", " ").replace("\n", " ").split(",")
    return ",".join([pieces[0]] + [("'" + p) if p.lstrip(" ").startswith(FORMULA_STARTS) else p for p in pieces[1:]])


# ---------------------------------------------------------------- exports with provenance
def json_safe(value: Any) -> Any:
    """``value`` with every float NaN/±inf (plain or numpy) as None and numpy scalars/arrays as Python
    data, so the JSON written is valid (``json.dumps(..., allow_nan=False)`` accepts it)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_export(data: Any, meta: dict[str, Any] | None = None) -> str:
    """A JSON document ``{"provenance": ..., "data": ...}`` (a DataFrame as its records), always valid JSON:
    NaN and infinities become null."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        data = data.to_dict(orient="records")
    doc = {"provenance": provenance(meta or {}), "data": data}
    return json.dumps(json_safe(doc), indent=1, ensure_ascii=False, allow_nan=False, default=str)


def csv_export(frame, meta: dict[str, Any] | None = None) -> str:
    """CSV with provenance as leading ``# key: value`` lines (read with ``pd.read_csv(f, comment="#")``),
    formula cells neutralised."""
    prov = provenance(meta or {})
    lines = [
        f"# {k}: {v if isinstance(v, str) else json.dumps(json_safe(v), ensure_ascii=False, default=str)}"
        for k, v in prov.items()
    ]
    return "".join(safe_comment(line) + "\r\n" for line in lines) + frame_csv(frame)


PROVENANCE_ID = "llmviz-provenance"


def html_export(fig, meta: dict[str, Any] | None = None, caption: str = "") -> str:
    """A plotly figure as a standalone offline HTML page (plotly.js inlined) with its provenance: a JSON block
    (``<script type="application/json" id="llmviz-provenance">``) and a visible footer (model, date, inputs)."""
    import html as _html

    prov = provenance(meta or {})
    page = fig.to_html(include_plotlyjs=True, full_html=True)
    blob = json.dumps(json_safe(prov), ensure_ascii=False, allow_nan=False, default=str)
    blob = blob.replace("<", "\\u003c")  # no tag (and no early end of the script element) inside the block
    params = prov.get("parameters") or {}
    shown = ", ".join(f"{k} = {v}" for k, v in params.items() if not isinstance(v, (dict, list)))
    footer = (
        f'<footer style="font:12px sans-serif;color:#555;margin:8px">{_html.escape(caption)} '
        f"llmviz · {_html.escape(prov['created'])} · {_html.escape(shown)}</footer>"
    )
    block = f'<script type="application/json" id="{PROVENANCE_ID}">{blob}</script>'
    return page.replace("</body>", f"{footer}{block}</body>", 1)


def read_html_provenance(page: str) -> dict[str, Any] | None:
    """The provenance block of a page written by :func:`html_export` (None when it has none)."""
    m = re.search(rf'<script type="application/json" id="{PROVENANCE_ID}">(.*?)</script>', page, re.S)
    return json.loads(m.group(1)) if m else None
