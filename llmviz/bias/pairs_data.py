"""Minimal-pair data in the CrowS-Pairs CSV format: loading, validation, the bundled starter set.

Required columns: ``sent_more, sent_less, stereo_antistereo, bias_type`` (extra columns, such as the
unnamed index and annotation columns of the original CrowS-Pairs file, are ignored).
``stereo_antistereo`` is ``stereo`` or ``antistereo``. Every error names the row (1 = first data row)
and says how to fix it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd

from llmviz import serving
from llmviz.errors import InputError
from llmviz.limits import MAX_CSV_BYTES, MAX_UPLOAD_MB, megabytes
from llmviz.safe_io import line_of, reading

COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
DIRECTIONS = ("stereo", "antistereo")
DATA_DIR = Path(__file__).resolve().parent / "data"
STARTER_CSV = DATA_DIR / "starter_pairs.csv"
MAX_UPLOAD_BYTES = MAX_CSV_BYTES
CHUNK_ROWS = 256


@dataclass
class PairSet:
    """Validated minimal pairs: a DataFrame with the four COLUMNS (index 0..n-1) and where they came from."""

    frame: pd.DataFrame
    source: str
    sha256: str
    notices: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


def _decode(data: bytes, name: str) -> str:
    if not data or not data.strip():
        raise InputError(f"'{name}' is empty. Give a CSV with the columns {', '.join(COLUMNS)}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"'{name}' is not UTF-8 text (near line {line_of(data, err.start)}). "
            "Save the file as UTF-8 (e.g. in a spreadsheet: 'CSV UTF-8') and try again."
        ) from None


def validate_frame(
    df: pd.DataFrame, name: str = "CSV", first_row: int = 1, notices: list[str] | None = None
) -> pd.DataFrame:
    """Check columns and values; return the four columns as stripped strings. Raises InputError.

    Rows where every column is empty (spreadsheet leftovers) are dropped and counted in ``notices``.
    """
    cols = [str(c).strip() for c in df.columns]
    df = df.set_axis(cols, axis=1)
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise InputError(
            f"'{name}' lacks the column(s) {', '.join(missing)}. A CrowS-Pairs CSV needs the header "
            f"{','.join(COLUMNS)} (the first line has {len(cols)} column(s))."
        )
    df = df[list(COLUMNS)].copy()
    blank = df.isna().all(axis=1) | df.apply(lambda c: c.astype(str).str.strip() == "").all(axis=1)
    df = df[~blank]
    if blank.any() and notices is not None:
        notices.append(
            f"Skipped {int(blank.sum())} empty row(s) in '{name}' (row(s) "
            f"{', '.join(str(first_row + i) for i in list(blank[blank].index)[:10])})."
        )
    for c in COLUMNS:
        df[c] = df[c].fillna("").astype(str).str.strip()
    rows = lambda mask: ", ".join(str(first_row + i) for i in list(df.index[mask])[:10])  # noqa: E731
    for c in ("sent_more", "sent_less"):
        empty = df[c] == ""
        if empty.any():
            raise InputError(f"'{name}': {c} is empty in row(s) {rows(empty)}. Every pair needs both sentences.")
    df["stereo_antistereo"] = df["stereo_antistereo"].str.lower()
    bad = ~df["stereo_antistereo"].isin(DIRECTIONS)
    if bad.any():
        raise InputError(
            f"'{name}': stereo_antistereo must be 'stereo' or 'antistereo'; row(s) {rows(bad)} have another value."
        )
    df.loc[df["bias_type"] == "", "bias_type"] = "unspecified"
    same = df["sent_more"] == df["sent_less"]
    if same.any():
        raise InputError(
            f"'{name}': sent_more and sent_less are identical in row(s) {rows(same)}; a minimal pair must differ."
        )
    return df


def _fields_match(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """pandas takes the first field(s) as an index when the first data row has more fields than the header
    (the columns would shift); refuse that in words."""
    if not isinstance(df.index, pd.RangeIndex):
        raise InputError(
            f"'{name}' is not a well-formed CSV: the first data row has more fields than the header "
            f"({len(df.columns)}). Quote sentences that contain commas."
        )
    return df


def _read(text: str, name: str, **kw):
    """pandas' parse of ``text``; its errors in words (safe_io.reading), never pandas' own text."""
    with reading(f"'{name}'"):
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True, **kw)
            return _fields_match(frame, name)
        except pd.errors.EmptyDataError:
            raise InputError(f"'{name}' has no rows. Give a CSV with the header {','.join(COLUMNS)}.") from None


def parse_pairs(data: bytes, name: str = "upload.csv") -> PairSet:
    """Validate CSV bytes (an upload) and return the pairs."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"'{name}' is {megabytes(len(data)):.0f} MB; the page accepts up to {MAX_UPLOAD_MB} MB. "
            "Use the CLI (`python -m llmviz bias-audit`) for larger files."
        )
    notices: list[str] = []
    with reading(f"'{name}'"):  # whatever pandas or the checks meet (memory...) becomes one sentence
        df = validate_frame(_read(_decode(data, name), name), name, notices=notices)
    if df.empty:
        raise InputError(f"'{name}' has a header but no pairs (every row is empty).")
    return PairSet(df.reset_index(drop=True), name, hashlib.sha256(data).hexdigest(), notices)


def load_pairs(path: str | os.PathLike) -> PairSet:
    """Read and validate a CSV file the user named: the serving mode decides which paths are allowed,
    the size is checked before reading, and messages name the path only as typed."""
    typed = str(path).strip()
    return parse_pairs(serving.read_user_file(typed, "data", MAX_UPLOAD_BYTES), typed)


def starter_pairs() -> PairSet:
    """The bundled illustrative starter set (written for llmviz; NOT a benchmark)."""
    return parse_pairs(STARTER_CSV.read_bytes(), STARTER_CSV.name)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_pairs_file(
    path: str | os.PathLike, chunk_rows: int = CHUNK_ROWS, notices: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Stream a large CSV in validated chunks (bounded memory); row numbers in errors stay global.

    The file is decoded incrementally as UTF-8; a decoding error names the chunk's first row.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"No CSV file at '{p}'. Check the path.")
    if p.stat().st_size == 0:
        raise InputError(f"'{p}' is empty. Give a CSV with the columns {', '.join(COLUMNS)}.")
    first = 1
    with reading(f"'{p}'"):  # pandas' own errors (a quote left open...) in words
        try:
            with open(p, encoding="utf-8-sig", newline="") as fh:
                reader = pd.read_csv(fh, dtype=str, keep_default_na=False, skip_blank_lines=True, chunksize=chunk_rows)
                for chunk in reader:
                    chunk = _fields_match(chunk, str(p))
                    chunk.index = range(len(chunk))
                    yield validate_frame(chunk, str(p), first, notices).reset_index(drop=True)
                    first += len(chunk)
        except UnicodeDecodeError:
            raise InputError(
                f"'{p}' is not UTF-8 text (near data row {first}). Save it as UTF-8 and try again."
            ) from None
        except pd.errors.EmptyDataError:
            raise InputError(f"'{p}' has no rows. Give a CSV with the header {','.join(COLUMNS)}.") from None


def count_rows(path: str | os.PathLike) -> int:
    """Data rows of a CSV file that are not empty (for a progress total), read as the csv module splits them;
    a malformed file is an InputError in words (an unclosed quote, a field too long...)."""
    p = Path(path).expanduser()
    with reading(f"'{p}'"), open(p, encoding="utf-8-sig", errors="replace", newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        return sum(1 for r in rows if any(c.strip() for c in r))
