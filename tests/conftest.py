"""Shared fixtures: bundled models (loaded once per session) and tiny models built from configs."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["LLMVIZ_TESTING"] = "1"
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# The run store of tests lives in a temporary folder: one per pytest process. Under xdist each worker makes its
# own (the workers inherit the controller's folder, and a run one worker's browser test recorded used to
# change what the other worker's Runs section opened on mid-test); a folder the user set is kept.
if "LLMVIZ_HOME" not in os.environ or (_WORKER and os.environ["LLMVIZ_HOME"] == os.environ.get("LLMVIZ_TEST_HOME")):
    import tempfile

    os.environ["LLMVIZ_HOME"] = tempfile.mkdtemp(prefix=f"llmviz-test-home-{_WORKER or 'main'}-")
    os.environ["LLMVIZ_TEST_HOME"] = os.environ["LLMVIZ_HOME"]

if _WORKER:  # `make test`: two workers share two cores, one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # (two OpenMP threads on a busy core can be ~10x slower)
    os.environ.setdefault("LLMVIZ_THREADS", "1")  # the servers and CLI processes the tests start, too

import pytest  # noqa: E402

from llmviz.models.loading import load_model  # noqa: E402
from tests.fixtures import tiny  # noqa: E402


@pytest.fixture(scope="session")
def minilm():
    return load_model("minilm")


@pytest.fixture(scope="session")
def smollm2():
    return load_model("smollm2")


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory):
    return tiny.build_tiny_bert_mlm(tmp_path_factory.mktemp("tiny_mlm"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    return tiny.build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    return tiny.build_tiny_bert_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture(scope="session")
def tiny_mlm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir))


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    return load_model(str(tiny_llama_dir))


def _torch_on_one_thread():
    import os

    import torch

    n, env = torch.get_num_threads(), os.environ.get("LLMVIZ_THREADS")
    torch.set_num_threads(1)
    os.environ["LLMVIZ_THREADS"] = "1"  # jobs and the estimator's calibration then use one thread too
    yield
    torch.set_num_threads(n)
    if env is None:
        os.environ.pop("LLMVIZ_THREADS", None)
    else:
        os.environ["LLMVIZ_THREADS"] = env


@pytest.fixture
def one_thread():
    """Run a test's torch work on one thread (two OpenMP threads on two shared, busy cores
    can be ~10x slower than one); the previous setting is restored afterwards."""
    yield from _torch_on_one_thread()


@pytest.fixture(scope="module")
def one_thread_module():
    """``one_thread`` for a whole module (for module-scoped fixtures that run the model)."""
    yield from _torch_on_one_thread()


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory):
    from tests.fixtures.tiny_gemma import build_tiny_gemma3

    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny_gemma3"))


@pytest.fixture(scope="session")
def tiny_gemma3(tiny_gemma3_dir):
    return load_model(str(tiny_gemma3_dir))


@pytest.fixture(scope="session")
def gemma3():
    return load_model("gemma3")


@pytest.fixture(autouse=True)
def _no_uncaught_app_exception(request, monkeypatch):
    """Every AppTest run of every test: an exception the page did not catch (a traceback a user
    would see) fails the test, even where the test did not call ``assert_ok`` after that run (an
    ablation click once hid CacheReplayClosureError this way). A test that expects one says so with
    ``@pytest.mark.app_exception``."""
    from streamlit.testing.v1 import AppTest

    seen: list[str] = []
    run = AppTest._run

    def checked_run(self, *args, **kwargs):
        out = run(self, *args, **kwargs)
        seen.extend(str(e.value).splitlines()[0][:300] if e.value else "(no message)" for e in self.exception)
        return out

    monkeypatch.setattr(AppTest, "_run", checked_run)
    yield
    if seen and request.node.get_closest_marker("app_exception") is None:
        pytest.fail(f"an AppTest run raised an uncaught exception: {seen[:3]}", pytrace=False)


@pytest.fixture
def fresh_support():
    """The int8 generation support check run afresh (its answer is cached per process)."""
    from llmviz import precision

    precision.int8_facts.cache_clear()
    precision.int8_support.cache_clear()
    yield
    precision.int8_facts.cache_clear()
    precision.int8_support.cache_clear()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A run store of the test's own: ``LLMVIZ_HOME`` is a fresh folder (yielded), no database URL."""
    from llmviz.runs import store as RS

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LLMVIZ_HOME", str(home))
    monkeypatch.delenv("LLMVIZ_DB_URL", raising=False)
    RS.reset_engines()
    yield home
    RS.reset_engines()


@pytest.fixture
def bf16_on(monkeypatch):
    """The bf16 fast mode switched on whatever the CPU (bfloat16 is emulated where it has no units: slower,
    the same numbers)."""
    from llmviz import precision

    monkeypatch.setattr(precision, "bf16_support", lambda: (True, "test"))


@pytest.fixture
def bf16_here():
    """Skip where this CPU runs no bf16 fast mode (a test of the real mode, e.g. through the app's choice)."""
    from llmviz.precision import bf16_support

    ok, why = bf16_support()
    if not ok:
        pytest.skip(why)


def pytest_collection_modifyitems(config, items):
    """``make test`` runs two pytest-xdist workers with ``--dist loadgroup``: the browser tests (one Streamlit
    server and one Chromium, waiting on each other most of the time: about one core busy) stay together on one
    worker, every other file is a group of its own (its module fixtures built once) for the other worker."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group("browser" if path.startswith("tests/browser/") else path))
