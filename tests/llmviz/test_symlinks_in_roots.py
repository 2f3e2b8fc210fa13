"""Issue 24 item 5: on a shared server only the model folder was resolved; a symlink inside it
(``config.json -> /etc/passwd``, ``tokenizer.json -> ...``, weights in site-packages) was opened. Every file a
loader may open must resolve inside the allowed folders; the message names the file, not its target."""

from __future__ import annotations

import os
import shutil

import pytest

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.models.loading import load_model


@pytest.fixture
def shared_root(monkeypatch, tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    monkeypatch.setenv(serving.MODEL_DIRS_ENV, str(root))
    return root


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors"])
def test_a_file_linked_out_of_the_roots_is_refused_by_name(shared_root, tiny_llama_dir, tmp_path, name):
    outside = tmp_path / "outside"
    shutil.copytree(tiny_llama_dir, outside)
    folder = shared_root / "linked"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / name).unlink(missing_ok=True)
    os.symlink(outside / name, folder / name)
    opened = []
    real_open = open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    import builtins

    builtins.open, saved = spy, builtins.open
    try:
        with pytest.raises(LlmvizError) as err:
            load_model("linked", source="local")
    finally:
        builtins.open = saved
    msg = str(err.value)
    assert f"'{name}'" in msg and "outside" in msg
    assert str(outside) not in msg and str(tmp_path) not in msg  # the target is never named
    assert not [f for f in opened if f.startswith(str(outside))]  # and never opened


def test_a_link_inside_the_roots_is_fine_and_a_plain_folder_loads(shared_root, tiny_llama_dir):
    shutil.copytree(tiny_llama_dir, shared_root / "real")
    folder = shared_root / "alias"
    folder.mkdir()
    for f in (shared_root / "real").iterdir():
        os.symlink(f, folder / f.name)  # links that stay inside the allowed folder
    assert load_model("alias", source="local").facts.n_layers == load_model("real", source="local").facts.n_layers


def test_localhost_mode_keeps_following_links(monkeypatch, tmp_path, tiny_llama_dir):
    monkeypatch.delenv(serving.SHARED_ENV, raising=False)
    serving.set_server_address("127.0.0.1")
    try:
        folder = tmp_path / "mine"
        folder.mkdir()
        for f in tiny_llama_dir.iterdir():
            os.symlink(f, folder / f.name)
        assert load_model(str(folder), source="path").facts.n_layers >= 1
    finally:
        serving.set_server_address(None)
