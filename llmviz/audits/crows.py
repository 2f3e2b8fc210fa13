"""CrowS-Pairs audit: score every minimal pair of a CrowS-Pairs-format CSV with a masked or causal LM.

:func:`run_crows` reads the file in chunks of ``chunk_rows`` (bounded memory) and scores the pairs in groups of
:func:`pairs_per_write` (``batch_size // 2``) counted from the top of the file; each finished group is appended to a
partial file (``<first report>.partial.jsonl``) at once, so Ctrl-C loses at most the group in progress and an
interrupted audit continues with ``resume=True``; Ctrl-C raises :class:`~llmviz.audits.common.AuditInterrupted`
with the pairs kept. The scoring goes through :func:`llmviz.engine.map_items` (local or Ray, same groups, same
numbers).

Which pairs share a forward pass depends only on ``batch_size``: not on ``chunk_rows``, nor on where an earlier run
was interrupted, so a resumed run's per-pair scores equal an uninterrupted run's exactly. Another ``batch_size``
pads and groups sentences differently, which moves float32 sums: per-pair scores then differ by about 1e-5. :meth:`CrowsReport.write` writes JSON, CSV and/or HTML (by each
file's extension) and then removes the partial file.

``precision`` (a mode of :mod:`llmviz.precision`; ``exact`` float32 is the default and the one for audits):
``bf16`` scores on the model's bf16 twin, and the report gains ``"precision"`` and ``"deviation"`` (max |Δ score|
of the first pair against that pair scored again in float32, nats). A partial file records a fast mode in its
header and is only resumed in the same mode, so one report never mixes scores of two precisions.

JSON layout (:meth:`CrowsReport.to_dict`)::

    {"summary": {"n", "pct_stereotype", "ci95": [low, high], "n_ties", "by_bias_type": {type: {...}}},
     "pairs": [{"sent_more", "sent_less", "stereo_antistereo", "bias_type", "score_more", "score_less"}, ...],
     "method", "model", "data": {"path", "sha256", "n_pairs"}, "date", "versions", "parameters", "notices",
     "run_id"}  (+ "precision", "deviation" for a fast mode)

Scores are log-likelihoods in natural log (pseudo-log-likelihood over shared tokens for masked LMs).
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llmviz import engine as E
from llmviz.audits.common import AuditInterrupted, Counter, Progress, fast_fields
from llmviz.bias.pairs import first_pair_deviation
from llmviz.bias.pairs_data import COLUMNS, count_rows, file_sha256, iter_pairs_file
from llmviz.bias.sharded import CROWS_SHARD, CrowsScorer
from llmviz.bias.stats import summary_by_type
from llmviz.errors import LlmvizError
from llmviz.models.loading import load_model
from llmviz.precision import EXACT, check_mode, deviation_text
from llmviz.report import frame_csv, package_versions, provenance
from llmviz.runs.record import record_crows
from llmviz.viz.bias import pairs_summary

OUT_FORMATS = (".json", ".csv", ".html")


@dataclass(frozen=True)
class CrowsConfig:
    """Settings of one CrowS-Pairs audit. ``outs``: the report files (the first one names the partial file)."""

    model: str
    pairs: str | None
    outs: tuple[str, ...]
    batch_size: int = 32
    chunk_rows: int = 256
    limit: int | None = None
    device: str = "cpu"
    n_boot: int = 5000
    seed: int = 0
    resume: bool = False
    engine: E.Engine = E.LOCAL
    precision: str = EXACT

    @property
    def out_paths(self) -> list[Path]:
        return [Path(o) for o in self.outs]

    @property
    def partial(self) -> Path:
        """``<first report>.partial.jsonl``: scored rows so far, for ``resume``."""
        first = self.out_paths[0]
        return first.with_name(first.name + ".partial.jsonl")

    def params(self, data: Path) -> dict[str, Any]:
        return {
            "pairs": str(data),
            "batch_size": self.batch_size,
            "chunk_rows": self.chunk_rows,
            "limit": self.limit,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "device": self.device,
            "model": self.model,
            "precision": self.precision,
        }


@dataclass
class CrowsReport:
    """The finished audit (see the module docstring for the JSON layout). ``store_warning``: why the run store
    could not record it (the report is still complete); ``partial``: the partial file :meth:`write` removes."""

    summary: dict[str, Any]
    pairs: list[dict[str, Any]]
    method: str
    model: dict[str, Any]
    data: dict[str, Any]
    date: str
    versions: dict[str, str]
    parameters: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    run_id: int | None = None
    store_warning: str | None = None
    partial: Path | None = None
    precision: str = EXACT
    deviation: float | None = None  # a fast mode: max |Δ score| of the first pair against float32 (nats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "pairs": self.pairs,
            "method": self.method,
            "model": self.model,
            "data": self.data,
            "date": self.date,
            "versions": self.versions,
            "parameters": self.parameters,
            "notices": self.notices,
            "run_id": self.run_id,
            **fast_fields(self.precision, self.deviation),
        }

    def write(self, outs: list[Path]) -> None:
        """Each report file by its extension (.json, .csv, .html); then the partial file goes."""
        doc = self.to_dict()
        for out in outs:
            out.parent.mkdir(parents=True, exist_ok=True)
            suffix = out.suffix.lower()
            if suffix == ".json":
                out.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
            elif suffix == ".csv":
                table = pd.DataFrame(self.pairs)[list(COLUMNS) + ["score_more", "score_less"]].copy()
                table["difference"] = table["score_more"] - table["score_less"]
                frame_csv(table, out)  # formula-like text cells neutralised; the JSON keeps raw values
            else:
                write_html(doc, out)
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)

    def summary_line(self, *written: str | Path) -> str:
        s = self.summary
        return (
            f"{s['n']} pairs · stereotype preferred in {s['pct_stereotype']:.2f} % "
            f"(95 % CI {s['ci95'][0]:.2f}–{s['ci95'][1]:.2f}){deviation_note(self.precision, self.deviation)} "
            f"· wrote {', '.join(map(str, written))}"
        )


def _deviation_text(precision: str, deviation: float | None) -> str:
    return deviation_text(precision, deviation, "|Δ score|", "nats on the first pair")


def deviation_note(precision: str, deviation: float | None) -> str:
    text = _deviation_text(precision, deviation)
    return f" · {text}" if text else ""


def pairs_per_write(batch_size: int) -> int:
    """Pairs scored together and then saved to the partial file: ``batch_size // 2`` (both sentences of these
    pairs fill one forward pass of a causal LM; a masked LM's copies fill several), 1 to 32. Ctrl-C loses at most
    one such group; the groups are fixed by the position in the file, so they do not depend on ``chunk_rows``."""
    return max(1, min(CROWS_SHARD, batch_size // 2))


def _test_pace_s() -> float:
    """Seconds to pause after each written group of pairs, for the interrupt tests only (``LLMVIZ_TESTING=1``):
    on a quiet machine the tiny test model would otherwise finish before a SIGINT can land."""
    if os.environ.get("LLMVIZ_TESTING") != "1":
        return 0.0
    try:
        return max(0.0, min(1.0, float(os.environ.get("LLMVIZ_TEST_PACE_S", "0"))))
    except ValueError:
        return 0.0


def _count_rows(path: Path) -> int:
    return count_rows(path)  # a malformed CSV is an InputError in words, never a csv traceback


def _is_header(rec: dict) -> bool:
    return "sha256" in rec and "score_more" not in rec


def partial_header(sha: str, model: str, precision: str = EXACT) -> dict[str, str]:
    """The partial file's first line: the input file's SHA-256, the model and, for a fast mode only, the precision
    (a header without it was scored in exact float32)."""
    head = {"sha256": sha, "model": model}
    return head if precision == EXACT else {**head, "precision": precision}


def load_partial(path: Path, sha: str, model: str, precision: str = EXACT) -> list[dict[str, Any]]:
    """Scored rows of an earlier run. The first line is the header (:func:`partial_header`); a partial file of
    another data file, model or precision is refused. A repeated header (left by older builds) is skipped, and a
    last line cut by an interrupt mid-write is dropped from the file, so that appending continues on a clean
    line."""
    done: list[dict[str, Any]] = []
    if not path.is_file():
        return done
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    header, keep = None, 0  # keep: bytes of whole, valid lines
    for i, line in enumerate(lines):
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError(line)
            except (ValueError, RecursionError):  # RecursionError: a line nested too deeply
                if i == len(lines) - 1:  # torn last line: drop it
                    break
                raise LlmvizError(f"'{path}' is damaged (line {i + 1}); delete it or drop --resume.") from None
            if _is_header(rec):
                if header is None:
                    header = rec
                    if rec.get("sha256") != sha or rec.get("model") != model:
                        raise LlmvizError(
                            f"'{path}' was made from another data file or model (the file's SHA-256 "
                            "changed since); delete it or drop --resume."
                        )
                    made = rec.get("precision", EXACT)
                    if made != precision:
                        raise LlmvizError(
                            f"'{path}' was scored in {made} precision, this run asks for {precision} (one report "
                            f"never mixes them); resume with --precision {made}, or delete it or drop --resume."
                        )
            elif header is None or not all(isinstance(rec.get(k), (int, float)) for k in ("score_more", "score_less")):
                raise LlmvizError(f"'{path}' is damaged (line {i + 1}); delete it or drop --resume.")
            else:
                done.append(rec)
        keep += len(line) + 1
    if keep < len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
    return done


def _partial_rows(path: Path) -> int:
    """Scored rows in a partial file (0 when missing or unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return sum(1 for line in fh if line.strip() and '"score_more"' in line)
    except OSError:
        return 0


def _validate(cfg: CrowsConfig) -> Path:
    check_mode(cfg.precision)  # unknown, or bf16 on a CPU without its units: one line before any work
    if not cfg.pairs:
        raise LlmvizError("bias-audit needs --pairs CSV (CrowS-Pairs), or --benchmark stereoset --data JSON.")
    bad = [str(o) for o in cfg.out_paths if o.suffix.lower() not in OUT_FORMATS]
    if bad:
        raise LlmvizError(f"Unknown report format for {', '.join(bad)}; use {', '.join(OUT_FORMATS)}.")
    if cfg.batch_size < 1 or cfg.chunk_rows < 1:
        raise LlmvizError("--batch-size and --chunk-rows must be at least 1.")
    if cfg.limit is not None and cfg.limit < 1:
        raise LlmvizError(f"--limit must be at least 1 (the number of pairs to score; got {cfg.limit}).")
    data = Path(cfg.pairs).expanduser()
    if not data.is_file():
        raise LlmvizError(f"No CSV file at '{data}'. Check --pairs.")
    return data


def run_crows(cfg: CrowsConfig, progress: Progress | None = None, loaded=None) -> CrowsReport:
    """Score the pairs of ``cfg.pairs`` (continuing the partial file with ``cfg.resume``), record the run and
    return the report (not yet written: :meth:`CrowsReport.write`)."""
    data = _validate(cfg)
    sha = file_sha256(data)
    total = _count_rows(data)
    if cfg.limit is not None:
        total = min(total, cfg.limit)
    partial = cfg.partial
    done = load_partial(partial, sha, cfg.model, cfg.precision) if cfg.resume else []  # refused before the model loads
    loaded = loaded or load_model(cfg.model, device=cfg.device)  # a notebook passes its loaded model
    scorer = CrowsScorer(cfg.model, cfg.device, cfg.batch_size, cfg.precision)
    if not cfg.resume and partial.exists():
        partial.unlink()
    records = list(done)
    notices: list[str] = []
    count = Counter(progress, total, len(done))
    unit = pairs_per_write(cfg.batch_size)
    # Pairs are scored in groups of `unit` counted from the top of the file, whatever --chunk-rows is and
    # wherever an earlier run stopped: a group an interrupt cut is scored again whole (only its missing pairs are
    # kept), so every pair shares its forward passes with the same pairs as in an uninterrupted run.
    first = len(done) // unit * unit
    state = {"next": first}  # file position of the next pair the engine returns
    pace = _test_pace_s()
    try:
        with open(partial, "a", encoding="utf-8") as sink:
            if sink.tell() == 0:  # header once, at the top of a new file (a resumed file has it)
                sink.write(json.dumps(partial_header(sha, cfg.model, cfg.precision)) + "\n")
                sink.flush()
            time.sleep(pace)

            def save(scored: list[dict[str, Any]]) -> None:
                """One finished group: count it, then append it to the partial file at once."""
                new = [rec for k, rec in enumerate(scored) if state["next"] + k >= len(done)]
                state["next"] += len(scored)
                if not new:
                    return
                count.tell(len(new))
                sink.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in new))
                sink.flush()
                records.extend(new)
                time.sleep(pace)

            def score(rows: list[dict[str, Any]]) -> None:
                # engine local|ray (llmviz/engine.py): the same groups either way, results in order
                E.map_items(scorer, rows, cfg.engine, shard_size=unit, local_fn=scorer.bind(loaded), on_shard=save)

            pending: list[dict[str, Any]] = []  # rows read from the file, not yet scored
            seen = 0
            for chunk in iter_pairs_file(data, cfg.chunk_rows, notices):
                if cfg.limit is not None:
                    chunk = chunk.head(max(0, cfg.limit - seen))
                start, seen = seen, seen + len(chunk)
                pending += chunk[list(COLUMNS)].to_dict("records")[max(0, first - start) :]
                whole = len(pending) // unit * unit
                if whole:
                    score(pending[:whole])
                    pending = pending[whole:]
                if cfg.limit is not None and seen >= cfg.limit:
                    break
            if pending:
                score(pending)
    except BaseException as err:  # failed or interrupted: keep the partial file only if it holds scored rows
        n = _partial_rows(partial)
        if n == 0:
            partial.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt):
            raise AuditInterrupted(n) from None
        raise
    if not records:
        partial.unlink(missing_ok=True)
        raise LlmvizError(f"'{data}' has no pairs to score.")
    deviation = None
    if cfg.precision != EXACT:  # the first pair again, alone in float32 (pairs.first_pair_deviation)
        r0 = records[0]
        deviation = first_pair_deviation(
            loaded, (r0["sent_more"], r0["sent_less"]), (r0["score_more"], r0["score_less"]), cfg.batch_size
        )
    frame = pd.DataFrame(records)
    params = cfg.params(data)
    prov = provenance(params, loaded.facts)
    summary = summary_by_type(frame["score_more"], frame["score_less"], frame["bias_type"], cfg.n_boot, cfg.seed)
    stored = {**params, **fast_fields(cfg.precision, deviation)}  # the store keeps the deviation too, as the page
    run_id, store_warning = record_crows(loaded, records, summary, sha, str(data), stored)  # a failure only warns
    return CrowsReport(
        summary=summary,
        pairs=records,
        method="mlm_pll" if loaded.facts.kind == "masked_lm" else "causal_loglik",
        model=loaded.facts.as_dict(),
        data={"path": str(data), "sha256": sha, "n_pairs": len(records)},
        date=prov["created"],
        versions=package_versions(),
        parameters=params,
        notices=notices,
        run_id=run_id,
        store_warning=store_warning,
        partial=partial,
        precision=cfg.precision,
        deviation=deviation,
    )


def write_html(report: dict[str, Any], path: Path) -> None:
    """Standalone offline HTML: provenance, summary chart (plotly inlined) and the escaped per-pair table."""
    fig = pairs_summary(report["summary"])
    chart = fig.to_html(include_plotlyjs=True, full_html=False)
    by_type = pd.DataFrame(
        [
            {
                "bias_type": k,
                "n": v["n"],
                "pct_stereotype": v["pct_stereotype"],
                "ci95_low": v["ci95"][0],
                "ci95_high": v["ci95"][1],
            }
            for k, v in report["summary"]["by_bias_type"].items()
        ]
    )
    s = report["summary"]
    meta = {
        "model": report["model"]["model_id"],
        "method": report["method"],
        "data": report["data"]["path"],
        "sha256": report["data"]["sha256"],
        "date": report["date"],
        **({"precision": _deviation_text(report["precision"], report["deviation"])} if "precision" in report else {}),
        "versions": ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>llmviz bias audit</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style></head><body>"
        f"<h1>Bias audit: {html.escape(meta['model'])}</h1>"
        f"<p><b>{s['pct_stereotype']:.2f} %</b> of {s['n']} pairs prefer the more-stereotypical sentence "
        f"(95 % bootstrap CI {s['ci95'][0]:.2f}–{s['ci95'][1]:.2f} %; 50 % = no preference; "
        "not a proof of fairness either way).</p>"
        f"<table>{rows}</table>{chart}<h2>By bias type</h2>{by_type.to_html(index=False, escape=True)}"
        f"<h2>Pairs</h2>{pd.DataFrame(report['pairs']).to_html(index=True, escape=True)}</body></html>"
    )
    path.write_text(doc, encoding="utf-8")
