"""Every page with the bundled Gemma 3 270M in Chromium (issue 16): one browser page, the session's server,
gemma3 loaded once (the server's model cache). Each page shows its main result with no exception box, no error
box and no traceback; a Chinese prompt in the Playground continues in Chinese; nothing leaves localhost.

Slow (~3-6 min on 2 busy cores, longer when it is the first gemma3 load: ~80-100 s to build the cache)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FIRST_LOAD_MS = 600_000  # a cold cache: join + verify + dequantise + tokenizer conversion, on busy cores
RUN_MS = 300_000
HAN = re.compile(r"[\u4e00-\u9fff]")
TEXT = "The capital of France is Paris. 中国的首都是北京。"


def _ok(page) -> None:
    """No exception box, no error box, no traceback text on the page."""
    no_exception(page)
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()
    assert "Traceback" not in page.locator("body").inner_text()


def _see(page, text: str, timeout: float = RUN_MS) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout)


def _plots(page, n: int) -> None:
    page.locator(".js-plotly-plot").nth(n - 1).wait_for(state="attached", timeout=RUN_MS)


def test_every_page_with_gemma3(page, app_url):
    # Home: the facts card with the Gemma 3 details and the licence (the first load of gemma3 happens here)
    open_app(page, app_url, "home", "model=gemma3")
    _see(page, "Gemma Terms of Use", FIRST_LOAD_MS)
    wait_idle(page, timeout=FIRST_LOAD_MS)
    _see(page, "L L L L L G L L L L L G L L L L L G")  # the layer map: 5 local : 1 global, three times
    _see(page, "262,144")
    _ok(page)

    # Attention: head statistics and heatmaps with the sliding-window layer marked
    open_app(page, app_url, "attention", f"model=gemma3&text={quote(TEXT)}")
    _see(page, "Layer 0 is a local (sliding-window) layer")
    _plots(page, 2)
    _ok(page)
    # the formula step by step on a global layer reproduces the model's attention
    open_app(page, app_url, "attention", f"model=gemma3&text={quote(TEXT)}&view=formula&layer=5&head=2")
    _see(page, "Recomputed with the model's weights")
    _see(page, "Layer 5 is a global layer")
    _ok(page)

    # Positional: RoPE with both bases, each with its relative-position check
    open_app(page, app_url, "positional", "model=gemma3&section=rope")
    _see(page, "The relative property holds for both bases")
    _plots(page, 2)
    _ok(page)

    # Bias: the template probe scored causally (a bias score per group and target)
    open_app(page, app_url, "bias", "model=gemma3&section=templates")
    _see(page, "Most group-skewed targets")
    _plots(page, 1)
    _ok(page)

    # Explain: the logit lens, whose last layer is the model's own output
    open_app(page, app_url, "explain", f"model=gemma3&section=logit_lens&text={quote('The capital of France is')}")
    _see(page, "the last layer reproduces the model's own output distribution")
    _plots(page, 2)
    _ok(page)

    # Intervene: activation patching of the heads (one site kind keeps it short: 18 x 4 sites)
    open_app(page, app_url, "intervene", "model=gemma3&section=patching")
    _see(page, "Metric:")
    tags = page.locator(".st-key-iv_sites [data-tag]")
    for kind in ("Residual stream", "Attention output", "MLP output"):  # keep "Head output" only
        n = tags.count()
        page.locator(f'.st-key-iv_sites [aria-label^="Remove {kind}"]').click()
        expect(tags).to_have_count(n - 1, timeout=30_000)
        wait_idle(page)
    _see(page, "72 sites")  # 18 layers x 4 heads, once the page has rerun with one kind
    page.locator(".st-key-iv_run_patch button").click()
    wait_idle(page, timeout=RUN_MS)
    _see(page, "Checks: whole residual stream patched at each layer gives 1")
    _plots(page, 1)
    _ok(page)

    # Training lab: no bundled model needed; the page still works with gemma3 picked
    open_app(page, app_url, "training", "model=gemma3")
    _see(page, "Training lab")
    _ok(page)

    # Playground in 中文: a Chinese question answered in Chinese (a base model: the prompt is fed as is) ...
    open_app(page, app_url, "playground", "model=gemma3&lang=zh&preset=qa")
    _see(page, "是基础模型")
    page.locator(".st-key-pg_generate button").click()
    wait_idle(page, timeout=RUN_MS)
    out = page.locator(".llmviz-tokens").first
    out.wait_for(timeout=RUN_MS)
    assert len(HAN.findall(out.inner_text())) >= 2, out.inner_text()
    _ok(page)
    # ... and the Chinese fill-in scored as candidates: the capital of China
    open_app(page, app_url, "playground", "model=gemma3&lang=zh&preset=fill_mask")
    _see(page, "中国的首都是北京")
    _ok(page)
    assert_offline(page)
