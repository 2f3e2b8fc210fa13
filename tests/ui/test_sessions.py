"""Issue 12, finding 3: a model trained or added in one session is that session's; other sessions
never list or load it; messages name models, not server paths."""

from __future__ import annotations

import re

import pytest

from llmviz import serving
from llmviz.errors import LlmvizError
from llmviz.models.loading import REGISTRY, available_models, load_model, register_model
from tests.fixtures.apptest_util import open_page

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CACHE", str(tmp_path))
    monkeypatch.delenv(serving.SHARED_ENV, raising=False)
    before = set(REGISTRY)
    yield
    for mid in set(REGISTRY) - before:
        REGISTRY.pop(mid)


def test_registry_is_per_owner(tiny_mlm_dir):
    register_model("mine-1", tiny_mlm_dir, "mine", owner="A")
    assert "mine-1" in available_models("A") and "mine-1" not in available_models("B")
    assert "mine-1" not in available_models()  # an anonymous caller sees bundled + shared only
    assert "minilm" in available_models("B")
    assert load_model("mine-1", owner="A").facts.source == "trained"
    with pytest.raises(LlmvizError):
        load_model("mine-1", owner="B")
    with pytest.raises(LlmvizError):
        register_model("mine-1", tiny_mlm_dir, "taken", owner="B", replace=True)  # no hijack of A's name


def _train_and_share(at):
    for k, v in (("trn_stories", 8), ("trn_epochs", 2), ("trn_d_model", 32), ("trn_d_ff", 64)):
        at.number_input(key=k).set_value(v)
    at.button(key="trn_run").click().run()
    at.button(key="trn_share_live").click().run()
    assert not at.exception
    return at.session_state["trn_share_live_id"]


def test_trained_model_invisible_to_other_sessions_and_no_server_path(tmp_path):
    a = open_page(PAGE)
    mid = _train_and_share(a)
    shown = " ".join(str(e.value) for e in list(a.success) + list(a.markdown) + list(a.caption) + list(a.info))
    shown = re.sub(r"\\(.)", r"\1", shown)  # markdown escapes off
    assert mid in shown
    assert str(tmp_path) not in shown and ".cache" not in shown and "trained/" not in shown
    b = open_page("pages/home.py")  # another student's browser session
    assert mid not in b.sidebar.selectbox(key="picker_choice").options
    assert mid not in available_models(b.session_state["llmviz_session_owner"])


def test_share_with_everyone_only_in_localhost_mode(monkeypatch):
    a = open_page(PAGE)
    for k, v in (("trn_stories", 8), ("trn_epochs", 2), ("trn_d_model", 32), ("trn_d_ff", 64)):
        a.number_input(key=k).set_value(v)
    a.button(key="trn_run").click().run()
    a.checkbox(key="trn_share_live_public").check().run()
    a.button(key="trn_share_live").click().run()
    mid = a.session_state["trn_share_live_id"]
    assert mid in available_models("someone-else")
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    s = open_page(PAGE)
    _train_and_share(s)
    assert not [c for c in s.checkbox if c.key == "trn_share_live_public"]
    assert s.session_state["trn_share_live_id"] not in available_models("someone-else")
