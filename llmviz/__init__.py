"""llmviz: run small language models, look inside them, probe their outputs.

Computation only: nothing under this package imports streamlit.
"""

from llmviz.errors import LlmvizError

__all__ = ["LlmvizError"]
__version__ = "0.1.0"
