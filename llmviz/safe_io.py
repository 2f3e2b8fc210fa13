"""Reading a user's file without letting a parser's own failure reach the user.

Every parser of user data (StereoSet and prediction JSON, SEAT files, CrowS-Pairs CSV, a model's
config.json) goes through here, so that *any* failure — malformed text, an encoding other than UTF-8,
brackets nested a hundred thousand deep (``RecursionError``), a file too large for memory
(``MemoryError``), a CSV with an unclosed quote — becomes one :class:`~llmviz.errors.InputError`
sentence that says what is wrong in words. Messages name the file as the caller calls it (``what``)
and a line or row number; they never quote bytes of the file, a library's own message or a
traceback.

- :func:`decode_text`: bytes -> text (UTF-8, a BOM allowed);
- :func:`load_json`: bytes or text -> the JSON value;
- :func:`read_bytes` / :func:`load_json_file`: a file on disk (size checked first) -> bytes / the JSON value;
- :func:`reading`: a ``with`` block around a whole parse (the validation after ``json.loads`` may
  still recurse on a deep value, pandas may run out of memory...);
- :func:`csv_problem`: a csv/pandas parser error in words.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from llmviz.errors import InputError, LlmvizError

# json's messages (err.msg, without position) in words
_JSON_PROBLEMS = {
    "Expecting value": "a value is missing or is not JSON (a trailing comma, a single quote, a bare word?)",
    "Expecting ',' delimiter": "a comma is missing",
    "Expecting ':' delimiter": "a colon is missing",
    "Expecting property name enclosed in double quotes": "a key is not in double quotes (or a trailing comma)",
    "Unterminated string starting at": "a string is not closed",
    "Invalid control character at": "a string holds a raw line break or tab",
    "Invalid \\escape": "a backslash escape is invalid",
    "Invalid \\uXXXX escape": "a \\u escape is invalid",
    "Extra data": "there is more after the first JSON value",
}
_EOF_QUOTE = re.compile(r"EOF inside string(?: starting at row (\d+))?")
_FIELDS = re.compile(r"Expected (\d+) fields? in line (\d+), saw (\d+)")
_FIELD_LIMIT = re.compile(r"field larger than field limit \((\d+)\)")


def line_of(raw: bytes, pos: int) -> int:
    """The 1-based line of byte offset ``pos`` (to say where a problem is without quoting the bytes)."""
    return raw.count(b"\n", 0, max(0, pos)) + 1


def decode_text(raw: bytes, what: str) -> str:
    """``raw`` as UTF-8 text (a leading BOM dropped). Raises InputError naming the line, not the bytes."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{what} is not UTF-8 text (near line {line_of(raw, err.start)}). Save it as UTF-8 and try again."
        ) from None


def json_problem(err: json.JSONDecodeError) -> str:
    """What is wrong, in words, and where (a line number; never the text around it)."""
    problem = _JSON_PROBLEMS.get(err.msg, "a syntax error")
    return f"{problem}, line {err.lineno}"


def load_json(raw: bytes | str, what: str, expect: str = "valid JSON", hint: str = "") -> Any:
    """Parse JSON from an upload's bytes or a text. Every failure is an InputError:
    ``"{what} is not {expect} ({problem}, line N). {hint}"``, or one sentence for a file nested too
    deeply, one too large for memory, one not in UTF-8."""
    with reading(what):
        text = decode_text(raw, what) if isinstance(raw, (bytes, bytearray)) else raw
        if not text.strip():
            raise InputError(f"{what} is empty.")
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{what} is not {expect} ({json_problem(err)}).{' ' + hint if hint else ''}") from None
        except (ValueError, TypeError):  # e.g. an integer of more than 4,300 digits
            raise InputError(f"{what} is not {expect} (a value cannot be read).") from None


def read_bytes(path: str | Path, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a file on disk; its size is checked (``stat``) before anything is read."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(f"{what} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
        with open(p, "rb") as fh:
            raw = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except OSError:
        raise InputError(f"{what} cannot be read (missing, a folder, or no permission?).") from None
    except MemoryError:
        raise InputError(f"{what} is too large to read in this machine's memory.") from None
    if max_bytes is not None and len(raw) > max_bytes:  # grew since stat
        raise InputError(f"{what} is larger than the limit of {max_bytes / 1e6:.0f} MB.")
    return raw


def load_json_file(path: str | Path, what: str, max_bytes: int | None = None) -> Any:
    """The JSON value of a file on disk (at most ``max_bytes``), every failure an InputError naming ``what``."""
    return load_json(read_bytes(path, what, max_bytes), what)


def csv_problem(err: BaseException) -> str:
    """A csv/pandas parser error in words: an unclosed quote, a row with too many fields, a field too long."""
    msg = str(err)
    if m := _EOF_QUOTE.search(msg):
        return "it has an unclosed quote" + (f" near row {m.group(1)}" if m.group(1) else "")
    if m := _FIELDS.search(msg):
        expected, line, saw = m.groups()
        return f"line {line} has {saw} fields where the header has {expected}"
    if m := _FIELD_LIMIT.search(msg):
        return f"a field is longer than {int(m.group(1)):,} characters"
    if "NUL" in msg or "NULL byte" in msg or "null byte" in msg:
        return "it contains NUL characters (is it a spreadsheet file rather than CSV text?)"
    if "Buffer overflow" in msg or "out of memory" in msg.lower():
        return "a line is too long or a quote is broken"
    return "its rows cannot be split into fields"


def _is_csv_error(err: BaseException) -> bool:
    import csv

    if isinstance(err, csv.Error):
        return True
    mod = type(err).__module__ or ""
    return mod.startswith("pandas") and type(err).__name__ in ("ParserError", "EmptyDataError", "ParserWarning")


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Around a whole parse: errors written for the user pass through; any other failure of the parser
    becomes one InputError sentence about ``what`` (no traceback, no library text, no file bytes)."""
    try:
        yield
    except LlmvizError:
        raise
    except RecursionError:
        raise InputError(
            f"{what} is nested too deeply to read (brackets inside brackets, thousands of levels deep)."
        ) from None
    except MemoryError:
        raise InputError(f"{what} is too large to read in this machine's memory.") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text. Save it as UTF-8 and try again.") from None
    except Exception as err:  # noqa: BLE001 - a parser's own failure, whatever its type
        if _is_csv_error(err):
            if type(err).__name__ == "EmptyDataError":
                raise InputError(f"{what} has no rows.") from None
            raise InputError(
                f"{what} is not a well-formed CSV: {csv_problem(err)}. Quote sentences that contain commas, "
                "and close every quote."
            ) from None
        raise InputError(f"{what} cannot be read ({type(err).__name__}).") from None


__all__ = ["decode_text", "load_json", "read_bytes", "load_json_file", "reading", "csv_problem", "json_problem"]
