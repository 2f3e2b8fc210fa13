"""The documentation site (issue 25): ``make test`` builds it with ``mkdocs build --strict``; here, fast checks
that every page is in the navigation and that the texts it reuses from the catalogues and the README exist
(the hook stops the build on a missing one, so a renamed text cannot leave a stale page)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hook():
    spec = importlib.util.spec_from_file_location("mkdocs_catalogue", ROOT / "tools" / "mkdocs_catalogue.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_page_is_in_the_navigation_and_every_reused_text_exists():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert len(pages) >= 14
    assert all(p in nav for p in pages), [p for p in pages if p not in nav]
    hook = _hook()
    for p in pages:
        md = (DOCS / p).read_text(encoding="utf-8")
        out = hook.on_page_markdown(md, None, None, None)
        assert "{{" not in out, p
    assert "A bias score is not a verdict" in (DOCS / "app" / "bias.md").read_text(encoding="utf-8")


def test_a_missing_text_stops_the_build():
    hook = _hook()
    with pytest.raises(KeyError):
        hook.on_page_markdown('{{ cat("bias.no_such_key") }}', None, None, None)
    with pytest.raises(KeyError):
        hook.on_page_markdown('{{ readme("No such section") }}', None, None, None)
    assert re.search("Does this model treat", hook.on_page_markdown('{{ cat("bias.intro") }}', None, None, None))
