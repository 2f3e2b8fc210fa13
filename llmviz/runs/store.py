"""Run store on SQLAlchemy: ``$LLMVIZ_HOME/runs.sqlite`` (default ``LLMVIZ_HOME`` = the llmviz cache dir), or
any database URL in ``LLMVIZ_DB_URL`` (e.g. ``postgresql+psycopg://user@host/llmviz`` for a lab; the driver
must be installed).

Tables (schema version 2): ``schema_version(version)`` (one row); ``runs(id, uid, kind, model, model_hash,
data_sha256, data_path, parameters, versions, date, summary, n_items)`` with JSON text columns and a unique
``uid`` per run; ``run_items(run_id, idx, item_key, grp, value, extra)``: one row per scored item (a pair, a
StereoSet example, a SEAT target item, a template cell). ``value`` is the item's contribution to the run's
headline metric, so two runs on the same data compare item by item (:func:`compare_runs`). Migrations are
numbered, idempotent functions in MIGRATIONS, applied in order inside one transaction under an exclusive lock
(SQLite ``BEGIN EXCLUSIVE``, PostgreSQL an advisory lock), so processes opening a fresh store at once leave one
schema and one version row; a store already at this version is only read at open.

Concurrent writers (a class running audits, ``audit-matrix`` on Ray): SQLite runs in WAL mode (readers never
wait for a writer), every write is one ``BEGIN IMMEDIATE`` transaction, and "database is locked" is retried with
backoff for up to ``LOCK_WAIT_S`` seconds (``LLMVIZ_STORE_WAIT_S``). A run that still cannot be written is
spooled: :func:`try_record` writes it atomically to ``<store>.spool/<uid>.json`` beside the store (``runs.spool``
for the default; ``runs-<hash>.spool`` in ``LLMVIZ_HOME`` for a server URL), says so in its warning, and the
next open of the store (or the next run recorded by this process) imports it; the unique ``uid`` makes the
import happen exactly once even when several processes import at the same time. PostgreSQL takes the same
path (no pragmas, no WAL).

A store that cannot be opened (corrupt file, locked, unreachable server) raises RunStoreError, worded for what
was asked (recording a run or reading runs); callers that record an audit use :func:`try_record`, which turns
that into a warning so the audit itself still completes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from llmviz.bias.stats import bootstrap_ci
from llmviz.errors import LlmvizError
from llmviz.models.loading import cache_dir
from llmviz.report import package_versions

SCHEMA_VERSION = 2
DB_FILE = "runs.sqlite"
KINDS = ("crows_pairs", "stereoset", "seat", "weat", "template_probe", "mechanism")
MAX_ITEMS_PER_RUN = 200_000


def _wait_s() -> float:
    try:
        return max(0.0, float(os.environ.get("LLMVIZ_STORE_WAIT_S") or 30.0))
    except ValueError:
        return 30.0


LOCK_WAIT_S = _wait_s()  # seconds a locked store is retried before a run is spooled (LLMVIZ_STORE_WAIT_S)
SQLITE_BUSY_S = 5.0  # SQLite's own busy timeout per attempt (at most LOCK_WAIT_S)
_PG_LOCK_KEY = 0x6C6C6D76  # advisory lock taken by migrations on PostgreSQL ("llmv")
_engines: dict[str, Any] = {}
_lock = threading.Lock()


class RunStoreError(LlmvizError):
    """The run store cannot be read or written."""


def home() -> Path:
    return Path(os.environ.get("LLMVIZ_HOME") or cache_dir()).expanduser()


def db_url() -> str:
    return os.environ.get("LLMVIZ_DB_URL") or f"sqlite:///{home() / DB_FILE}"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def _describe(url: str) -> str:
    """Where the store is, without server paths or passwords."""
    if url.startswith("sqlite"):
        f = _sqlite_file(url)
        return f.name if f is not None else DB_FILE
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"{scheme} database (LLMVIZ_DB_URL)" if scheme.replace("+", "").isalnum() else "LLMVIZ_DB_URL"


def engine_url(url: str) -> str:
    """``url`` with the driver llmviz installs: ``postgres://`` and ``postgresql://`` (SQLAlchemy's default
    driver, psycopg2, is not installed) become ``postgresql+psycopg://``."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def spool_dir(url: str | None = None) -> Path | None:
    """Where runs that could not be written wait: beside a SQLite file (``runs.sqlite`` -> ``runs.spool``),
    else ``LLMVIZ_HOME/runs-<hash of the URL>.spool``; None for an in-memory database."""
    url = url or db_url()
    f = _sqlite_file(url)
    if f is not None:
        return f.with_suffix(".spool")
    if url.startswith("sqlite"):
        return None
    return home() / f"runs-{hashlib.sha256(url.encode()).hexdigest()[:12]}.spool"


def _tables():
    from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

    md = MetaData()
    Table("schema_version", md, Column("version", Integer, nullable=False))
    runs = Table(
        "runs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uid", String(32)),
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
    Index("ux_runs_uid", runs.c.uid, unique=True)
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
    METADATA.create_all(conn, tables=[METADATA.tables["runs"], METADATA.tables["run_items"]])  # checkfirst


def _m2(conn) -> None:
    """A unique id per run (spooled runs are imported once by it)."""
    from sqlalchemy import inspect

    if "uid" not in {c["name"] for c in inspect(conn).get_columns("runs")}:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN uid VARCHAR(32)")
    conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ux_runs_uid ON runs (uid)")


# Append (3, fn) etc.; never edit an applied one. Each must be idempotent (a fresh store gets the current tables
# from _m1 and then every later migration).
MIGRATIONS: list[tuple[int, Callable]] = [(1, _m1), (2, _m2)]


def _retriable(err: Exception) -> bool:
    text = str(getattr(err, "orig", None) or err).lower()
    return "locked" in text or "busy" in text or "deadlock" in text


def _retry(fn: Callable[[], Any]) -> Any:
    """``fn()``, again with backoff (20 ms doubling to 1 s, jittered) while the store is locked, for up to
    LOCK_WAIT_S seconds; then the last error goes up."""
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.02
    while True:
        try:
            return fn()
        except OperationalError as err:
            if not _retriable(err) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(2 * delay, 1.0)


def _transaction(eng, conn, mode: str = "IMMEDIATE"):
    """Begin a write transaction: SQLite takes the write lock at BEGIN (``mode``), so no transaction ever has
    to upgrade a read lock (which SQLite refuses without waiting); PostgreSQL begins as usual."""
    if eng.dialect.name == "sqlite":
        conn.execution_options(llmviz_begin=mode)
    return conn.begin()


def _newer(url: str, current: int) -> RunStoreError:
    return RunStoreError(
        f"The run store ({_describe(url)}) has schema version {current}, newer "
        f"than this llmviz ({SCHEMA_VERSION}). Update llmviz or set LLMVIZ_DB_URL elsewhere."
    )


def _versions(conn) -> list[int] | None:
    from sqlalchemy import inspect, select

    if not inspect(conn).has_table("schema_version"):
        return None
    return [r[0] for r in conn.execute(select(METADATA.tables["schema_version"].c.version))]


def _migrate(eng) -> None:
    """Bring the store to SCHEMA_VERSION. A store already there is only read; otherwise the check and every
    migration run again in one transaction under an exclusive lock, so concurrent openers migrate once."""
    from sqlalchemy import delete, insert

    url = str(eng.url)
    with eng.connect() as conn:
        found = _versions(conn)
    if found and max(found) > SCHEMA_VERSION:
        raise _newer(url, max(found))
    if found == [SCHEMA_VERSION]:
        return
    ver = METADATA.tables["schema_version"]
    with eng.connect() as conn, _transaction(eng, conn, "EXCLUSIVE"):
        if eng.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        METADATA.create_all(conn, tables=[ver])
        found = _versions(conn) or []
        current = max(found, default=0)
        if current > SCHEMA_VERSION:
            raise _newer(url, current)
        for number, fn in MIGRATIONS:
            if number > current:
                fn(conn)
                current = number
        if found != [current]:  # one row, whatever an older build's race left
            conn.execute(delete(ver))
            conn.execute(insert(ver).values(version=current))


def _create_engine(url: str):
    from sqlalchemy import create_engine, event

    if not url.startswith("sqlite"):
        return create_engine(engine_url(url), pool_pre_ping=True, connect_args=_connect_timeout(url))
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(url, connect_args={"timeout": max(0.05, min(SQLITE_BUSY_S, LOCK_WAIT_S))})

    @event.listens_for(eng, "connect")
    def _connect(dbapi_con, _record):
        dbapi_con.isolation_level = None  # the driver begins nothing itself: _begin below does
        if path is not None:
            cur = dbapi_con.cursor()
            try:
                cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            finally:
                cur.close()

    @event.listens_for(eng, "begin")
    def _begin(conn):
        mode = conn.get_execution_options().get("llmviz_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return eng


def _connect_timeout(url: str) -> dict[str, Any]:
    """A server that does not answer fails after 10 s instead of the driver's minutes."""
    return {"connect_timeout": 10} if engine_url(url).startswith("postgresql+psycopg") else {}


def engine():
    """The engine for the current URL, created and migrated once per process (retried while locked); runs
    spooled earlier are imported then. Raises SQLAlchemy's errors (public callers go through _guard)."""
    url = db_url()
    with _lock:
        if url in _engines:
            return _engines[url]
        eng = _create_engine(url)
        try:
            _retry(lambda: _migrate(eng))
        except BaseException:
            eng.dispose()
            raise
        _engines[url] = eng
    import_spool(eng, url)
    return eng


_READ = "read"
_WRITE = "write"


def _cause(url: str, err: Exception) -> tuple[str, str]:
    """(what is wrong with the store, what to do) for a message."""
    text = str(err).lower()
    where = _describe(url)
    name = type(err).__name__
    if isinstance(err, ImportError) or name == "NoSuchModuleError":
        return (
            f"The run store ({where}) needs a database driver that is not installed",
            ' For PostgreSQL: pip install "psycopg[binary]" (make install does) and use postgresql+psycopg://.',
        )
    if name == "ArgumentError":
        return (
            "LLMVIZ_DB_URL is not a database URL",
            " Write it as postgresql+psycopg://user@host:5432/llmviz (or unset it for the local SQLite file).",
        )
    if "does not exist" in text and "database" in text:
        return (
            f"The database named in LLMVIZ_DB_URL does not exist on the server ({where})",
            " Create it first (createdb llmviz) or correct the name.",
        )
    if "authentication failed" in text or "password" in text and "fail" in text:
        return f"The server refused the user or password in LLMVIZ_DB_URL ({where})", " Check the credentials."
    if "refused" in text or "could not connect" in text or "timeout" in text or "timed out" in text:
        return (
            f"The database server in LLMVIZ_DB_URL cannot be reached ({where})",
            " Is it running, and are the host and port right?",
        )
    if "locked" in text or "busy" in text:
        return f"The run store ({where}) is locked by another program", " Try again later."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"The run store ({where}) is corrupt",
            " Move the file away (a new one is created) or set LLMVIZ_DB_URL.",
        )
    return f"The run store ({where}) cannot be used ({type(err).__name__})", ""


def _why(url: str, err: Exception, action: str = _WRITE) -> str:
    cause, advice = _cause(url, err)
    if action == _READ:
        if "locked" in cause:
            return f"{cause}; the runs cannot be read right now. Try again in a moment."
        return f"{cause}; the runs cannot be read.{advice}"
    return f"{cause}; this run was not recorded.{advice}"


class _NotWritten(RunStoreError):
    """record_run failed; ``cause`` and ``advice`` let try_record say where the run went instead."""

    def __init__(self, message: str, cause: str, advice: str):
        super().__init__(message)
        self.cause, self.advice = cause, advice


def reset_engines() -> None:
    """Forget cached engines (tests switch LLMVIZ_HOME / LLMVIZ_DB_URL)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


def _guard(action: str):
    def decorate(fn):
        from sqlalchemy.exc import SQLAlchemyError

        def wrapped(*a, **k):
            try:
                return fn(*a, **k)
            except (SQLAlchemyError, OSError, ImportError) as err:
                url = db_url()
                if action == _WRITE:
                    raise _NotWritten(_why(url, err, action), *_cause(url, err)) from None
                raise RunStoreError(_why(url, err, action)) from None

        wrapped.__doc__, wrapped.__name__ = fn.__doc__, fn.__name__
        return wrapped

    return decorate


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _doc(
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
) -> dict[str, Any]:
    """One run as the rows it becomes (JSON text already serialised): what is written, or spooled."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind}")
    items = list(items)[:MAX_ITEMS_PER_RUN]
    return {
        "uid": uuid.uuid4().hex,
        "run": {
            "kind": kind,
            "model": str(model),
            "model_hash": model_hash,
            "data_sha256": data_sha256,
            "data_path": data_path,
            "parameters": json.dumps(parameters or {}, default=str),
            "versions": json.dumps(versions or package_versions()),
            "date": date or _now(),
            "summary": json.dumps(summary, default=_num),
            "n_items": len(items),
        },
        "items": [
            {
                "idx": i,
                "item_key": str(it["key"])[:512],
                "grp": str(it.get("group", ""))[:128],
                "value": None if it.get("value") is None else float(it["value"]),
                "extra": json.dumps(it.get("extra") or {}, default=_num),
            }
            for i, it in enumerate(items)
        ],
    }


def _insert_run(conn, doc: dict[str, Any]) -> int:
    """The INSERTs of one run (inside the caller's transaction). Returns the new run id."""
    from sqlalchemy import insert

    runs, rows = METADATA.tables["runs"], METADATA.tables["run_items"]
    rid = conn.execute(insert(runs).values(uid=doc["uid"], **doc["run"])).inserted_primary_key[0]
    if doc["items"]:
        conn.execute(insert(rows), [{"run_id": rid, **it} for it in doc["items"]])
    return int(rid)


def _write(eng, doc: dict[str, Any]) -> int:
    with eng.connect() as conn, _transaction(eng, conn):
        return _insert_run(conn, doc)


@_guard(_WRITE)
def _record(doc: dict[str, Any]) -> int:
    eng = engine()
    rid = _retry(lambda: _write(eng, doc))
    import_spool(eng, db_url())  # a long-running server imports what it spooled earlier
    return rid


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
    """Store one run; ``items``: [{"key", "group", "value", "extra"?}]. Returns the run id. Raises
    RunStoreError when the store cannot be written (see :func:`try_record`, which spools the run then)."""
    return _record(_doc(kind, model, summary, items, model_hash, data_sha256, data_path, parameters, versions, date))


def _num(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def spool_run(doc: dict[str, Any], url: str | None = None) -> Path | None:
    """Write a run that could not be stored to the spool folder, atomically (a temporary file renamed into
    place, so an importer never sees half a file). Returns the file, or None when it cannot be written."""
    folder = spool_dir(url)
    if folder is None:
        return None
    final = folder / f"{doc['uid']}.json"
    tmp = folder / f"{doc['uid']}.json.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"format": 1, **doc}, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        return None
    return final


def import_spool(eng=None, url: str | None = None) -> int:
    """Add the spooled runs to the store (oldest first) and remove their files; returns how many were added.
    A run already added (same uid: another process imported it first) is not added again. Stops quietly at
    the first write that fails (the store is busy: the rest waits for the next open). Unreadable files stay."""
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    url = url or db_url()
    folder = spool_dir(url)
    try:
        files = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)) if folder else []
    except OSError:  # the folder is missing, or a file went while listing (another importer)
        return 0
    if not files:
        return 0
    n = 0
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            if not (isinstance(doc, dict) and isinstance(doc.get("run"), dict) and isinstance(doc.get("items"), list)):
                continue
            _write(eng or engine(), doc)
            n += 1
        except FileNotFoundError:
            continue
        except IntegrityError:
            pass  # already in the store
        except (ValueError, KeyError, TypeError):
            continue  # not a spool file of ours: left for a person
        except (SQLAlchemyError, OSError):
            break
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        folder.rmdir()  # only when empty
    except OSError:
        pass
    return n


def _spool_note(folder: Path, name: str, url: str) -> str:
    where = f"{folder.name}/{name}"
    return where + (" beside it" if _sqlite_file(url) is not None else " in LLMVIZ_HOME")


def try_record(**kwargs) -> tuple[int | None, str | None]:
    """record_run that never raises: (run id, None), or (None, a message to show as a warning). A run the
    store cannot take is spooled (:func:`spool_run`) and the message says where it waits."""
    doc = _doc(**kwargs)
    try:
        return _record(doc), None
    except RunStoreError as err:
        url = db_url()
        path = spool_run(doc, url)
        if path is None:
            return None, str(err)
        saved = f"this run was saved to {_spool_note(path.parent, path.name, url)} and is added to the store"
        if isinstance(err, _NotWritten):
            return None, f"{err.cause}; {saved} the next time it opens.{err.advice}"
        return None, f"{err} Meanwhile {saved} once it can be opened."


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


@_guard(_READ)
def list_runs(limit: int = 500, kind: str | None = None) -> list[dict[str, Any]]:
    """Runs, newest first (metadata and summary, no items)."""
    from sqlalchemy import select

    runs = METADATA.tables["runs"]
    q = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if kind:
        q = q.where(runs.c.kind == kind)
    eng = engine()

    def read():
        with eng.connect() as conn:
            return [_meta(r) for r in conn.execute(q)]

    return _retry(read)


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


@_guard(_READ)
def get_run(run_id: int, with_items: bool = True) -> dict[str, Any]:
    eng = engine()
    return _retry(lambda: _get_run(eng, run_id, with_items))


def _get_run(eng, run_id: int, with_items: bool) -> dict[str, Any]:
    from sqlalchemy import select

    runs, rows = METADATA.tables["runs"], METADATA.tables["run_items"]
    with eng.connect() as conn:
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


def _precision(run: dict[str, Any]) -> str:
    """The arithmetic a stored run was scored in (``llmviz.precision``; runs recorded before it: exact)."""
    return str((run.get("parameters") or {}).get("precision") or "exact")


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
    if _precision(a) != _precision(b):
        notes.append(
            "The two runs used different arithmetic (exact float32 and a fast mode): part of the difference comes "
            "from the fast mode's rounding, not from the model."
        )
        note_codes.append("different_precision")
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
