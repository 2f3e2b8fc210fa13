"""llmviz.precision: the fast mode is read from the CPU at run time and says why it is off."""

import numpy as np
import pytest
import torch

from llmviz import precision
from llmviz.errors import InputError


@pytest.fixture
def fresh_support():
    precision.bf16_support.cache_clear()
    precision.bf16_facts.cache_clear()
    yield
    precision.bf16_support.cache_clear()
    precision.bf16_facts.cache_clear()


def test_unknown_mode_names_the_choices():
    with pytest.raises(InputError, match="exact, bf16"):
        precision.check_mode("fp8")


def test_bf16_off_without_cpu_units_says_why(monkeypatch, fresh_support):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"sse4_2", "avx2"})
    ok, why = precision.bf16_support()
    assert not ok and "neither AMX nor AVX-512 BF16" in why
    with pytest.raises(InputError, match="fast mode is off"):
        precision.check_mode(precision.BF16)
    assert precision.check_mode(precision.EXACT) == precision.EXACT


def test_bf16_on_with_cpu_units(monkeypatch, fresh_support):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512f", "avx512_bf16", "amx_bf16"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    ok, why = precision.bf16_support()
    assert ok and "amx_bf16" in why


def test_max_deviation_ignores_unfinished_items():
    assert precision.max_deviation([1.0, np.nan, 3.5], [1.25, 2.0, 3.0]) == 0.5
    assert np.isnan(precision.max_deviation([np.nan], [1.0]))
