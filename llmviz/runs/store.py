"""Run store on SQLAlchemy: ``$LLMVIZ_HOME/runs.sqlite`` (default ``LLMVIZ_HOME`` = the llmviz cache dir), or
any database URL in ``LLMVIZ_DB_URL`` (e.g. ``postgresql+psycopg://user@host/llmviz`` for a lab; the driver
must be installed).

Tables (schema version 1): ``schema_version(version)``; ``runs(id, kind, model, model_hash, data_sha256,
data_path, parameters, versions, date, summary, n_items)`` with JSON text columns; ``run_items(run_id, idx,
item_key, grp, value, extra)``: one row per scored item (a pair, a StereoSet example, a SEAT target item, a
template cell). ``value`` is the item's contribution to the run's headline metric, so two runs on the same data
compare item by item (:func:`compare_runs`). Migrations are numbered functions in MIGRATIONS, applied in order
inside a transaction; the version table records the last one applied.

A store that cannot be opened (corrupt file, locked, unreachable server) raises RunStoreError; callers that
record an audit use :func:`try_record`, which turns that into a warning so the audit itself still completes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from llmviz.bias.stats import bootstrap_ci
from llmviz.errors import LlmvizError
from llmviz.models.loading import cache_dir
from llmviz.report import package_versions

SCHEMA_VERSION = 1
DB_FILE = "runs.sqlite"
KINDS = ("crows_pairs", "stereoset", "seat", "weat", "template_probe")
MAX_ITEMS_PER_RUN = 200_000
_engines: dict[str, Any] = {}
_lock = threading.Lock()


class RunStoreError(LlmvizError):
    """The run store cannot be read or written."""


def home() -> Path:
    return Path(os.environ.get("LLMVIZ_HOME") or cache_dir()).expanduser()


def db_url() -> str:
    return os.environ.get("LLMVIZ_DB_URL") or f"sqlite:///{home() / DB_FILE}"


def _describe(url: str) -> str:
    """Where the store is, without server paths or passwords."""
    return DB_FILE if url.startswith("sqlite") else url.split("://", 1)[0] + " database (LLMVIZ_DB_URL)"


def _tables():
    from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

    md = MetaData()
    Table("schema_version", md, Column("version", Integer, nullable=False))
    Table(
        "runs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(32), nullable=False),
        Column("model", String(512), nullable=False),
        Column("model_hash", String(64)),
        Column("data_sha256", String(64)),
        Column("data_path", String(1024)),
        Column("parameters", Text),
        Column("versions", Text),
        Column("date", String(40), nullable=False),
        Column("summary", Text),
        Column("n_items", Integer, nullable=False, default=0),
    )
    items = Table(
        "run_items",
        md,
        Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("idx", Integer, nullable=False),
        Column("item_key", String(512), nullable=False),
        Column("grp", String(128)),
        Column("value", Float),
        Column("extra", Text),
    )
    Index("ix_run_items_run", items.c.run_id)
    return md


METADATA = _tables()


def _m1(conn) -> None:
    METADATA.create_all(conn, tables=[METADATA.tables["runs"], METADATA.tables["run_items"]])


MIGRATIONS: list[tuple[int, Callable]] = [(1, _m1)]  # append (2, fn) etc.; never edit an applied one


def _migrate(engine) -> None:
    from sqlalchemy import insert, select, update

    ver = METADATA.tables["schema_version"]
    with engine.begin() as conn:
        METADATA.create_all(conn, tables=[ver])
        row = conn.execute(select(ver.c.version)).first()
        current = row[0] if row else 0
        if current > SCHEMA_VERSION:
            raise RunStoreError(
                f"The run store ({_describe(str(engine.url))}) has schema version {current}, newer "
                f"than this llmviz ({SCHEMA_VERSION}). Update llmviz or set LLMVIZ_DB_URL elsewhere."
            )
        for number, fn in MIGRATIONS:
            if number > current:
                fn(conn)
                current = number
        if row is None:
            conn.execute(insert(ver).values(version=current))
        else:
            conn.execute(update(ver).values(version=current))


def engine():
    """The engine for the current URL, created and migrated once per process."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    url = db_url()
    with _lock:
        if url in _engines:
            return _engines[url]
        try:
            if url.startswith("sqlite"):
                path = url.split(":///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                eng = create_engine(url, connect_args={"timeout": 2})
            else:
                eng = create_engine(url, pool_pre_ping=True)
            _migrate(eng)
        except RunStoreError:
            raise
        except (SQLAlchemyError, OSError, ImportError) as err:
            raise RunStoreError(_why(url, err)) from None
        _engines[url] = eng
        return eng


def _why(url: str, err: Exception) -> str:
    text = str(err).lower()
    where = _describe(url)
    if "locked" in text or "busy" in text:
        return f"The run store ({where}) is locked by another program; this run was not recorded. Try again later."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"The run store ({where}) is corrupt; this run was not recorded. Move the file away (a new one is "
            "created) or set LLMVIZ_DB_URL."
        )
    return f"The run store ({where}) cannot be used ({type(err).__name__}); this run was not recorded."


def reset_engines() -> None:
    """Forget cached engines (tests switch LLMVIZ_HOME / LLMVIZ_DB_URL)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


def _guard(fn):
    from sqlalchemy.exc import SQLAlchemyError

    def wrapped(*a, **k):
        try:
            return fn(*a, **k)
        except (SQLAlchemyError, OSError) as err:
            raise RunStoreError(_why(db_url(), err)) from None

    wrapped.__doc__, wrapped.__name__ = fn.__doc__, fn.__name__
    return wrapped


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@_guard
def record_run(
    kind: str,
    model: str,
    summary: dict[str, Any],
    items: Sequence[dict[str, Any]],
    model_hash: str | None = None,
    data_sha256: str | None = None,
    data_path: str | None = None,
    parameters: dict[str, Any] | None = None,
    versions: dict[str, str] | None = None,
    date: str | None = None,
) -> int:
    """Store one run; ``items``: [{"key", "group", "value", "extra"?}]. Returns the run id."""
    from sqlalchemy import insert

    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind}")
    items = list(items)[:MAX_ITEMS_PER_RUN]
    runs, rows = METADATA.tables["runs"], METADATA.tables["run_items"]
    with engine().begin() as conn:
        rid = conn.execute(
            insert(runs).values(
                kind=kind,
                model=str(model),
                model_hash=model_hash,
                data_sha256=data_sha256,
                data_path=data_path,
                parameters=json.dumps(parameters or {}, default=str),
                versions=json.dumps(versions or package_versions()),
                date=date or _now(),
                summary=json.dumps(summary, default=_num),
                n_items=len(items),
            )
        ).inserted_primary_key[0]
        if items:
            conn.execute(
                insert(rows),
                [
                    {
                        "run_id": rid,
                        "idx": i,
                        "item_key": str(it["key"])[:512],
                        "grp": str(it.get("group", ""))[:128],
                        "value": None if it.get("value") is None else float(it["value"]),
                        "extra": json.dumps(it.get("extra") or {}, default=_num),
                    }
                    for i, it in enumerate(items)
                ],
            )
    return int(rid)


def _num(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def try_record(**kwargs) -> tuple[int | None, str | None]:
    """record_run that never raises: (run id, None) or (None, a message to show as a warning)."""
    try:
        return record_run(**kwargs), None
    except RunStoreError as err:
        return None, str(err)


def _meta(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "model": row.model,
        "model_hash": row.model_hash,
        "data_sha256": row.data_sha256,
        "data_path": row.data_path,
        "date": row.date,
        "summary": json.loads(row.summary or "{}"),
        "parameters": json.loads(row.parameters or "{}"),
        "versions": json.loads(row.versions or "{}"),
        "n_items": row.n_items,
    }


@_guard
def list_runs(limit: int = 500, kind: str | None = None) -> list[dict[str, Any]]:
    """Runs, newest first (metadata and summary, no items)."""
    from sqlalchemy import select

    runs = METADATA.tables["runs"]
    q = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if kind:
        q = q.where(runs.c.kind == kind)
    with engine().connect() as conn:
        return [_meta(r) for r in conn.execute(q)]


def comparable_pair(runs: Sequence[dict[str, Any]]) -> tuple[int, int] | None:
    """The pair of runs to compare first, as ``(id_a, id_b)``: B is the newest run that has an older run of
    the same kind, A that older run — the newest one on the same data file (``data_sha256``) when there is
    one, else the newest of the same kind. None when no two runs share a kind. ``runs``: as ``list_runs``."""
    ordered = sorted(runs, key=lambda r: r["id"], reverse=True)
    for i, b in enumerate(ordered):
        older = [r for r in ordered[i + 1 :] if r["kind"] == b["kind"]]
        if older:
            same_data = [r for r in older if b.get("data_sha256") and r.get("data_sha256") == b["data_sha256"]]
            return (same_data or older)[0]["id"], b["id"]
    return None


@_guard
def get_run(run_id: int, with_items: bool = True) -> dict[str, Any]:
    from sqlalchemy import select

    runs, rows = METADATA.tables["runs"], METADATA.tables["run_items"]
    with engine().connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == int(run_id))).first()
        if row is None:
            raise RunStoreError(f"No run with id {run_id}. `python -m llmviz runs list` shows the ids.")
        out = _meta(row)
        if with_items:
            out["items"] = [
                {"key": r.item_key, "group": r.grp, "value": r.value, "extra": json.loads(r.extra or "{}")}
                for r in conn.execute(select(rows).where(rows.c.run_id == int(run_id)).order_by(rows.c.idx))
            ]
    return out


def compare_runs(id_a: int, id_b: int, n_boot: int = 5000, seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two runs on the same items: per item ``diff = value_b - value_a``, its mean with a
    percentile bootstrap 95 % CI (items resampled in pairs), per group (bias type) and overall."""
    a, b = get_run(id_a), get_run(id_b)
    notes, note_codes = [], []  # English for the CLI; the codes let a page show them in its reader's language
    if a["kind"] != b["kind"]:
        raise RunStoreError(
            f"Run {id_a} is a {a['kind']} run and run {id_b} a {b['kind']} run; compare runs of one kind."
        )
    if a["data_sha256"] != b["data_sha256"]:
        notes.append("The two runs used different data files; only items with the same key are compared.")
        note_codes.append("different_data")
    vb = {(it["group"], it["key"]): it["value"] for it in b["items"]}
    pairs = [
        (it["group"], it["key"], it["value"], vb[(it["group"], it["key"])])
        for it in a["items"]
        if (it["group"], it["key"]) in vb and it["value"] is not None and vb[(it["group"], it["key"])] is not None
    ]
    if not pairs:
        raise RunStoreError(f"Runs {id_a} and {id_b} share no items; compare runs on the same data.")

    def block(sel):
        va = np.array([p[2] for p in sel], float)
        vb_ = np.array([p[3] for p in sel], float)
        d = vb_ - va
        lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
        return {
            "n": len(sel),
            "mean_a": float(va.mean()),
            "mean_b": float(vb_.mean()),
            "mean_diff": float(d.mean()),
            "ci95": [lo, hi],
        }

    groups = {g: block([p for p in pairs if p[0] == g]) for g in sorted({p[0] for p in pairs})}
    strip = lambda r: {k: r[k] for k in ("id", "kind", "model", "model_hash", "data_sha256", "date", "summary")}
    return {
        "a": strip(a),
        "b": strip(b),
        "same_data": a["data_sha256"] == b["data_sha256"],
        "notes": notes,
        "note_codes": note_codes,  # one per note: the catalogue key benchmarks.runs_note_<code>
        "n_shared": len(pairs),
        "overall": block(pairs),
        "by_group": groups,
        "items": [{"group": g, "key": k, "value_a": x, "value_b": y, "diff": y - x} for g, k, x, y in pairs],
        "n_boot": n_boot,
        "seed": seed,
    }
