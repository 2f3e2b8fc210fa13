"""AppTest: app.py and every page run without exceptions; the sidebar picker handles bad input."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.apptest_util import assert_ok, open_page, texts
from ui.registry import PAGES


@pytest.mark.parametrize("page", [p.file for p in PAGES])
def test_every_page_runs_with_minilm(page):
    at = open_page(page, "minilm")
    assert_ok(at)


def test_home_shows_facts_for_smollm2():
    at = open_page("pages/home.py", "smollm2")
    assert_ok(at)
    values = {m.label: m.value for m in at.metric}
    assert values["Layers × heads"] == "30 × 9" and values["KV heads"] == "3"
    assert values["Positions"].startswith("rope")


def test_bad_folder_in_picker_shows_message_and_keeps_text(tmp_path):
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "fixtures" / "picker_app.py"), default_timeout=120)
    at.run()
    assert "active model: minilm" in texts(at)
    at.selectbox(key="picker_choice").select("Local folder or GGUF file…").run()
    bad = str(tmp_path / "pickle_only")
    (tmp_path / "pickle_only").mkdir()
    (tmp_path / "pickle_only" / "pytorch_model.bin").write_bytes(b"x")
    at.text_input(key="picker_text_True").input(bad).run()
    at.button(key="picker_load").click().run()
    assert_ok(at)
    assert "pickle" in " ".join(e.value for e in at.sidebar.error)
    assert at.text_input(key="picker_text_True").value == bad  # nothing the user typed is lost
    assert "pickle" in texts(at)  # the page says it too, instead of a traceback


def test_picker_loads_a_local_folder(tiny_mlm_dir):
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "fixtures" / "picker_app.py"), default_timeout=120)
    at.run()
    at.selectbox(key="picker_choice").select("Local folder or GGUF file…").run()
    at.text_input(key="picker_text_True").input(str(tiny_mlm_dir)).run()
    at.button(key="picker_load").click().run()
    assert_ok(at)
    assert f"active model: {tiny_mlm_dir}" in texts(at)
    assert "masked language model" in " ".join(c.value for c in at.caption)
