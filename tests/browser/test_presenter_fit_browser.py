"""Presenter mode at 1280×720, English and 中文 (issue 13): every page of ui.registry.PAGES is screenshotted
(PNG kept in tests/browser/artifacts/, gitignored, for CI to upload) and no figure or iframe
container overflows its box (scrollWidth > clientWidth). A page that draws nothing heavy by
itself is checked as it opens; heavy work starts on a click and is not started here.
Data grids (st.dataframe) are not checked: they scroll inside themselves by design (their
scrollWidth includes the grid's own scrollbar). No text is cut with an ellipsis ("Early sto…", "清…")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.conftest import new_context, no_exception, open_app, settle, wait_idle
from tests.pages.test_zh_complete import _page_files

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PAGES = [url for _, url in _page_files()]

OVERFLOW_JS = """() => {
  const sel = ['[data-testid="stPlotlyChart"]', '[data-testid="stIFrame"]', '[data-testid="stCustomComponentV1"]',
               '.stPlotlyChart', '[data-testid="stElementContainer"] iframe',
               '[data-testid="stMarkdownContainer"] .katex-display'];
  const out = [];
  for (const s of sel) for (const el of document.querySelectorAll('[data-testid="stMain"] ' + s)) {
    const box = el.parentElement || el;
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'auto'
        && getComputedStyle(el).overflowX !== 'scroll')
      out.push({sel: s, scroll: el.scrollWidth, client: el.clientWidth});
    else if (el.getBoundingClientRect().right > box.getBoundingClientRect().right + 1)
      out.push({sel: s, right: el.getBoundingClientRect().right, box: box.getBoundingClientRect().right});
  }
  return out;
}"""


CUT_LABELS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    if (!(el.innerText || '').trim()) continue;
    const cs = getComputedStyle(el);
    if (cs.textOverflow === 'ellipsis' && ['hidden', 'clip'].includes(cs.overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.push({text: el.innerText.trim().slice(0, 60), scroll: el.scrollWidth, client: el.clientWidth});
  }
  return out;
}"""
# text drawn with an ellipsis because its box is too narrow ("Early sto…", "清…")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_fits_in_presenter_mode(browser, app_url, lang):
    ARTIFACTS.mkdir(exist_ok=True)
    context = new_context(browser, viewport={"width": 1280, "height": 720})
    page = context.new_page()
    found, cut_labels = {}, {}
    for url in PAGES:
        path = "" if url == "home" else url
        query = "presenter=1" + ("&lang=zh" if lang == "zh" else "")
        query += "&model=smollm2" if url == "playground" else ""  # the Playground's buttons need a causal LM
        open_app(page, app_url, path, query)
        page.locator(".st-key-picker_choice").wait_for(timeout=480_000)
        settle(page)
        page.wait_for_timeout(800)  # plotly lays out after the run
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / f"presenter_{lang}_{url}.png"), full_page=True)
        over = page.evaluate(OVERFLOW_JS)
        if over:
            found[url] = over
        cut = page.evaluate(CUT_LABELS_JS)  # "Early sto…" (Training lab), "清…" (中文 Playground)
        if cut:
            cut_labels[url] = cut
    context.close()
    print(
        json.dumps(
            {
                "lang": lang,
                "overflowing_containers": sum(len(v) for v in found.values()),
                "cut_labels": sum(len(v) for v in cut_labels.values()),
                "pages": len(PAGES),
            }
        )
    )
    assert not found, json.dumps(found, indent=1)
    assert not cut_labels, json.dumps(cut_labels, indent=1, ensure_ascii=False)


CARD_FORMULAS_JS = """() => Array.from(document.querySelectorAll('[class*="st-key-card_"] .katex-display')).map(el => {
  const card = el.closest('[class*="st-key-card_"]'), c = card.getBoundingClientRect(), cs = getComputedStyle(card);
  const f = el.querySelector('.katex-html').getBoundingClientRect();
  return {card: [...card.classList].find(k => k.startsWith('st-key-card_')),
          left: f.left - c.left - parseFloat(cs.paddingLeft) - parseFloat(cs.borderLeftWidth),
          right: c.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth) - f.right}; })"""
# room left and right of each formula inside its card's padding (negative: the card hides part of it)


def test_card_formulas_fit_their_cards(browser, app_url):
    """issue 13: display formulas do not wrap and the cards hid the rest ("PE(pos,2i+1)=co…", "Concat(…) W").
    Every formula of the formula cards lies inside its card: two cards a row at 1280 px, and presenter mode."""
    from ui.learn_content import CARDS, SECTIONS

    context = new_context(browser, viewport={"width": 1280, "height": 720})
    page = context.new_page()
    cut = []
    for query in ("section=formulas", "section=formulas&presenter=1", "section=formulas&lang=zh"):
        open_app(page, app_url, "", query)
        page.locator(".st-key-card_multi_head .katex-display").wait_for(timeout=60_000)
        settle(page)
        found = page.evaluate(CARD_FORMULAS_JS)
        assert len(found) == sum(1 for cid in SECTIONS["formulas"] if CARDS[cid].formula), found
        cut += [dict(f, query=query) for f in found if f["left"] < 0 or f["right"] < 0]
    context.close()
    assert not cut, json.dumps(cut, indent=1)


PLOT_FONT_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot text'))
  .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
  .map(t => ({text: t.textContent.trim().slice(0, 30), px: parseFloat(getComputedStyle(t).fontSize)}))"""
MIN_PRESENTER_FONT_PX = 12  # the smallest text a class can read from the back of the room, on a 1280×720 projector


def test_logit_lens_cell_labels_are_readable_in_presenter_mode(browser, app_url):
    """The logit lens writes a token in every cell; in presenter mode those labels were ~8 px."""
    context = new_context(browser, viewport={"width": 1280, "height": 720})
    page = context.new_page()
    open_app(page, app_url, "explain", "section=logit_lens&model=smollm2&presenter=1")
    page.locator(".st-key-picker_choice").wait_for(timeout=480_000)
    settle(page)
    start = page.locator('[data-testid="stMain"] [data-testid="stBaseButton-primary"]')
    if page.locator(".js-plotly-plot").count() == 0 and start.count():  # heavy work starts on a click
        start.first.click()
        wait_idle(page, timeout=480_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=240_000)
    settle(page)
    sizes = page.evaluate(PLOT_FONT_JS)
    context.close()
    assert sizes, "no figure text found"
    small = [s for s in sizes if s["px"] < MIN_PRESENTER_FONT_PX]
    assert not small, small[:10]
