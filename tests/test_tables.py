"""seqkit.read_table: CSV/TSV through pandas, with errors that name the file and the line."""

from __future__ import annotations

import pytest

from seqkit import DataError, read_table


def _file(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def test_rows_keep_their_file_lines(tmp_path):
    # leading blank lines, a blank line, a quoted field over two lines, a quoted comma, CRLF
    path = _file(tmp_path, '\n\n a ,b\r\n1,2\r\n\r\n"x\r\ny","p, q"\r\n   \r\n7,\r\n')
    table = read_table(path)
    assert list(table.columns) == ["a", "b"] and table.index.name == "line"
    assert table.index.tolist() == [4, 6, 9]
    assert table.values.tolist() == [["1", "2"], ["x\r\ny", "p, q"], ["7", ""]]  # strings, as written
    assert read_table(path, ["b", 0]).values.tolist()[0] == ["2", "1"]
    assert read_table(path, ["1"]).values.tolist()[0] == ["2"]  # digits that are not a name: an index


def test_tsv_and_no_header(tmp_path):
    path = _file(tmp_path, "pos\tgood film\nneg\tbad, film\n", "t.tsv")
    table = read_table(path, [1, 0], header=False)
    assert table.values.tolist() == [["good film", "pos"], ["bad, film", "neg"]] and table.index.tolist() == [1, 2]
    with pytest.raises(DataError, match=r"t.tsv: column 'text' is a name, but the file is read without a header row"):
        read_table(path, ["text"], header=False)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n3,4,5\n", r"t.csv:3: expected 2 fields like the header, found 3 \(quote a field that contains the separator ','\)"),
    ("a,b\n1,2\n3\n", r"t.csv:3: expected 2 fields like the header, found 1"),
    ('a,b\n"x\ny",2\n\n3,4,5\n', r"t.csv:5: expected 2 fields"),  # lines counted across a quoted line break
    ('a,b\n1,2\n3,"never closed\n4,5\n', r"t.csv:3: a quoted field starts on this line and is never closed"),
    (b"a,b\n1,2\n3,\xff\n", r"t.csv:3: not valid UTF-8"),
    ("", r"t.csv: empty file \(expected a header row"),
    ("\n  \n", r"t.csv: empty file"),
])
def test_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_table(_file(tmp_path, text))


def test_missing_columns_are_named_with_those_the_file_has(tmp_path):
    path = _file(tmp_path, "id,text,label\n1,good,pos\n")
    with pytest.raises(DataError, match=r"t.csv: no column 'review' \(columns: id, text, label\)"):
        read_table(path, ["review"])
    with pytest.raises(DataError, match=r"t.csv: no column 5 \(it has 3 columns, 0 to 2\)"):
        read_table(path, [5])
    with pytest.raises(DataError, match=r"data file not found: .*nowhere.csv"):
        read_table(tmp_path / "nowhere.csv")


def test_on_bad_skip_drops_rows_and_warns_once(tmp_path):
    path = _file(tmp_path, "a,b\n1,2\n3,4,5\n6\n7,8\n")
    with pytest.warns(UserWarning, match=r"t.csv: skipped 2 rows whose number of fields is not 2 \(first at line 3"):
        table = read_table(path, on_bad="skip")
    assert table.index.tolist() == [2, 5] and table.values.tolist() == [["1", "2"], ["7", "8"]]
    with pytest.raises(DataError, match=r"on_bad: unknown policy 'drop'"):
        read_table(path, on_bad="drop")


def test_header_only_gives_an_empty_table(tmp_path):
    table = read_table(_file(tmp_path, "a,b\n"))
    assert table.empty and list(table.columns) == ["a", "b"]
