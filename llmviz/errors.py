"""User-facing errors. Every message says what went wrong and what to do."""


class LlmvizError(Exception):
    """Base class: pages show ``str(err)`` with ``st.error``."""


class ModelNotFoundError(LlmvizError):
    """The model id, folder or file does not exist."""


class UnsafeCheckpointError(LlmvizError):
    """Only pickle-based weights (pytorch_model.bin, .pt, .ckpt) were found."""


class CorruptModelError(LlmvizError):
    """Weights or config exist but cannot be read."""


class UnsupportedModelError(LlmvizError):
    """The architecture or task is not one llmviz can inspect."""


class HubUnavailableError(LlmvizError):
    """A hub id was given but the hub cannot be reached and nothing is cached."""


class InputError(LlmvizError):
    """User input (text, CSV, parameters) is invalid."""
