"""Serving mode: the ONE place that decides whether this server is used by one person or a class.

* ``localhost`` (default): the server listens on 127.0.0.1; path inputs may name any local file or folder.
* ``shared``: ``LLMVIZ_SHARED=1``, or the page layer reports a non-loopback ``server.address``
  (:func:`set_server_address`). Path inputs are accepted only under the folders listed in
  ``LLMVIZ_MODEL_DIRS`` (model folders / GGUF files) or ``LLMVIZ_DATA_DIRS`` (CSV files), separated by
  ``os.pathsep``; everything else goes through uploads.

Paths are resolved (``..`` and symlinks followed) before the check, so nothing escapes a root.
Errors raised here name only what the user typed: never the resolved path, the roots, other file
names or file contents. Sizes are checked with ``stat`` before any byte is read.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from llmviz.errors import InputError
from llmviz.limits import MAX_PATH_CHARS, megabytes

LOCALHOST, SHARED = "localhost", "shared"
MODEL_DIRS_ENV, DATA_DIRS_ENV, SHARED_ENV = "LLMVIZ_MODEL_DIRS", "LLMVIZ_DATA_DIRS", "LLMVIZ_SHARED"
KINDS = {"model": MODEL_DIRS_ENV, "data": DATA_DIRS_ENV}

_server_address: str | None = None


class PathNotAllowedError(InputError):
    """A path input is refused by the serving mode (shared server, outside the allowed folders)."""


def set_server_address(address: str | None) -> None:
    """Record Streamlit's ``server.address`` (the page layer calls this once per run)."""
    global _server_address  # noqa: PLW0603 - one process-wide fact
    _server_address = (address or "").strip() or None


def is_loopback(address: str | None) -> bool:
    """True for an unset address, ``localhost`` and loopback IPs; wildcard and LAN addresses are not."""
    if not address:
        return True  # our .streamlit/config.toml default is 127.0.0.1
    if address.lower() in ("localhost", "ip6-localhost"):
        return True
    if address.startswith("unix://"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: reachable by others


def mode() -> str:
    """``"shared"`` or ``"localhost"``."""
    if os.environ.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return SHARED
    return LOCALHOST if is_loopback(_server_address) else SHARED


def is_shared() -> bool:
    return mode() == SHARED


def roots(kind: str) -> list[Path]:
    """The allowed folders for ``kind`` ("model" or "data"), resolved; missing ones are skipped."""
    raw = os.environ.get(KINDS[kind], "")
    out = []
    for part in raw.split(os.pathsep):
        if part.strip():
            try:
                out.append(Path(part.strip()).expanduser().resolve(strict=True))
            except (OSError, RuntimeError):
                continue
    return out


def paths_allowed(kind: str) -> bool:
    """Whether the page should offer a path box for ``kind`` at all."""
    return not is_shared() or bool(roots(kind))


def resolve_user_path(typed: str, kind: str) -> Path:
    """The path the user typed, resolved and checked against the serving mode.

    Raises :class:`PathNotAllowedError` / :class:`InputError` whose text names only ``typed``.
    In shared mode a relative path is taken relative to each allowed root in turn.
    """
    typed = (typed or "").strip()
    if not typed:
        raise InputError("No path given.")
    if len(typed) > MAX_PATH_CHARS:  # refused before any message could echo it
        raise InputError(f"The path is {len(typed):,} characters long; the limit is {MAX_PATH_CHARS:,}.")
    if "\x00" in typed:
        raise InputError("The path contains a NUL character.")
    if not is_shared():
        return Path(typed).expanduser()
    allowed = roots(kind)
    if not allowed:
        raise PathNotAllowedError(
            "This is a shared server: reading files by path is switched off. Upload the file instead"
            + (" (or ask the teacher to add the model to the bundled list)." if kind == "model" else ".")
        )
    raw = Path(typed)
    candidates = [raw] if raw.is_absolute() else [root / raw for root in allowed]
    for cand in candidates:
        try:
            real = cand.resolve(strict=True)  # follows symlinks and '..'
        except (OSError, RuntimeError):
            continue
        if any(real == root or root in real.parents for root in allowed):
            return real
    raise PathNotAllowedError(
        f"'{typed}' is not inside the folders this shared server allows "
        f"({'LLMVIZ_MODEL_DIRS' if kind == 'model' else 'LLMVIZ_DATA_DIRS'}), or does not exist. "
        "Upload the file instead, or ask the teacher which folders are available."
    )


MAX_FOLDER_ENTRIES = 10_000  # files a model folder may hold (checked one by one on a shared server)


def check_folder_inside_roots(folder: Path, kind: str = "model") -> None:
    """On a shared server, every file a loader may open in ``folder`` (config, tokenizer files, weights, any
    sub-folder) must resolve inside the allowed folders: a symlink such as ``config.json -> /etc/passwd`` is
    refused. The message names the file as it is in the folder, never its target. No-op in localhost mode."""
    if not is_shared():
        return
    allowed = roots(kind)
    for i, entry in enumerate(folder.rglob("*")):
        if i >= MAX_FOLDER_ENTRIES:
            raise InputError(f"This folder holds more than {MAX_FOLDER_ENTRIES:,} files; a model folder needs a few.")
        try:
            real = entry.resolve(strict=True)
        except (OSError, RuntimeError):
            real = None
        if real is None or not any(real == root or root in real.parents for root in allowed):
            name = entry.relative_to(folder).as_posix()
            raise PathNotAllowedError(
                f"'{name[:120]}' in this model folder points outside the folders this shared server allows "
                "(a link to another place). Ask the teacher to copy the real files into the folder."
            )


def read_user_file(typed: str, kind: str, max_bytes: int) -> bytes:
    """Read a regular file named by the user, after the mode check and a size check by ``stat``.

    Never reads special files (``/proc``, devices, FIFOs) and never more than ``max_bytes`` bytes."""
    path = resolve_user_path(typed, kind)
    try:
        st = path.stat()
    except OSError:
        raise InputError(f"No file at '{typed}'. Check the path.") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"'{typed}' is a folder; give a file.")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"'{typed}' is not a regular file.")
    if _is_procfs(path):
        raise InputError(f"'{typed}' is not a regular file.")
    if st.st_size == 0:
        raise InputError(f"'{typed}' is empty.")
    if st.st_size > max_bytes:
        raise InputError(
            f"'{typed}' is {megabytes(st.st_size):.1f} MB; the limit here is {megabytes(max_bytes):.0f} MB."
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError:
        raise InputError(f"'{typed}' cannot be read (permissions?).") from None
    if len(data) > max_bytes:  # grew since stat
        raise InputError(f"'{typed}' is larger than the limit of {megabytes(max_bytes):.0f} MB.")
    return data


def _is_procfs(path: Path) -> bool:
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return True
    return real.parts[:2] in (("/", "proc"), ("/", "sys"), ("/", "dev"))
