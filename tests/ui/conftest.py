"""Fixtures of the ui tests: ``sink`` catches the files export buttons would offer (name -> builder)."""

from __future__ import annotations

import pytest

import ui.common as common


class _Col:
    def __init__(self, sink):
        self.sink = sink

    def download_button(self, label, data, file_name, mime, key, **kw):
        self.sink[file_name] = data


@pytest.fixture
def sink(monkeypatch):
    files = {}
    monkeypatch.setattr(common.st, "columns", lambda n: [_Col(files) for _ in range(n)])
    return files
