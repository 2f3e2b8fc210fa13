"""Issue 24 item 2: a URL never makes the server reach the internet. In shared mode there is no hub access at
all; in localhost mode the hub is contacted only when the user chose "Hub id…" and pressed Load — never from a
URL (``?model=owner/name``) or a rerun. A URL may name a bundled id, a folder under the allowed model folders or
a lab model of the session. Every test runs under a socket guard that records (and refuses) any name lookup or
connection."""

from __future__ import annotations

import shutil
import socket

import pytest

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.models import loading
from tests.fixtures.apptest_util import open_page, texts


@pytest.fixture
def guard(monkeypatch):
    """Records every DNS lookup and connection attempt (and fails it, as a machine without a route would)."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("no route (test guard)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # as the README's class command ran it
    return attempts


@pytest.fixture
def localhost(monkeypatch):
    monkeypatch.delenv(serving.SHARED_ENV, raising=False)
    monkeypatch.delenv(serving.MODEL_DIRS_ENV, raising=False)
    serving.set_server_address("127.0.0.1")
    yield
    serving.set_server_address(None)


@pytest.fixture
def shared(monkeypatch, tmp_path):
    allowed = tmp_path / "models"
    allowed.mkdir()
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    monkeypatch.setenv(serving.MODEL_DIRS_ENV, str(allowed))
    yield allowed


@pytest.mark.parametrize("source", ["auto", "hub", "local"])
def test_shared_server_never_reaches_the_hub(shared, guard, source):
    with pytest.raises(LlmvizError) as err:
        loading.load_model("some-user/some-model", source=source)
    assert "hub" in str(err.value) or "No bundled model" in str(err.value)
    assert guard == []


def test_a_link_names_no_hub_model_in_localhost_mode(localhost, guard):
    with pytest.raises(LlmvizError) as err:
        loading.load_model("some-user/some-model", source="local")
    assert "never loads a model from the hub" in str(err.value)
    assert guard == []


def test_a_hub_model_loaded_before_comes_from_the_cache_without_a_connection(localhost, guard, monkeypatch):
    seen = {}

    def fake_snapshot(repo_id, local_files_only, **kw):
        seen["local_files_only"] = local_files_only
        raise FileNotFoundError("not cached")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    with pytest.raises(LlmvizError):
        loading.load_model("some-user/some-model", source="hub-cache")
    assert seen == {"local_files_only": True} and guard == []


def test_a_folder_name_under_the_allowed_folders_is_a_folder_not_a_hub_id(
    tmp_path, tiny_llama_dir, guard, monkeypatch, localhost
):
    root = tmp_path / "models"
    shutil.copytree(tiny_llama_dir, root / "some_folder")
    monkeypatch.setenv(serving.MODEL_DIRS_ENV, str(root))
    loaded = loading.load_model("some_folder", source="local")
    assert loaded.facts.n_layers >= 1 and guard == []
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    assert loading.load_model("some_folder", source="local").facts.n_layers == loaded.facts.n_layers
    assert guard == []


def test_the_app_opened_with_a_hub_id_in_the_url_makes_no_connection(guard, localhost, monkeypatch):
    called = []
    monkeypatch.setattr(loading, "_load_hub", lambda *a, **k: called.append(a) or (_ for _ in ()).throw(OSError()))
    at = open_page("pages/home.py", "minilm", query={"model": "some-user/some-model"})
    assert not at.exception
    assert called == [] and guard == []
    assert "never loads a model from the hub" in texts(at)


def test_shared_mode_offers_no_hub_option(shared, guard):
    at = open_page("pages/home.py", "minilm", query={"model": "some-user/some-model"})
    assert not at.exception
    assert "Hub id…" not in at.selectbox(key="picker_choice").options
    assert guard == []
