"""MkDocs hook: the docs reuse the app's own texts instead of copying them.

``{{ cat("bias.caveats") }}`` becomes the English catalogue entry ``caveats`` of ``llmviz/catalogues/en/bias.json``
(what a metric means and what it cannot show, as the app says it); ``{{ readme("Running for a class") }}`` becomes
the body of that README section. A key or section that does not exist stops the build (``mkdocs build --strict``
runs in ``make test``), so a renamed text cannot leave a stale page."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CALL = re.compile(r"\{\{\s*(cat|readme)\(\"([^\"]+)\"\)\s*\}\}")


def _catalogue(ref: str) -> str:
    page, key = ref.split(".", 1)
    doc = json.loads((ROOT / "llmviz" / "catalogues" / "en" / f"{page}.json").read_text(encoding="utf-8"))
    if key not in doc:
        raise KeyError(f"no catalogue entry {ref}")
    return doc[key]


def _readme(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^##+ {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if m is None:
        raise KeyError(f"no README section '{title}'")
    return m.group(1).strip()


def on_page_markdown(markdown: str, page, config, files) -> str:
    def sub(m: re.Match) -> str:
        return _catalogue(m.group(2)) if m.group(1) == "cat" else _readme(m.group(2))

    return _CALL.sub(sub, markdown)
