"""What the audits share: the progress callback, the interrupt, JSON writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from llmviz.precision import EXACT

Progress = Callable[[int, int], None]  # progress(done, total): items finished so far, of total
Notice = Callable[[str], None]  # notice(text): something the user should read (a data file was fixed up...)


class AuditInterrupted(Exception):
    """Ctrl-C during a CrowS-Pairs audit; ``n`` pairs are kept in the partial file for ``resume``."""

    def __init__(self, n: int):
        super().__init__(n)
        self.n = n


class Counter:
    """Turns per-shard increments (``engine.map_items``' progress) into ``progress(done, total)`` calls."""

    def __init__(self, progress: Progress | None, total: int, done: int = 0):
        self.progress, self.total, self.done = progress, total, done
        self.tell(0)

    def tell(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def fast_fields(precision: str, deviation: float | None) -> dict[str, Any]:
    """What a fast run adds to its report and to the parameters the run store keeps: ``precision`` and
    ``deviation``; nothing for exact (an exact report keeps the keys it always had)."""
    return {} if precision == EXACT else {"precision": precision, "deviation": deviation}


def write_json(path: Path, doc: Any) -> None:
    """``doc`` as indented UTF-8 JSON (values JSON cannot hold written as text), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
