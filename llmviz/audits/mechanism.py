"""``bias-trace``: where a benchmark's bias lives in a model and what removing it does (issue 22), as an audit:
typed settings in, a report out (:func:`run_trace`). The computation is :func:`llmviz.bias.mechanism.trace`.

Report (:meth:`TraceReport.to_dict`): ``components`` (``{"kind", "layer", "head", "effect", "ci95",
"screen_estimate", ...}`` sorted by effect), ``items`` (id, group, find/test split, S, both sentences),
``correction`` (per method ``ablate_top_k`` / ``self_debias`` / ``steering``: ``{"k", "find": {"before",
"after"}, "test": {"before", "after", "diff_ci95", "by_group"}, "cost": {...}}``; ``ablate_top_k`` adds the
``curve`` over k), ``screen`` (method and correlation with the exact effects), the model's facts, the data's
path and SHA-256, parameters, versions, date and the two run ids (*before* / *after* on the test half, kind
``mechanism`` in the run store: ``llmviz runs compare BEFORE AFTER``).

``resume``: the finished stages (clean scores, the screen, each group of confirmed components) are saved to
``<first report>.partial.json`` as they finish; a resumed run with the same model, data and settings skips them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from llmviz import engine as E
from llmviz.audits.common import write_json
from llmviz.bias import mechanism as mech
from llmviz.bias.sharded import MechanismExactScorer
from llmviz.errors import LlmvizError
from llmviz.models.loading import load_model
from llmviz.report import provenance
from llmviz.runs.record import record_mechanism

BENCHMARKS = ("crows-pairs", "stereoset")


@dataclass(frozen=True)
class TraceAuditConfig:
    model: str
    outs: tuple[str, ...]
    pairs: str | None = None
    benchmark: str = "crows-pairs"
    data: str | None = None  # StereoSet JSON (--benchmark stereoset)
    ablation: str = "mean"
    top_k: int = mech.DEFAULT_TOP_K
    screen: str = "atp"
    split_seed: int = 0
    limit: int | None = None
    n_boot: int = 2000
    steer_alpha: float = 2.0
    device: str = "cpu"
    engine: E.Engine = E.LOCAL
    resume: bool = False
    presets: bool = True  # the cost on the Playground presets' greedy answers
    n_neutral: int | None = None  # neutral sentences for the cost (None: all shipped)

    @property
    def partial(self) -> Path:
        first = Path(self.outs[0])
        return first.with_name(first.name + ".partial.json")

    def trace_config(self) -> mech.TraceConfig:
        return mech.TraceConfig(
            ablation=self.ablation,
            screen=self.screen,
            top_k=self.top_k,
            split_seed=self.split_seed,
            n_boot=self.n_boot,
            steer_alpha=self.steer_alpha,
            presets=self.presets,
            n_neutral=self.n_neutral,
        )

    def params(self, data_path: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "data": data_path,
            "ablation": self.ablation,
            "top_k": self.top_k,
            "screen": self.screen,
            "split_seed": self.split_seed,
            "limit": self.limit,
            "n_boot": self.n_boot,
            "steer_alpha": self.steer_alpha,
            "presets": self.presets,
            "n_neutral": self.n_neutral,
            "device": self.device,
        }


@dataclass
class TraceReport:
    result: mech.TraceResult
    model: dict[str, Any]
    data: dict[str, Any]
    parameters: dict[str, Any]
    provenance: dict[str, Any]
    run_ids: dict[str, int | None] = field(default_factory=dict)
    store_warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        doc = self.result.to_dict()
        doc.update(model=self.model, data=self.data, parameters=self.parameters, provenance=self.provenance)
        doc["run_ids"] = self.run_ids
        return doc

    def write(self, outs: list[Path]) -> None:
        doc = self.to_dict()
        for out in outs:
            if out.suffix.lower() == ".html":
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(report_html(doc), encoding="utf-8")
            else:
                write_json(out, doc)

    def summary_line(self, *written) -> str:
        c = self.result.correction["ablate_top_k"]
        top = ", ".join(f"{r['name']} {r['effect']:+.3f}" for r in self.result.components[:3]) or "-"
        return (
            f"{len(self.result.items)} items · top components {top} · ablating the top {c['k']} on the test half: "
            f"{c['test']['before']:.1f} % -> {c['test']['after']:.1f} % "
            f"(change 95 % CI {c['test']['diff_ci95'][0]:+.1f}..{c['test']['diff_ci95'][1]:+.1f}) · wrote "
            + ", ".join(map(str, written))
        )


def report_html(doc: dict[str, Any]) -> str:
    """A standalone offline page: the ranked components and the correction table (text escaped)."""
    import html

    import pandas as pd

    comps = pd.DataFrame(doc["components"])[["name", "effect", "ci95", "screen_estimate"]]
    rows = []
    for method, block in doc["correction"].items():
        if block is None:
            continue
        rows.append(
            {
                "method": method,
                "k": block.get("k"),
                "find before": block["find"]["before"],
                "find after": block["find"]["after"],
                "test before": block["test"]["before"],
                "test after": block["test"]["after"],
                "test change 95% CI": block["test"]["diff_ci95"],
                "neutral LL/token change": block["cost"]["neutral_ll_per_token_change"],
            }
        )
    title = html.escape(f"llmviz bias-trace: {doc['model'].get('model_id', '')}")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in doc.get("notes", []))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{html.escape(doc['definitions']['effect'])}. A bias score is not a verdict.</p>"
        f"<h2>Components</h2>{comps.to_html(index=False, escape=True)}"
        f"<h2>Corrections (chosen on the find half, tested on the test half)</h2>"
        f"{pd.DataFrame(rows).to_html(index=False, escape=True)}<ul>{notes}</ul>"
        f"<script type='application/json' id='llmviz-provenance'>"
        f"{json.dumps(doc['provenance'], default=str).replace('<', chr(92) + 'u003c')}</script></body></html>"
    )


def _load_items(cfg: TraceAuditConfig, loaded):
    """(items, data path, sha256, StereoSet data or None); ``cfg`` is checked by :func:`run_trace`."""
    if cfg.benchmark == "stereoset":
        from llmviz.bias import stereoset as SS

        data = SS.load_stereoset(cfg.data)
        return mech.items_from_stereoset(loaded, data, cfg.limit), data.source, data.sha256, data
    from llmviz.bias.pairs_data import load_pairs, starter_pairs

    pairs = load_pairs(cfg.pairs) if cfg.pairs else starter_pairs()
    return mech.items_from_pairs(loaded, pairs.frame, cfg.limit), pairs.source, pairs.sha256, None


def _load_checkpoint(cfg: TraceAuditConfig, key: dict[str, Any]) -> dict:
    if not cfg.resume or not cfg.partial.is_file():
        return {}
    try:
        doc = json.loads(cfg.partial.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LlmvizError(f"{cfg.partial.name} cannot be read; remove it or run without --resume.") from None
    if doc.get("key") != key:
        raise LlmvizError(
            f"{cfg.partial.name} belongs to another model, data file or settings; remove it or run without --resume."
        )
    return dict(doc.get("stages") or {})


def _save_checkpoint(path: Path, key: dict[str, Any], stages: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps({"key": key, "stages": stages}), encoding="utf-8")
    os.replace(tmp, path)


def run_trace(cfg: TraceAuditConfig, progress: Callable[..., None] | None = None, loaded=None) -> TraceReport:
    """Trace ``cfg``'s benchmark in ``cfg.model``, record the before/after runs and return the report (not yet
    written: :meth:`TraceReport.write`)."""
    if not cfg.outs:
        raise LlmvizError("Give --out REPORT.json (and optionally --out REPORT.html).")
    for o in cfg.outs:
        if Path(o).suffix.lower() not in (".json", ".html"):
            raise LlmvizError("bias-trace writes .json and .html reports; give --out REPORT.json.")
    if cfg.benchmark not in BENCHMARKS:
        raise LlmvizError(f"--benchmark must be one of {', '.join(BENCHMARKS)}.")
    if cfg.benchmark == "stereoset" and not cfg.data:
        raise LlmvizError("--benchmark stereoset needs --data DEV.json (the StereoSet dev or test file).")
    loaded = loaded or load_model(cfg.model, device=cfg.device)
    items, source, sha, ss = _load_items(cfg, loaded)
    tc = cfg.trace_config()
    key = {"model": cfg.model, "sha256": sha, "settings": asdict(tc), "limit": cfg.limit}
    key = json.loads(json.dumps(key, default=list))
    stages = _load_checkpoint(cfg, key)
    runner = None
    if cfg.engine.kind != "local":

        def runner(comps, find_items, means, mode):
            scorer = MechanismExactScorer(cfg.model, cfg.device, tuple(find_items), means, mode)
            return np.array(E.map_items(scorer, comps, cfg.engine, shard_size=4))

    result = mech.trace(
        loaded,
        items,
        tc,
        benchmark=cfg.benchmark,
        stereoset=ss,
        progress=progress,
        checkpoint=stages,
        on_checkpoint=lambda ck: _save_checkpoint(cfg.partial, key, ck),
        exact_runner=runner,
    )
    result.data = {"path": source, "sha256": sha, "n_items": len(items)}
    params = cfg.params(source)
    report = TraceReport(
        result,
        loaded.facts.as_dict(),
        result.data,
        params,
        provenance(params, loaded.facts),
    )
    recorded = record_mechanism(loaded, result, sha, source, params)
    report.run_ids = {stage: rid for stage, (rid, _w) in recorded.items()}
    report.store_warnings = [w for _rid, w in recorded.values() if w]
    return report


def finish(cfg: TraceAuditConfig, report: TraceReport) -> None:
    """Write the reports, then remove the partial file."""
    report.write([Path(o) for o in cfg.outs])
    cfg.partial.unlink(missing_ok=True)
