"""Exports of an :class:`~llmviz.attention.extract.AttentionResult`: JSON, CSV and NPZ, all with provenance."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from llmviz.attention.extract import AttentionResult
from llmviz.report import provenance

MAX_CSV_ROWS = 2_000_000  # long-format CSV of the full tensor; beyond this export one layer


def long_frame(
    result: AttentionResult, layers: list[int] | None = None, heads: list[int] | None = None
) -> pd.DataFrame:
    """One row per (layer, head, query, key): columns layer, head, query_index, query_token,
    key_index, key_token, weight. ``layers``/``heads`` pick a subset (default all)."""
    att = result.attention
    layers = list(range(att.shape[0])) if layers is None else [int(i) for i in layers]
    heads = list(range(att.shape[1])) if heads is None else [int(h) for h in heads]
    t = att.shape[2]
    n_rows = len(layers) * len(heads) * t * t
    if n_rows > MAX_CSV_ROWS:
        raise ValueError(f"{n_rows:,} rows is too many for CSV; export fewer layers or use NPZ.")
    sub = att[np.ix_(layers, heads)]  # [L', H', T, T]
    li, hi, qi, ki = np.meshgrid(np.array(layers), np.array(heads), np.arange(t), np.arange(t), indexing="ij")
    tokens = np.array(result.tokens, dtype=object)
    return pd.DataFrame(
        {
            "layer": li.ravel(),
            "head": hi.ravel(),
            "query_index": qi.ravel(),
            "query_token": tokens[qi.ravel()],
            "key_index": ki.ravel(),
            "key_token": tokens[ki.ravel()],
            "weight": sub.ravel().astype(float),
        }
    )


def stats_frame(stats: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per head: layer, head and one column per statistic."""
    first = next(iter(stats.values()))
    li, hi = np.meshgrid(np.arange(first.shape[0]), np.arange(first.shape[1]), indexing="ij")
    data = {"layer": li.ravel(), "head": hi.ravel()}
    data.update({name: v.ravel().astype(float) for name, v in stats.items()})
    return pd.DataFrame(data)


def to_json(
    result: AttentionResult, stats: dict[str, np.ndarray] | None = None, decimals: int = 6, extra: dict | None = None
) -> str:
    """Tokens, attention [layers][heads][T][T] (rounded), special mask, statistics and provenance."""
    doc = {
        "provenance": provenance({**result.params(), **(extra or {})}, result.facts),
        "tokens": result.tokens,
        "special_mask": result.special_mask.astype(bool).tolist(),
        "shape": list(result.attention.shape),
        "dims": ["layer", "head", "query", "key"],
        "attention": np.round(result.attention.astype(float), decimals).tolist(),
    }
    if stats is not None:
        doc["statistics"] = {k: np.round(v.astype(float), decimals).tolist() for k, v in stats.items()}
    return json.dumps(doc, ensure_ascii=False)


def to_npz(result: AttentionResult, stats: dict[str, np.ndarray] | None = None, extra: dict | None = None) -> bytes:
    """NPZ with ``attention`` [L, H, T, T] float32, ``tokens``, ``special_mask``, ``stat_<name>``
    [L, H] and ``provenance`` (a JSON string). Load with ``np.load(f, allow_pickle=False)``."""
    arrays = {
        "attention": result.attention.astype(np.float32),
        "tokens": np.array(result.tokens, dtype=np.str_),
        "special_mask": result.special_mask.astype(bool),
        "provenance": np.array(json.dumps(provenance({**result.params(), **(extra or {})}, result.facts), default=str)),
    }
    for name, values in (stats or {}).items():
        arrays[f"stat_{name}"] = values.astype(np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
