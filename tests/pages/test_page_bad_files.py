"""Issue 24, items 1 and 6 in the app: a file that breaks a parser (brackets nested 100,000 deep, an unclosed
quote) shows one message in the page, never a traceback; path boxes are bounded and say so, an empty path
plus Load says what to do; the upload limit reads 50 MB, as .streamlit/config.toml sets it.

st.file_uploader cannot be driven in AppTest 1.67: the ``uploads`` fixture hands the views a file in its
place (the views call ``st.file_uploader`` by attribute, so the page runs unchanged around it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit
import tomllib
from streamlit.testing.v1 import AppTest

from llmviz.limits import MAX_PATH_CHARS, MAX_UPLOAD_MB
from tests.fixtures.apptest_util import assert_ok, open_page, texts, unescape
from tests.llmviz.test_safe_io import DEEP_SEAT, DEEP_STEREOSET

PAGE = "pages/bias.py"
PICKER_APP = Path(__file__).resolve().parents[1] / "fixtures" / "picker_app.py"
HEAD = "sent_more,sent_less,stereo_antistereo,bias_type\n"
LONG = "/data/" + "x" * 5000


class _Upload:
    def __init__(self, name: str, data: bytes):
        self.name, self._data, self.size = name, data, len(data)

    def getvalue(self) -> bytes:
        return self._data


@pytest.fixture
def uploads(monkeypatch):
    """``uploads[key] = [(name, bytes), ...]``: what the file uploader with that key returns."""
    files: dict[str, list[tuple[str, bytes]]] = {}
    real = streamlit.file_uploader

    def fake(label, *args, key=None, accept_multiple_files=False, **kw):
        if key not in files:
            return real(label, *args, key=key, accept_multiple_files=accept_multiple_files, **kw)
        given = [_Upload(n, d) for n, d in files[key]]
        return given if accept_multiple_files else given[0]

    monkeypatch.setattr(streamlit, "file_uploader", fake)
    return files


def _errors(at) -> str:
    return "\n".join(unescape(e.value) for e in at.error)


# ---------------------------------------------------------------- deep uploads
def test_stereoset_upload_nested_too_deeply_shows_a_message(uploads, tiny_mlm_dir):
    uploads["bias_ss_upload"] = [("deep.json", DEEP_STEREOSET)]
    at = open_page(PAGE, str(tiny_mlm_dir), query={"section": "stereoset"})
    at.radio(key="bias_ss_src").set_value("upload").run()
    assert_ok(at)  # no exception element, no traceback
    assert "The StereoSet file is nested too deeply" in _errors(at)


def _seat_block():
    from types import SimpleNamespace

    from ui.views.bias import seat_files_block

    seat_files_block(SimpleNamespace(facts=SimpleNamespace(kind="encoder", model_id="tiny")))


def test_seat_upload_nested_too_deeply_shows_a_message(uploads):
    uploads["bias_seat_upload"] = [("deep.jsonl", DEEP_SEAT)]
    at = AppTest.from_function(_seat_block, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "deep.jsonl is nested too deeply" in _errors(at)


# ---------------------------------------------------------------- the pairs path box
def _pairs_path(tiny_mlm_dir, path: str):
    at = open_page(PAGE, str(tiny_mlm_dir), query={"section": "pairs"})
    at.radio(key="bias_pairs_src").set_value("path").run()
    at.text_input(key="bias_pairs_path").set_value(path).run()
    assert_ok(at)
    return at


def test_pairs_csv_with_an_unclosed_quote_in_words(tiny_mlm_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + '"A x,B x,stereo,age\n', encoding="utf-8")
    errors = _errors(_pairs_path(tiny_mlm_dir, str(bad)))
    assert "unclosed quote near row 1" in errors
    assert "EOF" not in errors and "C error" not in errors


def test_pairs_csv_under_the_data_dirs_of_a_shared_server(tiny_mlm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_SHARED", "1")
    monkeypatch.setenv("LLMVIZ_DATA_DIRS", str(tmp_path))
    monkeypatch.setenv("LLMVIZ_MODEL_DIRS", str(tiny_mlm_dir.parent))
    (tmp_path / "bad.csv").write_text(HEAD + "A,B,stereo,age\nC,D,stereo,age,x,y\n", encoding="utf-8")
    errors = _errors(_pairs_path(tiny_mlm_dir, "bad.csv"))
    assert "line 3 has 6 fields where the header has 4" in errors and "tokenizing" not in errors


def test_pairs_path_too_long_is_refused_without_echo(tiny_mlm_dir):
    at = _pairs_path(tiny_mlm_dir, LONG)
    errors = _errors(at)
    assert f"{len(LONG):,} characters long" in errors and f"at most {MAX_PATH_CHARS:,}" in errors
    assert "x" * 100 not in texts(at)
    assert f"{MAX_PATH_CHARS:,}" in at.text_input(key="bias_pairs_path").help  # the bound is shown


def test_pairs_upload_limit_reads_as_config_toml(tiny_mlm_dir):
    cfg = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == MAX_UPLOAD_MB == 50
    at = open_page(PAGE, str(tiny_mlm_dir), query={"section": "pairs"})
    at.radio(key="bias_pairs_src").set_value("upload").run()
    helps = [e.help for e in at.get("file_uploader") if e.key == "bias_pairs_upload"]
    assert helps and "up to 50 MB" in helps[0], helps


# ---------------------------------------------------------------- the sidebar path box
def _picker():
    at = AppTest.from_file(str(PICKER_APP), default_timeout=120)
    at.run()
    at.selectbox(key="picker_choice").select("Local folder or GGUF file…").run()
    return at


def test_picker_empty_path_and_load_says_what_to_do(minilm):
    at = _picker()
    at.text_input(key="picker_text_True").input("   ").run()
    at.button(key="picker_load").click().run()
    assert_ok(at)
    assert any("Type the path of a model folder" in e.value for e in at.sidebar.error)
    assert "active model: minilm" in texts(at)  # the loaded model stays


def test_picker_path_too_long_is_refused_without_echo(minilm):
    at = _picker()
    assert f"{MAX_PATH_CHARS:,}" in at.text_input(key="picker_text_True").help
    at.text_input(key="picker_text_True").input(LONG).run()
    at.button(key="picker_load").click().run()
    assert_ok(at)
    errors = " ".join(unescape(e.value) for e in at.sidebar.error)
    assert f"{len(LONG):,} characters long" in errors
    assert "x" * 100 not in texts(at) + errors
    assert at.text_input(key="picker_text_True").value == LONG  # nothing the user typed is lost


def test_library_bounds_a_typed_path_too(monkeypatch):
    from llmviz import serving
    from llmviz.errors import InputError

    for shared in ("0", "1"):
        monkeypatch.setenv("LLMVIZ_SHARED", shared)
        with pytest.raises(InputError) as err:
            serving.resolve_user_path(LONG, "model")
        assert "x" * 100 not in str(err.value) and f"{MAX_PATH_CHARS:,}" in str(err.value)
