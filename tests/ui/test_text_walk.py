"""The one text path (issue 21, items 2 and 1): every page and section, in English and 中文, shows no
visible markdown escape (``\\.``, ``\\_``, ``\\(``: a backslash put into a code span, or escaping applied to
text that was already markdown) and no literal ``**`` (a bold span CommonMark cannot open or close, as in
Chinese text where ``**`` stands next to full-width punctuation).

What the reader sees is computed with a CommonMark renderer (markdown-it, Streamlit's renderer follows the
same spec), from the markdown of every text element the page drew."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.fixtures.apptest_util import assert_ok, open_page
from ui.registry import PAGES

ROOT = Path(__file__).resolve().parents[2]
_MD = MarkdownIt("commonmark")
VISIBLE_ESCAPE = re.compile(r"\\[.\\_()'\-!\[\]#+`{}<>|~$:=^&\"]")
TEXT_KINDS = ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader")


def visible(markdown: str) -> str:
    """The text a reader sees for ``markdown`` (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", _MD.render(markdown)))


def problems(markdown: str) -> list[str]:
    shown = visible(markdown)
    found = [shown[max(0, m.start() - 30) : m.end() + 30] for m in VISIBLE_ESCAPE.finditer(shown)]
    # a literal ** is a defect, unless the source escaped a star on purpose (SEAT's p-value stars "** < 0.01");
    # a bold pair shown with its stars ("**minilm**") is one either way
    pair = re.search(r"\*\*[^\s*][^*]*\*\*", shown)
    if pair or ("**" in shown and "\\*" not in markdown):
        i = pair.start() if pair else shown.index("**")
        found.append(shown[max(0, i - 30) : i + 32])
    return found


def test_the_check_sees_both_defects():
    """Guards against a vacuous walk: the two shapes users saw are caught, good markdown is not."""
    assert problems("**Metric:** `logit\\(\\'_Paris\\'\\)`")  # escapes inside a code span show
    assert problems("\\*\\*minilm\\*\\* uses 'learned'")  # escaped markdown shows its stars
    assert problems("需要语言模型头**：minilm** 是")  # a bold span CommonMark cannot open
    assert not problems("**Metric:** `logit('_Paris')` and a\\_b")
    assert not problems("需要语言模型头：**minilm** 是")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_catalogue_text_renders_cleanly(lang):
    bad = []
    for path in sorted((ROOT / "llmviz" / "catalogues" / lang).glob("*.json")):
        if path.stem == "figures":  # plotly labels, not markdown
            continue
        for key, text in json.loads(path.read_text(encoding="utf-8")).items():
            filled = re.sub(r"\{[^{}]*\}", "x", text)
            bad += [f"{path.stem}.{key}: {p}" for p in problems(filled)]
    assert bad == []


def _walk(model: str, lang: str, pages=None) -> tuple[int, list[str]]:
    """Open each page once (in ``lang``, on its first section), then pick every other section with the page's
    own picker, as a reader clicks through it."""
    views, bad = 0, []
    for page in PAGES:
        if pages and page.url not in pages:
            continue
        options = [o for o in page.picker.options if not (pages and pages[page.url]) or o in pages[page.url]]
        at = None
        for option in options:
            # 中文: a new session per section (a rerun of an AppTest re-formats select options in the test's
            # thread, in English, and breaks); English: the next section in the same session, as a link opens it
            if at is None or lang != "en":
                at = open_page(page.file, model, query={page.picker.param: option, "lang": lang})
            else:  # the next section as a link names it (AppTest formats picker options in English: no set_value)
                at.query_params[page.picker.param] = option
                at.run()
            assert_ok(at)
            assert at.segmented_control(key=page.picker.key).value == option
            views += 1
            strings = [str(e.value) for kind in TEXT_KINDS for e in getattr(at, kind)]
            strings += [str(m.label) for m in at.metric]
            bad += [f"{page.url}/{option}: {p}" for s in strings for p in problems(s)]
    return views, bad


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_walk_every_page_and_section_with_minilm(lang):
    views, bad = _walk("minilm", lang)
    print({"lang": lang, "model": "minilm", "views": views, "problems": len(bad)})
    assert views == sum(len(p.picker.options) for p in PAGES)
    assert bad == []


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_walk_causal_model_views(lang):
    """Views whose text names a causal model's tokens and modules (the metric, the rotary module)."""
    pages = {"positional": ("learned", "rope"), "intervene": ("patching", "dla"), "bias": ("templates",)}
    views, bad = _walk("smollm2", lang, pages)
    print({"lang": lang, "model": "smollm2", "views": views, "problems": len(bad)})
    assert views == 5 and bad == []
