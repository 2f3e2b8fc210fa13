"""A throwaway PostgreSQL server for the run-store tests (issue 25): Debian's binaries, ``initdb`` in a temporary
folder, ``pg_ctl start`` on a free local port (TCP on 127.0.0.1 only, trust authentication, fsync off), stopped
and removed at the end of the session. Never a system service.

PostgreSQL refuses to run as root; under root the server runs as the ``postgres`` user the Debian package
creates (its data folder is handed to that user). ``make test`` installs the package (``make postgres``)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    port: int
    folder: Path
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_user() -> dict:
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")  # created by the Debian package
    return {"user": pw.pw_uid, "group": pw.pw_gid}


def start() -> PgServer:
    """Start a server; raises RuntimeError with what is missing."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL binaries not found: `make postgres` (part of `make test`) installs them")
    owner = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="llmviz-pg-"))
    if owner:
        os.chown(folder, owner["user"], owner["group"])
    data = folder / "data"
    run = dict(check=True, capture_output=True, text=True, timeout=120, **owner)
    subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], **run)
    port = free_port()
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run([pg_ctl, "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "-t", "60", "start"], **run)
    return PgServer(port, folder)


def stop(server: PgServer) -> None:
    pg_ctl = find_bin("pg_ctl")
    try:
        subprocess.run(
            [pg_ctl, "-D", str(server.folder / "data"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            **_as_user(),
        )
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)
