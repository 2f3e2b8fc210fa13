"""Playground in a real browser with smollm2: text streams in token by token, Stop keeps the partial
output, the probability chart appears, nothing leaves localhost."""

import time

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle


def test_streaming_text_appears_and_stop_keeps_it(page, app_url):
    open_app(page, app_url, "playground", "model=smollm2&preset=creative")
    page.get_by_text("Chat template applied").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    stream = page.locator('[data-testid="stText"]')
    seen: list[str] = []
    deadline = time.time() + 90
    while time.time() < deadline and len(seen) < 3:
        if stream.count():
            text = stream.first.inner_text()
            if text.strip() and (not seen or text != seen[-1]):
                seen.append(text)
        page.wait_for_timeout(50)
    # the text grew while generating: several partial states, each extending the previous one
    assert len(seen) >= 3, seen
    assert all(b.startswith(a.rstrip()) for a, b in zip(seen, seen[1:])), seen
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_idle(page)
    page.get_by_text("Stopped by you").wait_for(timeout=60_000)
    assert page.locator(".llmviz-tokens").first.inner_text().strip()
    page.locator(".js-plotly-plot").first.wait_for(state="attached", timeout=30_000)  # probabilities chart
    page.get_by_text("Alternatives at step 0").wait_for(timeout=30_000)
    # clicking a bar selects that step and shows its alternatives
    page.locator(".js-plotly-plot .bars .point path").nth(1).click(force=True)
    page.get_by_text("Alternatives at step 1").wait_for(timeout=60_000)
    no_exception(page)
    assert_offline(page)
