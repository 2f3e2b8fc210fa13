"""Bias page benchmarks in Chromium: SEAT files uploaded in the WEAT section (English), StereoSet scored with
a tiny causal LM and the Runs section (中文), offline."""

from __future__ import annotations

import json

from tests.browser.conftest import assert_offline, no_exception, open_app, wait_idle


def _seat_file(path, n):
    sents = [f"Person {i}, who works in an office, is here." for i in range(n)]
    doc = {
        "targ1": {"category": "T1", "examples": sents},
        "targ2": {"category": "T2", "examples": [s.replace("office", "garden") for s in sents]},
        "attr1": {"category": "A1", "examples": ["career", "salary", "work"]},
        "attr2": {"category": "A2", "examples": ["home", "family", "children"]},
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return str(path)


def test_seat_upload_in_weat_section(page, app_url, tmp_path):
    open_app(page, app_url, "bias", "model=minilm&section=weat")
    page.get_by_text("effect size per layer").first.wait_for(timeout=240_000)
    page.get_by_text("SEAT test files (May et al. 2019)").first.click()
    files = [_seat_file(tmp_path / "sent-x.jsonl", 70), _seat_file(tmp_path / "weat-y.jsonl", 5)]
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(files)
    page.get_by_text("2 test(s), 162 items in all.").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Run SEAT files").click()
    page.get_by_text("Cells: effect size d").first.wait_for(timeout=240_000)
    assert page.get_by_text("sent-x").first.is_visible()
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors


def test_stereoset_and_runs_in_chinese(page, app_url, tiny_llama_dir):
    from urllib.parse import quote

    model = quote(str(tiny_llama_dir), safe="")  # a tiny causal LM keeps the test fast on a busy CPU
    open_app(page, app_url, "bias", f"model={model}&section=stereoset&lang=zh")
    page.get_by_role("button", name="计算 StereoSet").wait_for(timeout=240_000)
    page.get_by_role("button", name="计算 StereoSet").click()
    page.get_by_text("单个样例及其三个句子").first.wait_for(timeout=240_000)
    wait_idle(page)  # the score table and chart are drawn after the drill-down heading
    page.get_by_text("ICAT（100 = 理想）").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="计算 StereoSet").click()  # a second run to compare
    page.get_by_text("单个样例及其三个句子").first.wait_for(timeout=240_000)
    wait_idle(page)
    open_app(page, app_url, "bias", f"model={model}&section=runs&lang=zh")
    page.get_by_text("配对差的 95 % 自助法区间").first.wait_for(timeout=120_000)
    no_exception(page)
    assert_offline(page)
    assert not page.console_errors, page.console_errors
