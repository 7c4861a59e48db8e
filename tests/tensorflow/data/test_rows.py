"""The one streaming row reader: FILE:LINE: errors for every format, skipping and counting,
line numbers as an editor shows them, and the CSV field limit scoped to the reader."""

import csv
import io

import pytest

from keras_lstm.core.errors import DataError
from keras_lstm.data import rows
from keras_lstm.data.rows import SKIP_HINT, RowReader, split_lines


def read(content, format, skip=False, name="in"):  # noqa: A002
    reader = RowReader(io.BytesIO(content), format, name, skip_bad_rows=skip)
    return reader, list(reader)


def test_split_lines_breaks_at_newline_only():
    def split(text):
        return list(split_lines(io.BytesIO(text.encode())))

    assert split("a\u2028b\x0cc\r\nd\re\n\nf") == ["a\u2028b\x0cc", "d\re", "", "f"]
    assert split("") == [] and split("\n") == [""]


# Line 2 of each file is not UTF-8; what each format makes of its other lines.
BAD_UTF8 = b"\xe5\x97\xa8\xff"
FILES = {
    "csv": (b"text,label\n" + BAD_UTF8 + b",x\n\xe5\x97\xa8,y\n", [(3, ["嗨", "y"])]),
    "tsv": (b"text\tlabel\n" + BAD_UTF8 + b"\tx\n\xe5\x97\xa8\ty\n", [(3, ["嗨", "y"])]),
    "jsonl": (b'{"a": 1}\n' + BAD_UTF8 + b'\n{"b": 2}\n', [(1, {"a": 1}), (3, {"b": 2})]),
    "txt": (b"one\n" + BAD_UTF8 + b"\n\ntwo\r\n", [(1, "one"), (3, ""), (4, "two")]),
    "pairs": (b"a\tb\n" + BAD_UTF8 + b"\tc\nd\te\tf\n", [(1, ["a", "b"]), (3, ["d", "e", "f"])]),
    "lines": (b"w 1\n" + BAD_UTF8 + b" 2\nv 3", [(1, "w 1"), (3, "v 3")]),
}
UTF8_REASON = "not valid UTF-8 (byte 0xff at byte 4 of the line); save the file as UTF-8"


@pytest.mark.parametrize("format", list(FILES))
def test_every_format_names_a_bad_row_file_colon_line(format):  # noqa: A002
    content, good = FILES[format]
    with pytest.raises(DataError) as error:
        read(content, format, name="data/in.x")
    assert str(error.value) == f"data/in.x:2: {UTF8_REASON}{SKIP_HINT}"
    assert error.value.__cause__ is None
    reader, found = read(content, format, skip=True, name="data/in.x")
    assert found == good
    assert (reader.skipped, reader.first_skipped) == (1, f"data/in.x:2: {UTF8_REASON}")


def test_a_consumer_reports_its_bad_rows_through_the_reader_and_they_are_counted():
    reader = RowReader(io.BytesIO(b"text\n\xe5\xa5\xbd\n \n\xe5\x9d\x8f\nbad\n"), "txt", "in.txt",
                       skip_bad_rows=True)
    texts = []
    for line, text in reader:
        if not text.strip() or text == "bad":
            reader.bad(line, "empty text" if not text.strip() else "a bad word")
        else:
            texts.append(text)
    assert texts == ["text", "好", "坏"]
    assert (reader.skipped, reader.first_skipped) == (2, "in.txt:3: empty text")
    strict = RowReader(io.BytesIO(b"a\n"), "txt", "in.txt", hint="")
    with pytest.raises(DataError, match=r"^in\.txt:7: a bad word$"):
        strict.bad(7, "a bad word")  # no hint where the command has no --skip-bad-rows


def test_the_first_skipped_row_is_the_first_in_the_file_though_csv_is_parsed_ahead():
    reader = RowReader(io.BytesIO(b"id,text\n1,a\n2\n3,\n4,\xff\n5,b\n"), "csv", "in.csv",
                       skip_bad_rows=True)
    kept = []
    for line, row in reader:
        if len(row) < 2:
            reader.bad(line, "missing column 'text'")
        else:
            kept.append(line)
    assert kept == [2, 4, 6]
    assert (reader.skipped, reader.first_skipped) == (2, "in.csv:3: missing column 'text'")


def test_csv_rows_carry_the_line_they_start_on_lone_cr_included():
    # Excel for Mac ends lines with "\r"; a quoted field may span lines; blank rows are no rows.
    reader, found = read(b'text,n\r"two\nlines",1\r\r,\r\n3,\xe5\xa5\xbd\n', "csv")
    assert (reader.header, reader.header_line) == (["text", "n"], 1)
    assert found == [(2, ["two\nlines", "1"]), (6, ["3", "好"])]
    reader, found = read(b"\n\ntext\n\xef\xbb\xbfx\n", "csv")  # blank lines before the header
    assert (reader.header, reader.header_line, found) == (["text"], 3, [(4, ["\ufeffx"])])
    assert read(b"", "csv")[0].header is None


def test_a_csv_parse_error_is_a_bad_row_and_a_bad_header_is_never_skipped():
    # A size smaller than the file leaves the csv module's default limit (131 072) in place.
    content = b"text\nok\n" + b"x" * 200_000 + b"\nfine\n"
    with pytest.raises(DataError, match=r"^in:3: field larger than field limit \(131072\)"):
        list(RowReader(io.BytesIO(content), "csv", "in", size=10))
    reader = RowReader(io.BytesIO(content), "csv", "in", size=10, skip_bad_rows=True)
    assert list(reader) == [(2, ["ok"]), (4, ["fine"])] and reader.skipped == 1
    with pytest.raises(DataError) as error:
        RowReader(io.BytesIO(b"\xfftext\nx\n"), "csv", "in.csv", skip_bad_rows=True)
    assert str(error.value) == ("in.csv:1: not valid UTF-8 (byte 0xff at byte 1 of the line); "
                                "save the file as UTF-8")


def test_jsonl_errors_say_what_is_wrong():
    content = b'{"text": "a"}\n[1]\n{"text": "b"\n{"text": "c"}\r{"x": 1}\n'
    reader, found = read(content, "jsonl", skip=True)
    assert found == [(1, {"text": "a"})] and reader.skipped == 3
    messages = []
    for line in (2, 3, 4):
        with pytest.raises(DataError) as error:
            read(b"\n" * (line - 1) + content.split(b"\n")[line - 1], "jsonl")
        messages.append(str(error.value).removesuffix(SKIP_HINT))
    assert messages == [
        "in:2: expected a JSON object",
        "in:3: not valid JSON (Expecting ',' delimiter at column 13)",
        "in:4: not valid JSON (Extra data at column 15); the line holds a carriage return (\\r):"
        " JSON Lines lines end with \\n or \\r\\n"]


HUGE = ("好" + "word " * 7) * 2**15  # 1 179 648 characters, 9 x csv's default field limit


@pytest.mark.parametrize("delimiter, format", [(",", "csv"), ("\t", "tsv")])
def test_a_huge_field_reads_and_the_limit_is_restored_even_when_abandoned(tmp_path, delimiter,
                                                                          format):  # noqa: A002
    path = tmp_path / f"a.{format}"
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, delimiter=delimiter).writerows([["text"], [HUGE], ["short"]] * 2)
    limit = csv.field_size_limit()
    with rows.open_binary(path) as stream:
        reader = RowReader(stream, format, str(path), size=path.stat().st_size)
        assert csv.field_size_limit() == limit  # not held while the caller has the reader
        first = next(iter(reader))
        assert first == (2, [HUGE]) and csv.field_size_limit() == limit  # abandoned here
    # Without the reader, the default limit still guards the process.
    with path.open(encoding="utf-8", newline="") as file, pytest.raises(csv.Error):
        list(csv.reader(file, delimiter=delimiter))


def test_files_that_cannot_be_opened_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"none\.csv: file not found$"):
        rows.open_binary(tmp_path / "none.csv")
    with pytest.raises(DataError, match=r": not a file$"):
        rows.open_binary(tmp_path)
