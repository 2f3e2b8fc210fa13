"""The whole guided tour in ONE browser session (issue 13): each step's view, reached with the
sidebar's Next from the previous step's view, must show the same state as the same URL opened
in a fresh session — URL query, selected segmented controls, selectboxes, page heading and the
loaded model in the picker. Before the URL became the state on every navigation 6 of 15 steps
landed on the previous step's view."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlsplit

from tests.browser.conftest import new_context, no_exception, open_app, settle, wait_idle
from ui.learn_content import TOUR

N = len(TOUR)

STATE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const txt = (sel, root) => [...(root || main).querySelectorAll(sel)].map(e => e.innerText.trim());
  const picker = document.querySelector('.st-key-picker_choice');
  return {segments: txt('button[kind="segmented_controlActive"]'),
          selects: txt('[data-testid="stSelectbox"]'),
          headings: txt('h1'),
          picker: picker ? picker.innerText.trim() : null};
}"""


def view_state(page) -> dict:
    parts = urlsplit(page.url)
    state = page.evaluate(STATE_JS)
    state["path"] = parts.path.rstrip("/").rsplit("/", 1)[-1]
    state["query"] = dict(sorted(parse_qsl(parts.query)))
    return state


def _settle(page, run_expected: bool = True) -> None:
    """Wait for the view: a run the last action started (``run_expected``; open_app already waited for its
    own), the model picker drawn, then quiet."""
    if run_expected:
        wait_idle(page)
    page.locator(".st-key-picker_choice").wait_for(timeout=120_000)
    settle(page)


def test_every_tour_step_lands_like_a_fresh_open(page, browser, app_url):
    fresh = new_context(browser, viewport={"width": 1400, "height": 1000}).new_page()
    open_app(page, app_url, "", "section=tour&step=1")
    page.locator(".st-key-home_tour_open button").first.wait_for(timeout=120_000)
    page.locator(".st-key-home_tour_open button").first.click()
    landed, report = 0, []
    for i, step in enumerate(TOUR, start=1):
        t0 = time.monotonic()
        page.wait_for_url(f"**/{step.link.page}?**", timeout=120_000)
        _settle(page)
        no_exception(page)
        walked = view_state(page)
        for k, v in step.link.query().items():  # the step's own parameters are in the URL
            assert walked["query"].get(k) == v, (i, step.id, k, walked["query"])
        t1 = time.monotonic()
        open_app(fresh, app_url, step.link.page, page.url.split("?", 1)[1])
        _settle(fresh, run_expected=False)  # open_app waited for the run (no 5 s wait for a run that never comes)
        opened = view_state(fresh)
        secs = {"walk_s": round(t1 - t0, 1), "fresh_s": round(time.monotonic() - t1, 1)}
        same = walked == opened
        landed += same
        report.append(
            {"step": i, "id": step.id, "same": same, **secs, **({} if same else {"walked": walked, "fresh": opened})}
        )
        if i < N:
            page.locator(".st-key-tour_sb_next button").first.wait_for(timeout=120_000)
            page.locator(".st-key-tour_sb_next button").first.click()
    print(json.dumps({"tour_steps_landing": landed, "of": N}))
    print(json.dumps([{k: r[k] for k in ("step", "id", "walk_s", "fresh_s")} for r in report]))
    assert landed == N, json.dumps([r for r in report if not r["same"]], ensure_ascii=False, indent=1)
