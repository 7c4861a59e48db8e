r"""Rows of a text file, streamed with their line numbers: the one reader of the project.

Labelled files (`keras_lstm.data.readers`), sentence pairs
(`keras_lstm.data.pairs`), prediction inputs (`keras_lstm.app.predict_file`)
and word vectors (`keras_lstm.data.word_vectors`) all read through here, so
they share:

- **one error format**, `FILE:LINE: message`, one `DataError` line (a
  problem of the whole file is `FILE: message`);
- **one way to skip**: a bad row either stops the read (the message ends
  with a hint at `--skip-bad-rows` where the command has that flag) or, with
  `skip_bad_rows`, is counted and skipped (`RowReader.skipped`,
  `RowReader.first_skipped`);
- **the CSV field limit scoped to the reader**: the `csv` module's limit is
  process-wide; it is raised to the file's size only while a batch of rows is
  parsed, under a lock, and restored before any row is handed out.

Records end only where the format says, never at the other characters Python's
`str.splitlines()` treats as line breaks (U+2028, U+2029, U+0085, \x1c-\x1e,
\x0b, \x0c), which are ordinary text inside a record:

- JSON Lines, plain text ("txt", one text per line), sentence pairs ("pairs",
  `source<TAB>target[<TAB>…]`, no quoting) and word vectors end a line at
  "\n"; "\r\n" is one break. A lone "\r" is not a break: the line holds it.
- CSV and TSV follow the `csv` module: an unquoted "\n", "\r\n" or lone "\r"
  ends a record (so Excel for Mac's "\r" files read), and a quoted field
  holds any character but NUL.

Lines are decoded one at a time, so a line of invalid UTF-8 is one bad row
(skippable like any other). A byte-order mark at the start is ignored. A row's
line is the line it starts on.

Example:

>>> import io
>>> reader = RowReader(io.BytesIO(b"text,label\ngood,pos\n,\nbad,neg\n"), "csv", "a.csv")
>>> reader.header
['text', 'label']
>>> list(reader)
[(2, ['good', 'pos']), (4, ['bad', 'neg'])]
>>> reader.bad(4, "label 'neg' is not known")
Traceback (most recent call last):
...
keras_lstm.core.errors.DataError: a.csv:4: label 'neg' is not known (--skip-bad-rows skips such rows)
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from keras_lstm.core.errors import DataError

__all__ = [
    "FORMATS",
    "ROWS_PER_PARSE",
    "SKIP_HINT",
    "RowReader",
    "csv_field_limit",
    "line_error",
    "open_binary",
    "split_lines",
]

FORMATS = ("csv", "tsv", "jsonl", "txt", "pairs", "lines")
SKIP_HINT = " (--skip-bad-rows skips such rows)"
ROWS_PER_PARSE = 1024  # CSV rows parsed per hold of the field limit
BOM = b"\xef\xbb\xbf"
# The largest limit every platform's csv module accepts (a C long).
_NO_LIMIT = 2**31 - 1
_CSV_LIMIT_LOCK = threading.Lock()


def line_error(name: str, line: int, message: str) -> DataError:
    """The one-line error of a row: `FILE:LINE: message`.

    >>> str(line_error("a.csv", 3, "empty text"))
    'a.csv:3: empty text'
    """
    return DataError(f"{name}:{line}: {message}")


@contextlib.contextmanager
def csv_field_limit(size: int) -> Iterator[None]:
    """The `csv` module's field limit raised to `size` (never lowered), then restored.

    The csv module rejects fields over 131 072 characters by default, a
    process-wide setting. No field can be longer than its file, so a reader
    raises the limit to the file's size while it parses and restores it
    afterwards: other code that relies on the default keeps it. The lock keeps
    two readers in threads from restoring each other's limit; it is not
    reentrant, so it is never held across a `yield` to the caller.
    """
    with _CSV_LIMIT_LOCK:
        previous = csv.field_size_limit()
        csv.field_size_limit(max(previous, min(size, _NO_LIMIT)))
        try:
            yield
        finally:
            csv.field_size_limit(previous)


def open_binary(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading, or one `DataError` line saying why not."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: not a file")
    try:
        return path.open("rb")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None


def split_lines(stream: BinaryIO) -> Iterator[str]:
    r"""Decoded lines of a binary stream, split at "\n" only; "\r\n" counts as one break.

    Unlike `str.splitlines()`, this keeps U+2028, U+2029, U+0085, \x0b, \x0c
    and \x1c-\x1e inside the line, and a lone "\r" too. A final line break
    does not start an empty last line. Raises UnicodeDecodeError on bad UTF-8
    (`RowReader` reports it as a bad row instead).

    Example:

    >>> import io
    >>> list(split_lines(io.BytesIO("a\u2028b\r\nc\rd\n".encode())))
    ['a\u2028b', 'c\rd']
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        yield _strip_end(raw.decode("utf-8"))


def _strip_end(line):
    return line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line


class RowReader:
    r"""The rows of one file, with their line numbers: `for line, row in reader`.

    A row is, by format: "csv"/"tsv" a list of fields (the header row is
    `header`, not a row; lines whose fields are all blank are no rows);
    "jsonl" a dict (blank lines are no rows; a line that is not a JSON object
    is a bad row); "pairs" the list of a line's tab-separated columns (blank
    lines are no rows); "txt" and "lines" the line itself, blank or not
    (without its "\n" or "\r\n"). What a consumer finds wrong in a row it
    reports through `bad`, so that every problem is counted or raised alike.

    Args:
        stream: A binary stream (a file, `sys.stdin.buffer`); the caller closes it.
        format: One of `FORMATS`.
        name: The file's name in messages.
        size: The stream's size in bytes if known (the CSV field limit; None: no limit).
        skip_bad_rows: Count and skip bad rows instead of raising the first.
        hint: Appended to a bad row's error (default `SKIP_HINT`; "" where the
            command has no `--skip-bad-rows`).

    Attributes:
        header: CSV/TSV: the header's fields (None for an empty file).
        header_line: The header's line (None for an empty file).
        skipped: Bad rows skipped so far.
        first_skipped: The first skipped row's message, or None.
        bytes: Bytes read so far (for progress).
    """

    def __init__(self, stream: BinaryIO, format: str, name: str, *,  # noqa: A002
                 size: int | None = None, skip_bad_rows: bool = False,
                 hint: str = SKIP_HINT) -> None:
        if format not in FORMATS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
        self.stream, self.format, self.name = stream, format, name
        self.skip_bad_rows, self.hint = skip_bad_rows, hint
        self.skipped, self.first_skipped, self._first_skipped_line = 0, None, 0
        self.bytes = 0
        self.header = self.header_line = None
        self._line = 0  # the last line read
        self._record_start = None  # the first line of the CSV record being parsed
        self._strict = False
        self._limit = _NO_LIMIT if size is None else size + 1
        if format in ("csv", "tsv"):
            self._csv = csv.reader(self._table_lines(), delimiter="," if format == "csv" else "\t")
            self._strict = True  # a bad header is never skipped: no row could be read
            try:
                with csv_field_limit(self._limit):
                    while not self.header:  # blank lines before the header are no header
                        self.header_line, self.header = self._next_record()
            except StopIteration:
                self.header_line, self.header = None, None
            finally:
                self._strict = False

    def bad(self, line: int, reason: str) -> None:
        """Reports row `line` as bad: raises `FILE:LINE: reason`, or counts it if skipping."""
        message = f"{self.name}:{line}: {reason}"
        if self._strict:
            raise DataError(message)
        if not self.skip_bad_rows:
            raise DataError(message + self.hint)
        self.skipped += 1
        # CSV is parsed a batch ahead of the caller: its bad rows may come first.
        if self.first_skipped is None or line < self._first_skipped_line:
            self.first_skipped, self._first_skipped_line = message, line

    def error(self, line: int, reason: str) -> DataError:
        """`FILE:LINE: reason` as an error that no flag skips (e.g. a bad header)."""
        return line_error(self.name, line, reason)

    def __iter__(self) -> Iterator[tuple[int, object]]:
        if self.format in ("csv", "tsv"):
            return self._in_batches(self._table_rows())
        if self.format == "jsonl":
            return self._jsonl_rows()
        if self.format == "pairs":
            return self._pair_rows()
        return ((number, _strip_end(line)) for number, line in self._lines())

    def _lines(self):
        """`(number, decoded line with its ending)`; a line of bad UTF-8 is a bad row."""
        for raw in self.stream:
            line = self._decode(raw)
            if line is not None:
                yield self._line, line

    def _decode(self, raw):
        """The next line `raw` decoded and counted, or None when it is a bad row (skipped)."""
        self._line += 1
        self.bytes += len(raw)
        if self._line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            self.bad(self._line, f"not valid UTF-8 (byte {raw[error.start]:#04x} at byte "
                                 f"{error.start + 1} of the line); save the file as UTF-8")
            return None

    def _table_lines(self):
        # Lines as a text stream opened with newline="" gives them to the csv module:
        # split at "\n", "\r\n" and a lone "\r", each with its ending, never at U+2028
        # and the like. Lines come split at "\n" already; only a lone "\r" is left to do.
        # (The common case is kept to a few operations: this runs once per line.)
        for raw in self.stream:
            line = self._decode(raw)
            if line is None:
                continue
            if self._record_start is None:
                self._record_start = self._line
            carriage = line.find("\r")
            if carriage < 0 or (carriage == len(line) - 2 and line[-1] == "\n"):
                yield line
                continue
            start = 0
            for index in range(carriage, len(line)):
                if line[index] == "\r" and (index + 1 == len(line) or line[index + 1] != "\n"):
                    if start:
                        self._line += 1  # each piece after the first is a line of its own
                    if self._record_start is None:
                        self._record_start = self._line
                    yield line[start:index + 1]
                    start = index + 1
            if start < len(line):
                self._line += 1
                if self._record_start is None:
                    self._record_start = self._line
                yield line[start:]

    def _next_record(self):
        """`(first line, fields)` of the next CSV record; StopIteration at the end."""
        self._record_start = None  # set by `_table_lines` when the record's first line comes
        try:
            fields = next(self._csv)
            return self._record_start, fields
        except csv.Error as error:
            first = self._record_start or self._line
            if self._strict:
                raise self.error(first, str(error)) from None
            self.bad(first, str(error))
            return first, None

    def _table_rows(self):
        records = self._csv
        while True:
            self._record_start = None  # as in `_next_record`, inlined: this runs once per row
            try:
                fields = next(records)
            except StopIteration:
                return
            except csv.Error as error:
                first = self._record_start or self._line
                self.bad(first, str(error))
                continue
            # A row whose fields are all blank is no row ([] is a blank line).
            if fields and (fields[0].strip() or any(field.strip() for field in fields)):
                yield self._record_start, fields

    def _in_batches(self, rows):
        """`rows`, parsed `ROWS_PER_PARSE` at a time with the CSV field limit raised.

        A parse error is raised where its row would have come, so a reader
        stopped before it never sees it.
        """
        while True:
            batch, error = [], None
            with csv_field_limit(self._limit):
                try:
                    batch.extend(itertools.islice(rows, ROWS_PER_PARSE))
                except DataError as caught:
                    error = caught
            yield from batch
            if error is not None:
                raise error
            if len(batch) < ROWS_PER_PARSE:
                return

    def _jsonl_rows(self):
        for number, line in self._lines():
            line = _strip_end(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as error:
                # ValueError beyond JSONDecodeError: an integer over Python's 4 300 digits.
                reason = (f"{error.msg} at column {error.colno}"
                          if isinstance(error, json.JSONDecodeError)
                          else "nested too deeply" if isinstance(error, RecursionError)
                          else "a number too long to read")
                hint = ("; the line holds a carriage return (\\r): JSON Lines lines end with "
                        "\\n or \\r\\n" if "\r" in line else "")
                self.bad(number, f"not valid JSON ({reason}){hint}")
                continue
            if not isinstance(row, dict):
                self.bad(number, "expected a JSON object")
                continue
            yield number, row

    def _pair_rows(self):
        for number, line in self._lines():
            line = _strip_end(line)
            if line.strip():
                yield number, line.split("\t")
