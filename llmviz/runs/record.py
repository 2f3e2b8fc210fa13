"""What each kind of audit stores in the run store, and the weights hash of a loaded model.

Per-item ``value`` (the item's share of the headline metric, so a paired difference is meaningful):
CrowS-Pairs: 100 if the more-stereotypical sentence scores higher else 0 (group = bias type);
StereoSet: 100 if the stereotype beats the anti-stereotype else 0 (group = split/bias type; the three scores in extra);
SEAT/WEAT: s(w, A, B) of each target item at the last layer (group = test/X or test/Y);
template probe: the cell's score (group = the group term, key = the target term).
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from llmviz.bias.stereoset import outcomes
from llmviz.runs.store import try_record

_hash_cache: dict[int, str] = {}


def weights_hash(loaded) -> str:
    """SHA-256 over the model's parameter names, shapes and bytes (computed once per loaded model)."""
    key = id(loaded.model)
    if key in _hash_cache:
        return _hash_cache[key]
    import torch

    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in loaded.model.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(p.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def _model_fields(loaded) -> dict[str, Any]:
    try:
        digest = weights_hash(loaded)
    except Exception:  # noqa: BLE001 - a hash is provenance, never a reason to lose the run
        digest = None
    return {"model": loaded.facts.model_id, "model_hash": digest}


def record_crows(
    loaded, records: Sequence[dict], summary: dict, data_sha256: str | None, data_path: str | None, parameters: dict
) -> tuple[int | None, str | None]:
    items = [
        {
            "key": f"{i}:{r['sent_more'][:200]}",
            "group": r["bias_type"],
            "value": 100.0 * float(r["score_more"] > r["score_less"]),
            "extra": {"score_more": r["score_more"], "score_less": r["score_less"]},
        }
        for i, r in enumerate(records)
    ]
    return try_record(
        kind="crows_pairs",
        summary=summary,
        items=items,
        data_sha256=data_sha256,
        data_path=data_path,
        parameters=parameters,
        **_model_fields(loaded),
    )


def record_stereoset(loaded, run, parameters: dict) -> tuple[int | None, str | None]:
    items = [
        {
            "key": o.example.id,
            "group": f"{o.example.split}/{o.example.bias_type}",
            "value": 100.0 * o.pro,
            "extra": {"scores": o.scores, "related": o.related, "target": o.example.target},
        }
        for o in outcomes(run.data, run.scores)
    ]
    summary = {"results": run.results, "ci95": run.cis, "method": run.method}
    return try_record(
        kind="stereoset",
        summary=summary,
        items=items,
        data_sha256=run.data.sha256,
        data_path=run.data.source,
        parameters=parameters,
        **_model_fields(loaded),
    )


def record_seat_tests(
    loaded,
    tests: Sequence[dict],
    s_values: Sequence[tuple[list[str], list[str], Any, Any]] | None,
    data_sha256: str | None,
    data_path: str | None,
    parameters: dict,
    kind: str = "seat",
) -> tuple[int | None, str | None]:
    """tests: report entries; s_values per test: (X items, Y items, s_x [nx], s_y [ny]) at the last layer."""
    items = []
    for t, sv in zip(tests, s_values or [None] * len(tests)):
        if sv is None:
            continue
        X, Y, sx, sy = sv
        items += [{"key": w, "group": f"{t['file']}/X", "value": float(s)} for w, s in zip(X, sx)]
        items += [{"key": w, "group": f"{t['file']}/Y", "value": float(s)} for w, s in zip(Y, sy)]
    summary = {"tests": [{"file": t["file"], "n": t["n"], "last": t["layers"][-1]} for t in tests]}
    return try_record(
        kind=kind,
        summary=summary,
        items=items,
        data_sha256=data_sha256,
        data_path=data_path,
        parameters=parameters,
        **_model_fields(loaded),
    )


def record_template(loaded, res, parameters: dict) -> tuple[int | None, str | None]:
    recs = res.to_records()
    items = []
    for r in recs:
        val = next((r[k] for k in ("kurita", "sentence_loglik", "log_prob") if k in r), None)
        items.append(
            {
                "key": str(r.get("target", "")),
                "group": str(r.get("group", "")),
                "value": None if val is None else float(val),
                "extra": r,
            }
        )
    return try_record(
        kind="template_probe",
        summary={"template": res.template, "method": res.method, "n_cells": len(recs)},
        items=items,
        data_sha256=None,
        data_path=None,
        parameters=parameters,
        **_model_fields(loaded),
    )


def record_mechanism(loaded, result, data_sha256: str | None, data_path: str | None, parameters: dict) -> dict:
    """A mechanism trace as two runs of kind ``mechanism`` on the test half — *before* (the model as it is) and
    *after* (its top-k components ablated) — item values 100·[S > 0], so ``runs compare BEFORE AFTER`` gives the
    paired change with its CI. Returns ``{"before": (id, warning), "after": (id, warning)}``."""
    best = result.correction["ablate_top_k"]
    k = best["k"]
    variant_s = result.after_s.get("ablate_top_k")
    out = {}
    for stage, values in (("before", result.s), ("after", variant_s)):
        if values is None:
            continue
        items = [
            {"key": it.key, "group": it.group, "value": 100.0 * float(v > 0), "extra": {"S": float(v)}}
            for it, v, f in zip(result.items, values, result.find)
            if not f
        ]
        summary = {
            "stage": stage,
            "benchmark": result.benchmark,
            "k": k,
            "components": best.get("components", []),
            "pct_stereotype_test": best["test"][stage],
            "ablation": result.config.ablation,
        }
        out[stage] = try_record(
            kind="mechanism",
            summary=summary,
            items=items,
            data_sha256=data_sha256,
            data_path=data_path,
            parameters={**parameters, "stage": stage},
            **_model_fields(loaded),
        )
    return out
