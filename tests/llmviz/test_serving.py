"""Issue 12, finding 1 (server files shown to any user) and finding 7 (hub lookups for paths):
serving mode, allowed folders, errors that never echo file contents or server paths."""

from __future__ import annotations

import os
import sys
import tracemalloc

import pytest

from llmviz import serving
from llmviz.bias.pairs_data import load_pairs
from llmviz.errors import InputError, LlmvizError
from llmviz.models.loading import load_model, looks_like_hub_id


@pytest.fixture
def localhost(monkeypatch):
    monkeypatch.delenv(serving.SHARED_ENV, raising=False)
    serving.set_server_address("127.0.0.1")
    yield
    serving.set_server_address(None)


@pytest.fixture
def shared(monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    monkeypatch.setenv(serving.DATA_DIRS_ENV, str(allowed))
    monkeypatch.setenv(serving.MODEL_DIRS_ENV, str(allowed))
    yield allowed


def test_mode_from_env_and_address(monkeypatch):
    monkeypatch.delenv(serving.SHARED_ENV, raising=False)
    for addr, want in [
        (None, "localhost"),
        ("127.0.0.1", "localhost"),
        ("localhost", "localhost"),
        ("::1", "localhost"),
        ("0.0.0.0", "shared"),
        ("192.168.1.20", "shared"),
        ("myhost.lan", "shared"),
    ]:
        serving.set_server_address(addr)
        assert serving.mode() == want, addr
    serving.set_server_address("127.0.0.1")
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    assert serving.mode() == "shared"
    serving.set_server_address(None)


def test_pairs_path_error_never_echoes_the_first_line(tmp_path, localhost):
    f = tmp_path / "notes.csv"
    f.write_text("SECRET_TOKEN_4711,second column\nmore,rows\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_pairs(str(f))
    assert "SECRET_TOKEN_4711" not in str(err.value) and "second column" not in str(err.value)


def test_pairs_bad_values_not_echoed(tmp_path, localhost):
    f = tmp_path / "p.csv"
    f.write_text("sent_more,sent_less,stereo_antistereo,bias_type\na b,a c,PRIVATE_VALUE,x\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_pairs(str(f))
    assert "PRIVATE_VALUE" not in str(err.value) and "row(s) 1" in str(err.value)


def test_proc_cmdline_is_refused_without_content(localhost):
    with pytest.raises(InputError) as err:
        load_pairs("/proc/self/cmdline")
    msg = str(err.value)
    assert "pytest" not in msg and sys.executable not in msg and "python" not in msg.lower()


def test_size_checked_before_reading(tmp_path, localhost):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:  # sparse 91 MB file: costs no disk
        fh.truncate(91 * 10**6)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as err:
            load_pairs(str(big))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "MB" in str(err.value)
    assert peak < 5 * 10**6, f"read {peak / 1e6:.0f} MB before refusing"


def test_home_not_expanded_in_messages(localhost):
    with pytest.raises(InputError) as err:
        load_pairs("~/no-such-file-llmviz.csv")
    assert os.path.expanduser("~") + "/" not in str(err.value)
    assert "~/no-such-file-llmviz.csv" in str(err.value)


def test_shared_mode_only_allowed_folders(shared, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("sent_more,sent_less,stereo_antistereo,bias_type\na b,a c,stereo,x\n", encoding="utf-8")
    inside = shared / "pairs.csv"
    inside.write_text(outside.read_text(), encoding="utf-8")
    (shared / "link.csv").symlink_to(outside)
    assert len(load_pairs(str(inside))) == 1
    assert len(load_pairs("pairs.csv")) == 1  # relative to the allowed root
    for typed in (
        str(outside),
        str(shared / ".." / "outside.csv"),
        "../outside.csv",
        str(shared / "link.csv"),
        "/proc/self/cmdline",
        "/etc/passwd",
    ):
        with pytest.raises(serving.PathNotAllowedError) as err:
            load_pairs(typed)
        msg = str(err.value).replace(typed, "<typed>")  # only what the user typed may appear
        assert str(tmp_path) not in msg and "/etc" not in msg and "root:" not in msg, msg


def test_shared_mode_without_roots_refuses_paths(monkeypatch):
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    monkeypatch.delenv(serving.DATA_DIRS_ENV, raising=False)
    monkeypatch.delenv(serving.MODEL_DIRS_ENV, raising=False)
    assert not serving.paths_allowed("data") and not serving.paths_allowed("model")
    with pytest.raises(serving.PathNotAllowedError):
        load_pairs("/etc/hostname")
    with pytest.raises(serving.PathNotAllowedError):
        load_model("/etc")


def test_shared_mode_model_folder_outside_refused(shared, tiny_mlm_dir):
    with pytest.raises(serving.PathNotAllowedError) as err:
        load_model(str(tiny_mlm_dir))
    assert str(shared) not in str(err.value)


def test_model_folder_errors_name_no_other_files(tmp_path, localhost):
    d = tmp_path / "m"
    d.mkdir()
    (d / "SECRETNAME.bin").write_bytes(b"x")
    with pytest.raises(LlmvizError) as err:
        load_model(str(d))
    assert "SECRETNAME" not in str(err.value)
    (d / "config.json").write_text('{"SECRET_CONFIG_VALUE": ', encoding="utf-8")
    (d / "w.safetensors").write_bytes(b"x")
    with pytest.raises(LlmvizError) as err:
        load_model(str(d))
    assert "SECRET_CONFIG_VALUE" not in str(err.value)


def test_hub_id_rule_never_for_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert looks_like_hub_id("bert-base-uncased") and looks_like_hub_id("google/bert_uncased_L-2_H-128_A-2")
    for typed in (
        "models/my-bertt",
        "./my-model",
        "my model",
        "C:\\models\\x",
        "x.gguf",
        "a/b/c",
        "/abs/x",
        "~/x",
        "models/x.safetensors",
    ):
        assert not looks_like_hub_id(typed), typed


def test_mistyped_folder_makes_no_connection(tmp_path, monkeypatch, localhost):
    """Without HF_HUB_OFFLINE, a mistyped folder name must not reach the network (no DNS, no connect)."""
    import socket

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError()))
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError())
    )
    for typed in ("models/my-bertt", "/no/such/folder", "./mymodel"):
        with pytest.raises(LlmvizError):
            load_model(typed)
    with pytest.raises(LlmvizError):
        load_model("models/typo", source="path")  # the sidebar's folder box: always a path
    assert calls == []


def _streamlit_config() -> dict:
    from pathlib import Path

    import tomllib

    return tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())


def test_streamlit_config_makes_no_external_lookup_and_bounds_uploads():
    """Named server address + browser.serverAddress: Streamlit 1.67's bootstrap skips get_external_ip."""
    from llmviz.limits import MAX_CSV_BYTES

    cfg = _streamlit_config()
    assert serving.is_loopback(cfg["server"]["address"])
    assert cfg["browser"]["serverAddress"]
    assert cfg["server"]["maxUploadSize"] * 1024 * 1024 == MAX_CSV_BYTES


def test_streamlit_config_runs_no_full_gc_or_file_watcher_per_run():
    """A class reloading pages: Streamlit's default gc.collect(2) after every script run held the GIL for
    a quarter of the server's time (bench/classroom.py under py-spy); no source watcher on a server."""
    cfg = _streamlit_config()
    assert cfg["runner"]["postScriptGC"] is False
    assert cfg["server"]["fileWatcherType"] == "none"


def test_bias_page_offers_no_path_box_on_a_shared_server(monkeypatch, tiny_llama_dir):
    from tests.fixtures.apptest_util import open_page

    monkeypatch.setenv(serving.SHARED_ENV, "1")
    monkeypatch.delenv(serving.DATA_DIRS_ENV, raising=False)
    monkeypatch.setenv(serving.MODEL_DIRS_ENV, str(tiny_llama_dir.parent))
    at = open_page("pages/bias.py", str(tiny_llama_dir), query={"section": "pairs"})
    assert not at.exception
    assert "path" not in at.radio(key="bias_pairs_src").options
