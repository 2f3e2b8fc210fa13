"""StereoSet audits: a model's sentence scores (:func:`run_stereoset`) or a prediction file re-scored
(:func:`evaluate_predictions`), with the metrics of StereoSet's evaluation.py and bootstrap CIs.

Report (:meth:`StereoSetReport.to_dict`): ``{"intrasentence": {"<bias_type>": {"Count", "LM Score", "SS Score",
"ICAT Score"}, ..., "overall": {...}}, "intersentence": {...}, "overall": {...}, "ci95": {same layout,
[low, high] per score}, "model", "method", "data": {"path", "sha256", "n_examples"}, "versions", "date",
"parameters", "run_id"}`` (+ ``"precision"``, ``"deviation"`` for a fast mode: max |Δ sentence score| of the
first example against float32). Both are recorded in the run store; when it cannot be used the report is complete
and ``store_warning`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz import engine as E
from llmviz.audits.common import Counter, Notice, Progress, fast_fields, write_json
from llmviz.bias import stereoset as SS
from llmviz.bias.sharded import run_stereoset_on
from llmviz.errors import LlmvizError
from llmviz.models.loading import load_model
from llmviz.precision import EXACT, check_mode, deviation_text
from llmviz.report import provenance, sha256_bytes
from llmviz.runs.record import record_stereoset
from llmviz.runs.store import try_record
from llmviz.safe_io import read_bytes


@dataclass(frozen=True)
class StereoSetConfig:
    """Settings of a StereoSet audit of ``model`` on the dev/test JSON ``data``; ``outs``: the .json reports
    it will be written to (checked before any work)."""

    model: str
    data: str | None
    outs: tuple[str, ...] = ()
    batch_size: int = 32
    limit: int | None = None
    n_boot: int = 5000
    seed: int = 0
    device: str = "cpu"
    engine: E.Engine = E.LOCAL
    precision: str = EXACT

    def params(self) -> dict[str, Any]:
        return {
            "benchmark": "stereoset",
            "data": str(self.data),
            "model": self.model,
            "batch_size": self.batch_size,
            "limit": self.limit,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "device": self.device,
            "precision": self.precision,
        }


@dataclass
class StereoSetReport:
    """A scored StereoSet run with its provenance (see the module docstring for the JSON layout)."""

    run: SS.StereoSetRun
    model: Any
    parameters: dict[str, Any]
    date: str
    versions: dict[str, str]
    run_id: int | None = None
    store_warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            **run.results,
            "ci95": run.cis,
            "model": self.model,
            "method": run.method,
            "data": {
                "path": run.data.source,
                "sha256": run.data.sha256,
                "n_examples": {
                    "intrasentence": len(run.data.intrasentence),
                    "intersentence": len(run.data.intersentence),
                },
            },
            "versions": self.versions,
            "date": self.date,
            "parameters": self.parameters,
            "run_id": self.run_id,
            **fast_fields(run.precision, run.deviation),
        }

    def write(self, out: Path) -> None:
        write_json(out, self.to_dict())

    def predictions_doc(self) -> dict[str, list[dict]]:
        """The per-sentence scores in StereoSet's prediction-file format."""
        return SS.predictions_doc(self.run.data, self.run.scores)

    def summary_line(self, *written: str | Path) -> str:
        o = self.run.results["overall"]
        return (
            f"{o['Count']} examples · LM {o['LM Score']:.2f} · SS {o['SS Score']:.2f} · ICAT {o['ICAT Score']:.2f} "
            f"{deviation_note(self.run.precision, self.run.deviation)}· wrote {', '.join(map(str, written))}"
        )


def deviation_note(precision: str, deviation: float | None) -> str:
    """A fast run's measured deviation for the summary line ("" for exact)."""
    text = deviation_text(precision, deviation, "|Δ sentence score|", "on the first example")
    return f"· {text} " if text else ""


def _report(run, model: Any, params: dict[str, Any]) -> StereoSetReport:
    prov = provenance(params)
    return StereoSetReport(run, model, params, prov["created"], prov["versions"])


def run_stereoset(
    cfg: StereoSetConfig, progress: Progress | None = None, notice: Notice | None = None, loaded=None
) -> StereoSetReport:
    """Score every sentence of ``cfg.data`` with ``cfg.model`` (through ``cfg.engine``), evaluate and record.
    ``notice`` hears the data file's notices (examples cut...) before the model loads."""
    check_mode(cfg.precision)  # unknown, or bf16 on a CPU without its units: one line before any work
    if not cfg.data:
        raise LlmvizError("--benchmark stereoset needs --data DEV.json (the StereoSet dev or test file).")
    if any(Path(o).suffix.lower() != ".json" for o in cfg.outs):
        raise LlmvizError("--benchmark stereoset writes a .json report; give --out REPORT.json.")
    if cfg.batch_size < 1 or (cfg.limit is not None and cfg.limit < 1):
        raise LlmvizError("--batch-size and --limit must be at least 1.")
    data = SS.load_stereoset(cfg.data).head(cfg.limit)
    for n in data.notices:
        if notice is not None:
            notice(n)
    loaded = loaded or load_model(cfg.model, device=cfg.device)  # a notebook passes its loaded model
    count = Counter(progress, sum(len(ex.sentences) for ex in data.examples()))
    run = run_stereoset_on(
        cfg.engine,
        loaded,
        cfg.model,
        cfg.device,
        data,
        cfg.batch_size,
        cfg.n_boot,
        cfg.seed,
        progress=count.tell,
        precision=cfg.precision,
    )
    params = cfg.params()
    report = _report(run, loaded.facts.as_dict(), params)
    stored = {**params, **fast_fields(run.precision, run.deviation)}  # the deviation too, as the page records it
    report.run_id, report.store_warning = record_stereoset(loaded, run, stored)
    return report


def evaluate_predictions(gold: str, predictions: str, n_boot: int = 5000, seed: int = 0) -> StereoSetReport:
    """Re-score a prediction file (``{"intrasentence": [{"id", "score"}], "intersentence": [...]}``) against
    the gold file, and record it."""
    data = SS.load_stereoset(gold)
    pred = Path(predictions).expanduser()
    if not pred.is_file():
        raise LlmvizError(f"No predictions file at '{pred.name}'. Check --predictions.")
    pred_bytes = read_bytes(pred, f"'{pred.name}'", SS.MAX_UPLOAD_BYTES)
    scores = SS.parse_predictions(pred_bytes)
    run = SS.StereoSetRun(
        data,
        scores,
        "predictions_file",
        SS.evaluate(data, scores),
        SS.bootstrap_cis(data, scores, n_boot, seed),
    )
    params = {
        "gold": str(gold),
        "predictions": str(pred),
        "predictions_sha256": sha256_bytes(pred_bytes),
        "n_boot": n_boot,
        "seed": seed,
    }
    report = _report(run, {"model_id": f"predictions:{pred.name}"}, params)
    items = [
        {
            "key": o.example.id,
            "group": f"{o.example.split}/{o.example.bias_type}",
            "value": 100.0 * o.pro,
            "extra": {"scores": o.scores, "related": o.related},
        }
        for o in SS.outcomes(data, scores)
    ]
    report.run_id, report.store_warning = try_record(
        kind="stereoset",
        model=f"predictions:{pred.name}",
        summary={"results": run.results, "ci95": run.cis, "method": run.method},
        items=items,
        data_sha256=data.sha256,
        data_path=data.source,
        parameters=params,
    )
    return report
