r"""Labelled text files (CSV, TSV, JSON Lines): reading, deduplication, splitting.

Every problem is a `DataError` naming the file, the line and the field, and
saying what was expected, in one line.

Records end only where the format says, never at the other characters Python's
`str.splitlines()` treats as line breaks (U+2028, U+2029, U+0085, \x1c-\x1e,
\x0b, \x0c), which are ordinary text inside a record:

- JSON Lines and other line-based files end a line at "\n"; "\r\n" is one
  break. A lone "\r" is not a break: in JSON it is whitespace between tokens
  (and invalid inside a string), so a file with classic-Mac "\r" endings is
  reported as one bad line with a hint.
- CSV and TSV follow the `csv` module: an unquoted "\n", "\r\n" or lone "\r"
  ends a record (so Excel for Mac's "\r" files read), and a quoted field
  holds any character but NUL.
"""

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import threading
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import DataError

__all__ = [
    "FORMATS",
    "ROWS_PER_PARSE",
    "LabelledTexts",
    "check_label_count",
    "check_labels",
    "check_validation_split",
    "deduplicate",
    "iter_labelled_rows",
    "read_labelled_file",
    "split_lines",
    "stratified_split",
]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".ndjson": "jsonl"}


@dataclasses.dataclass
class LabelledTexts:
    """Texts and their labels, as read from `path`."""

    texts: list[str]
    labels: list[str]
    path: str


_CSV_LIMIT_LOCK = threading.Lock()
ROWS_PER_PARSE = 1024  # rows `iter_labelled_rows` parses at a time


@contextlib.contextmanager
def _csv_field_limit(size):
    # The csv module rejects fields over 131 072 characters by default, a
    # process-wide setting. No field can be longer than the file, so the limit is
    # raised to the file's length while it is read and restored afterwards: other
    # code that relies on the default keeps it. The lock keeps two of our readers
    # in threads from restoring each other's limit.
    with _CSV_LIMIT_LOCK:
        previous = csv.field_size_limit()
        csv.field_size_limit(max(previous, size))
        try:
            yield
        finally:
            csv.field_size_limit(previous)


def read_labelled_file(path, text_column="text", label_column="label", format=None,  # noqa: A002
                       limit=None):
    """Reads texts and labels from a CSV, TSV or JSON Lines file.

    Args:
        path: The file; its extension picks the format unless `format` does.
        text_column, label_column: Column names (CSV/TSV header) or JSON fields.
        format: "csv", "tsv" or "jsonl".
        limit: Read only the first `limit` rows (the rest of the file is not read).

    Returns:
        `LabelledTexts`.

    Raises:
        DataError: missing/unreadable file, invalid UTF-8, unknown format,
            missing column, empty text or label, bad JSON, or no rows.
    """
    texts, labels = [], []
    rows = iter_labelled_rows(path, text_column, label_column, format)
    for _, text, label in itertools.islice(rows, limit):
        texts.append(text)
        labels.append(label)
    return LabelledTexts(texts, labels, str(path))


def iter_labelled_rows(path, text_column="text", label_column="label", format=None):  # noqa: A002
    """`read_labelled_file` one row at a time: yields `(line, text, label)`.

    The file is read as a stream (memory does not grow with it), with the
    same checks and the same one-line errors as `read_labelled_file`,
    including "no rows" at the end of an empty file.
    """
    path = Path(path)
    format = format or FORMATS.get(path.suffix.lower())  # noqa: A001
    if format not in ("csv", "tsv", "jsonl"):
        raise DataError(f"{path}: unknown format (expected a .csv, .tsv or .jsonl file)")
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        stream = path.open("rb")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    count = 0
    with stream:
        try:
            if format == "jsonl":
                rows = _jsonl_rows(path, split_lines(stream))
            else:
                text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
                rows = _table_rows(path, text, format, (text_column, label_column))
            for line, row in _parsed_in_batches(rows, path.stat().st_size + 1):
                count += 1
                yield (line, *_labelled(path, line, row, text_column, label_column))
        except UnicodeDecodeError:
            _raise_utf8_error(path)
    if not count:
        raise DataError(f"{path}: no rows (expected a header and at least one row)"
                        if format != "jsonl" else f"{path}: no rows")


def _parsed_in_batches(rows, size):
    """`rows`, parsed `ROWS_PER_PARSE` at a time with the csv limit raised to `size`.

    The process-wide limit (and its lock, which is not reentrant) is held only
    while rows are parsed, never across a `yield`: the caller may open another
    reader meanwhile, or abandon this one. A parse error is raised where its row
    would have come, so a reader stopped before it never sees it.
    """
    while True:
        batch, error = [], None
        with _csv_field_limit(size):
            try:
                batch.extend(itertools.islice(rows, ROWS_PER_PARSE))
            except (DataError, UnicodeDecodeError) as caught:
                error = caught
        yield from batch
        if error is not None:
            raise error
        if len(batch) < ROWS_PER_PARSE:
            return


def _labelled(path, line, row, text_column, label_column):
    for column in (text_column, label_column):
        if column not in row:
            found = ", ".join(repr(k) for k in row) or "none"
            raise DataError(f"{path}, line {line}: no field {column!r} (found {found}); "
                            "set --text-column/--label-column")
    value, label = row[text_column], row[label_column]
    if value is not None and not isinstance(value, str):
        raise DataError(f"{path}, line {line}, field {text_column!r}: expected a string, "
                        f"got {_json_type(value)}")
    if value is None or not value.strip():
        raise DataError(f"{path}, line {line}, field {text_column!r}: empty text")
    if isinstance(label, (list, dict)):
        raise DataError(f"{path}, line {line}, field {label_column!r}: expected a string "
                        f"or a number, got {_json_type(label)}")
    if label is None or not str(label).strip():
        raise DataError(f"{path}, line {line}, field {label_column!r}: empty label")
    return value, str(label).strip()


def split_lines(stream):
    r"""Decoded lines of a binary stream, split at "\n" only; "\r\n" counts as one break.

    Unlike `str.splitlines()`, this keeps U+2028, U+2029, U+0085, \x0b, \x0c
    and \x1c-\x1e inside the line, and a lone "\r" too. A final line break
    does not start an empty last line. Raises UnicodeDecodeError on bad UTF-8.

    Example:

    >>> list(split_lines(io.BytesIO("a\u2028b\r\nc\rd\n".encode())))
    ['a\u2028b', 'c\rd']
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        line = raw.decode("utf-8")
        yield line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line


def _raise_utf8_error(path):
    """The one-line error for the first line of `path` that is not UTF-8."""
    with Path(path).open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{path}, line {number}: not valid UTF-8 (byte "
                                f"{raw[error.start]:#04x}); save the file as UTF-8") from None
    raise DataError(f"{path}: not valid UTF-8; save the file as UTF-8")


def _json_type(value):
    names = {bool: "true/false", int: "a number", float: "a number", list: "an array",
             dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _table_rows(path, text, format, columns):  # noqa: A002
    # A text stream opened with newline="" hands the csv module each line with its
    # own ending ("\n", "\r\n" or "\r"), never splitting at U+2028 and the like.
    reader = csv.reader(text, delimiter="," if format == "csv" else "\t")
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: {error}") from None
    for column in columns:
        if header.count(column) > 1:
            raise DataError(f"{path}, line 1: column {column!r} appears {header.count(column)} "
                            "times in the header")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(f"{path}, line {reader.line_num}: {error}") from None
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(f"{path}, line {reader.line_num}: {len(values)} fields, expected "
                            f"{len(header)} as in the header")
        yield reader.line_num, dict(zip(header, values))


def _jsonl_rows(path, lines):
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:
            # ValueError beyond JSONDecodeError: an integer over Python's 4 300 digits.
            reason = (error.msg if isinstance(error, json.JSONDecodeError)
                      else "nested too deeply" if isinstance(error, RecursionError)
                      else "a number too long to read")
            hint = ("; the line holds a carriage return (\\r): JSON Lines lines end with "
                    "\\n or \\r\\n" if "\r" in line else "")
            raise DataError(f"{path}, line {number}: not valid JSON ({reason}){hint}") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object")
        yield number, row


def deduplicate(texts, labels):
    """Removes repeated texts; drops texts seen under two different labels.

    Returns:
        `(texts, labels, conflicting)`: the first occurrence of each text, in
        order, and the number of distinct texts dropped for conflicting labels.
    """
    seen = {}
    for text, label in zip(texts, labels, strict=True):
        key = text.strip()
        seen.setdefault(key, set()).add(label)
    kept_texts, kept_labels, done = [], [], set()
    for text, label in zip(texts, labels, strict=True):
        key = text.strip()
        if key in done or len(seen[key]) > 1:
            continue
        done.add(key)
        kept_texts.append(text)
        kept_labels.append(label)
    return kept_texts, kept_labels, sum(len(v) > 1 for v in seen.values())


def stratified_split(texts, labels, fractions=(0.8, 0.1, 0.1), seed=0, source=None):
    """Splits into train/validation/test keeping each label's share, reproducibly.

    Each label's rows are split on their own, so each share is rounded per label.

    Args:
        texts, labels: Parallel lists.
        fractions: Train, validation and test shares; non-negative, summing to 1.
        seed: Seed of the shuffles.
        source: The data's name (a path) for error messages.

    Returns:
        Three `(texts, labels)` pairs, each in a seeded random order.
        Deduplicate first: a text appears in one split only if it appears once.

    Raises:
        DataError: bad fractions, or a positive validation fraction that rounds
            to no rows (see `check_validation_split`).
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts = [[], [], []]
    labels_array = np.asarray(labels)
    for label in sorted(set(labels)):
        index = np.flatnonzero(labels_array == label)
        rng.shuffle(index)
        n_val = int(round(fractions[1] * len(index)))
        n_test = int(round(fractions[2] * len(index)))
        parts[1].extend(index[:n_val])
        parts[2].extend(index[n_val:n_val + n_test])
        parts[0].extend(index[n_val + n_test:])
    check_validation_split(len(parts[1]), fractions[1], len(texts), source)
    result = []
    for part in parts:
        # Seeded shuffle, not file order: files are often grouped by label, and the
        # first texts of a split serve as samples (export checks, int8 calibration).
        part = rng.permutation(np.asarray(part, dtype=np.int64))
        result.append(([texts[i] for i in part], [labels[i] for i in part]))
    return tuple(result)


def check_labels(known_labels, labels, path):
    """Raises DataError at the first label not in `known_labels`."""
    known = set(known_labels)
    for number, label in enumerate(labels, start=1):
        if label not in known:
            raise DataError(f"{path}, row {number}: label {label!r} is not among the training "
                            f"labels ({', '.join(sorted(known))})")


def check_label_count(labels, source):
    """Raises DataError unless `labels` holds at least two distinct labels.

    A classifier of one label learns nothing; this usually means the wrong
    `--label-column`, or a file filtered to one class.

    Args:
        labels: The labels of the training data.
        source: The data's name (a path) for the message.

    Example:

    >>> check_label_count(["pos", "neg", "pos"], "train.csv")
    >>> check_label_count(["pos", "pos"], "train.csv")
    Traceback (most recent call last):
    ...
    keras_lstm.core.errors.DataError: train.csv: needs at least two labels, found only 'pos' (2 rows)
    """
    distinct = sorted(set(labels))
    if not distinct:
        raise DataError(f"{source}: needs at least two labels, found no rows")
    if len(distinct) == 1:
        raise DataError(f"{source}: needs at least two labels, found only {distinct[0]!r} "
                        f"({len(labels)} rows)")


def check_validation_split(n_validation, fraction, n_rows, source=None):
    """Raises DataError when a positive validation fraction gave no rows.

    `stratified_split` calls it; a driver that splits otherwise can too.

    Args:
        n_validation: Rows the validation split received.
        fraction: The validation fraction asked for; 0 means none is wanted.
        n_rows: Rows that were split.
        source: The data's name (a path) for the message.

    Example:

    >>> check_validation_split(0, 0.1, 4, "train.csv")
    Traceback (most recent call last):
    ...
    keras_lstm.core.errors.DataError: train.csv: the validation fraction 0.1 of 4 rows rounds to no rows (it is taken per label); use more data, a larger --val-fraction or --val-data
    """
    if fraction > 0 and n_validation == 0:
        prefix = f"{source}: " if source is not None else ""
        raise DataError(f"{prefix}the validation fraction {fraction:g} of {n_rows} rows rounds to "
                        "no rows (it is taken per label); use more data, a larger "
                        "--val-fraction or --val-data")
