"""llmviz: run small language models, look inside them, probe their outputs.

Computation only: nothing under this package imports streamlit. The notebook API (see :mod:`llmviz.api`)::

    import llmviz as lv
    m = lv.load("minilm")
    m.attention("Hello world")          # renders offline in Jupyter
    lv.audit.crows(lv.load("smollm2"))  # CrowS-Pairs on the starter pairs, recorded in the run store
    lv.runs.list()                      # the recorded runs
    lv.set_language("zh")               # figures in 中文

The API names load lazily, so ``import llmviz`` stays light (no torch until a model is loaded).
"""

from llmviz.errors import LlmvizError

__all__ = ["LlmvizError", "load", "audit", "runs", "set_language", "sinusoidal", "Model"]
__version__ = "0.1.0"

_API = {"load", "audit", "sinusoidal", "Model"}


def __getattr__(name: str):
    if name in _API:
        from llmviz import api

        return getattr(api, name)
    if name == "set_language":
        from llmviz.i18n import set_language

        return set_language
    if name == "runs":
        import importlib

        return importlib.import_module("llmviz.runs")
    raise AttributeError(f"module 'llmviz' has no attribute {name!r}")
