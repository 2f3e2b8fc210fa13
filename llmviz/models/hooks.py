"""Forward hooks that never outlive their ``with`` block.

Cached models are shared by every browser session, so a hook only acts in the thread that registered
it: another session's forward pass through the same model is left untouched. Which modules to hook comes
from :mod:`llmviz.models.anatomy`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator


@contextmanager
def scoped_hooks(pre: list[tuple[Any, Callable]] = (), post: list[tuple[Any, Callable]] = ()) -> Iterator[None]:
    """Register forward pre-hooks / hooks for the duration of the block; always removed in ``finally``.
    Hooks run only in the registering thread."""
    owner = threading.get_ident()

    def only_here(fn):
        def wrapped(*args):
            return fn(*args) if threading.get_ident() == owner else None

        return wrapped

    handles = []
    try:
        for module, fn in pre:
            handles.append(module.register_forward_pre_hook(only_here(fn)))
        for module, fn in post:
            handles.append(module.register_forward_hook(only_here(fn)))
        yield
    finally:
        for h in handles:
            h.remove()
