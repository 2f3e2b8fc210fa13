"""Provenance for every export: model, package versions, inputs, parameters, date."""
from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from importlib import metadata
from typing import Any

PACKAGES = ("llmviz", "torch", "transformers", "numpy", "streamlit", "plotly")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "llmviz":
                from llmviz import __version__
                out[name] = __version__
    return out


def provenance(params: dict[str, Any] | None = None, facts=None) -> dict[str, Any]:
    """A dict recorded in every export. ``facts`` is a ModelFacts (optional)."""
    doc: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "parameters": params or {},
    }
    if facts is not None:
        doc["model"] = facts.as_dict()
    return doc


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
