"""Issue 24, items 1 and 6: every parser of a user's file turns any failure (deep nesting, memory, encoding,
a malformed CSV) into one InputError sentence in words: no traceback, no library text, no bytes of the file."""

from __future__ import annotations

import pytest

from llmviz import safe_io
from llmviz.bias import pairs_data, seat, stereoset
from llmviz.errors import InputError

DEPTH = 100_000
DEEP_STEREOSET = ('{"version":"1","data":' + "[" * DEPTH + "]" * DEPTH + "}").encode()
DEEP_SEAT = ("[" * 50_000 + "]" * 50_000).encode()
HEAD = "sent_more,sent_less,stereo_antistereo,bias_type\n"


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and len(text) < 400, text
    return text


# ---------------------------------------------------------------- the helper
def test_load_json_deep_is_one_sentence():
    with pytest.raises(InputError, match="nested too deeply") as err:
        safe_io.load_json(DEEP_STEREOSET, "deep.json")
    assert _one_line(err.value).startswith("deep.json ")
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no RecursionError chained behind it


@pytest.mark.parametrize(
    "raw,words",
    [
        (b'{"a": 1,}', "a key is not in double quotes"),
        (b'{"a": }', "a value is missing"),
        (b'{"a": "x', "a string is not closed"),
        (b'{"a": 1} {"b": 2}', "more after the first JSON value"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"   ", "is empty"),
        (b'{"a": ' + b"1" * 5000 + b"}", "cannot be read"),  # more digits than int() accepts
    ],
)
def test_load_json_errors_in_words(raw, words):
    with pytest.raises(InputError, match=words) as err:
        safe_io.load_json(raw, "config.json")
    text = _one_line(err.value)
    assert text.startswith("config.json is ")
    assert "char " not in text and "column" not in text and "0xff" not in text and "codec" not in text


def test_utf8_error_names_the_line_not_the_byte():
    with pytest.raises(InputError) as err:
        safe_io.decode_text(b'{"a": 1,\n "b": "\xff"}', "config.json")
    assert str(err.value) == "config.json is not UTF-8 text (near line 2). Save it as UTF-8 and try again."


def test_reading_turns_memory_and_other_failures_into_input_errors():
    with pytest.raises(InputError, match="too large to read"):
        with safe_io.reading("x.json"):
            raise MemoryError
    with pytest.raises(InputError, match=r"x.json cannot be read \(KeyError\)"):
        with safe_io.reading("x.json"):
            raise KeyError("secret file text")
    with pytest.raises(InputError, match="^mine$"):  # messages written for the user pass through unchanged
        with safe_io.reading("x.json"):
            raise InputError("mine")


def test_read_bytes_checks_size_before_reading(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:  # sparse: costs no disk
        fh.seek(30 * 10**6)
        fh.write(b"}")
    with pytest.raises(InputError, match="MB; the limit is 20 MB"):
        safe_io.read_bytes(big, "big.json", 20 * 10**6)
    with pytest.raises(InputError, match="cannot be read"):
        safe_io.read_bytes(tmp_path / "missing.json", "missing.json")


# ---------------------------------------------------------------- the parsers
def test_stereoset_gold_and_predictions_deep():
    with pytest.raises(InputError, match="nested too deeply"):
        stereoset.parse_stereoset(DEEP_STEREOSET, "deep.json")
    with pytest.raises(InputError, match="nested too deeply"):
        stereoset.parse_predictions(DEEP_STEREOSET)


def test_stereoset_invalid_json_in_words():
    with pytest.raises(InputError, match=r"The StereoSet file is not valid JSON \(a comma is missing, line 1\)"):
        stereoset.parse_stereoset(b'{"version": "1" "data": {}}', "x.json")


def test_seat_deep_file():
    with pytest.raises(InputError, match="nested too deeply") as err:
        seat.parse_seat(DEEP_SEAT, "deep.jsonl")
    assert _one_line(err.value).startswith("deep.jsonl ")


@pytest.mark.parametrize(
    "body,words",
    [
        ('"A x,B,stereo,age\n', "unclosed quote near row 1"),
        ("A,B,stereo,age\nC,D,stereo,age,x,y\n", "line 3 has 6 fields where the header has 4"),
        ("A x,B,stereo,age,extra,more\nC,D,stereo,age\n", "the first data row has more fields than the header"),
        ("A x,B,stereo,age,extra\nC,D,stereo,age\n", "the first data row has more fields than the header"),
    ],
)
def test_pairs_csv_errors_in_words(body, words, tmp_path):
    data = (HEAD + body).encode()
    with pytest.raises(InputError, match=words) as err:
        pairs_data.parse_pairs(data, "bad.csv")
    text = _one_line(err.value)
    assert "EOF" not in text and "C error" not in text and "tokenizing" not in text
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=words):
        list(pairs_data.iter_pairs_file(path))


def test_pairs_count_rows_field_too_long(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(HEAD + '"' + "a" * 200_000 + '",b,stereo,age\n', encoding="utf-8")
    with pytest.raises(InputError, match="a field is longer than 131,072 characters") as err:
        pairs_data.count_rows(path)
    _one_line(err.value)


@pytest.mark.parametrize(
    "config,words",
    [
        (b"\xff\xfe\x00{", "config.json in 'm' is not UTF-8 text (near line 1)"),
        (b'{"model_type": bert}', "config.json in 'm' is not valid JSON (a value is missing"),
        (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "config.json in 'm' is nested too deeply"),
    ],
)
def test_model_config_errors_in_words(config, words, tmp_path):
    from llmviz.errors import CorruptModelError
    from llmviz.models.loading import check_folder

    (tmp_path / "config.json").write_bytes(config)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(CorruptModelError) as err:
        check_folder(tmp_path, "m")
    text = _one_line(err.value)
    assert text.startswith(words), text
    assert "0xff" not in text and "codec" not in text and "char " not in text and "column" not in text
