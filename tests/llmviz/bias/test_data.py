"""CSV validation for minimal pairs: clear errors for wrong columns, empty rows, non-UTF-8, bad values."""

import pytest

from llmviz.bias.pairs_data import COLUMNS, iter_pairs_file, parse_pairs, starter_pairs
from llmviz.errors import InputError

HEAD = ",".join(COLUMNS) + "\n"


def test_starter_set_is_large_and_diverse():
    s = starter_pairs()
    assert len(s) >= 60 and s.frame["bias_type"].nunique() >= 6
    assert set(s.frame["stereo_antistereo"]) == {"stereo", "antistereo"}


def test_original_crows_layout_with_extra_columns_is_accepted():
    data = (
        ",sent_more,sent_less,stereo_antistereo,bias_type,annotations,anon_writer\n"
        "0,\"He couldn't, sadly.\",She couldn't.,stereo,gender,\"[['gender']]\",a0\n"
    ).encode()
    ps = parse_pairs(data, "crows.csv")
    assert list(ps.frame.columns) == list(COLUMNS) and ps.frame.loc[0, "sent_more"] == "He couldn't, sadly."


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "is empty"),
        (b"sentence,label\na,b\n", "lacks the column"),
        (HEAD.encode(), "no pairs|no rows"),
        ((HEAD + "A x.,,stereo,age\n").encode(), "sent_less is empty in row"),
        ((HEAD + "A x.,B x.,maybe,age\n").encode(), "must be 'stereo' or 'antistereo'"),
        ((HEAD + "A x.,A x.,stereo,age\n").encode(), "identical"),
        ((HEAD + "Caf\xe9 x,Caf\xe9 y,stereo,age\n").encode("latin-1"), "not UTF-8"),
        ((HEAD + ",,,\n,,,\n").encode(), "no pairs"),
    ],
)
def test_bad_csv_gives_clear_error(data, match):
    with pytest.raises(InputError, match=match):
        parse_pairs(data, "x.csv")


def test_empty_rows_are_skipped_with_notice_and_row_numbers_are_global(tmp_path):
    ps = parse_pairs((HEAD + "A x.,B x.,stereo,age\n,,,\nC x.,D x.,antistereo,\n").encode(), "x.csv")
    assert len(ps) == 2 and "Skipped 1 empty row" in ps.notices[0]
    assert ps.frame.loc[1, "bias_type"] == "unspecified"
    path = tmp_path / "big.csv"
    path.write_text(HEAD + "A x.,B x.,stereo,age\n" * 7 + "A x.,,stereo,age\n", encoding="utf-8")
    with pytest.raises(InputError, match="row\\(s\\) 8"):
        list(iter_pairs_file(path, chunk_rows=3))
    good = tmp_path / "good.csv"
    good.write_text(HEAD + "A x.,B x.,stereo,age\n" * 7, encoding="utf-8")
    assert [len(c) for c in iter_pairs_file(good, chunk_rows=3)] == [3, 3, 1]
