r"""Labelled text files (CSV, TSV, JSON Lines): reading, deduplication, splitting.

Files are read through `keras_lstm.data.rows.RowReader`, the project's one
streaming row reader: every problem is a one-line `DataError`, `FILE:LINE:
message` (naming the field where there is one, and saying what was expected),
and the CSV field limit is raised only while the reader parses.

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

import dataclasses
import itertools
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import DataError
from keras_lstm.data import rows

__all__ = [
    "FORMATS",
    "LabelledTexts",
    "check_label_count",
    "check_labels",
    "check_validation_split",
    "deduplicate",
    "iter_labelled_rows",
    "read_labelled_file",
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
    read = iter_labelled_rows(path, text_column, label_column, format)
    for _, text, label in itertools.islice(read, limit):
        texts.append(text)
        labels.append(label)
    return LabelledTexts(texts, labels, str(path))


def iter_labelled_rows(path, text_column="text", label_column="label", format=None,  # noqa: A002
                       skip_bad_rows=False, hint="", counts=None):
    """`read_labelled_file` one row at a time: yields `(line, text, label)`.

    The file is read as a stream (memory does not grow with it), with the
    same checks and the same one-line errors as `read_labelled_file`,
    including "no rows" at the end of an empty file.

    Args:
        skip_bad_rows: Count and skip bad rows instead of raising the first.
        hint: Appended to a bad row's error, e.g. `rows.SKIP_HINT` where the
            command has `--skip-bad-rows`.
        counts: A dict that receives, when the file has been read, "skipped"
            (bad rows skipped) and "first_skipped" (the first one's message).
    """
    path = Path(path)
    format = format or FORMATS.get(path.suffix.lower())  # noqa: A001
    if format not in ("csv", "tsv", "jsonl"):
        raise DataError(f"{path}: unknown format (expected a .csv, .tsv or .jsonl file)")
    count = 0
    with rows.open_binary(path) as stream:
        reader = rows.RowReader(stream, format, str(path), size=path.stat().st_size,
                                skip_bad_rows=skip_bad_rows, hint=hint)
        header = reader.header
        if header is not None:
            for column in (text_column, label_column):
                if header.count(column) > 1:
                    raise reader.error(reader.header_line, f"column {column!r} appears "
                                       f"{header.count(column)} times in the header")
                if column not in header:
                    found = ", ".join(repr(name) for name in header)
                    raise reader.error(reader.header_line, f"no column {column!r} (found "
                                       f"{found}); set --text-column/--label-column")
        for line, row in reader:
            if header is not None:
                if len(row) != len(header):
                    reader.bad(line, f"{len(row)} fields, expected {len(header)} as in the "
                                     "header")
                    continue
                row = dict(zip(header, row))
            labelled = _labelled(reader, line, row, text_column, label_column)
            if labelled is not None:
                count += 1
                yield (line, *labelled)
    if counts is not None:
        counts.update(skipped=reader.skipped, first_skipped=reader.first_skipped)
    if not count:
        raise DataError(f"{path}: no rows (expected a header and at least one row)"
                        if format != "jsonl" else f"{path}: no rows")


def _labelled(reader, line, row, text_column, label_column):
    """`(text, label)` of a row, or None when it is bad (and skipped)."""
    for column in (text_column, label_column):
        if column not in row:
            found = ", ".join(repr(k) for k in row) or "none"
            return reader.bad(line, f"no field {column!r} (found {found}); "
                                    "set --text-column/--label-column")
    value, label = row[text_column], row[label_column]
    if value is not None and not isinstance(value, str):
        return reader.bad(line, f"field {text_column!r}: expected a string, got "
                                f"{_json_type(value)}")
    if value is None or not value.strip():
        return reader.bad(line, f"field {text_column!r}: empty text")
    if isinstance(label, (list, dict)):
        return reader.bad(line, f"field {label_column!r}: expected a string or a number, got "
                                f"{_json_type(label)}")
    if label is None or not str(label).strip():
        return reader.bad(line, f"field {label_column!r}: empty label")
    return value, str(label).strip()


def _json_type(value):
    names = {bool: "true/false", int: "a number", float: "a number", list: "an array",
             dict: "an object"}
    return names.get(type(value), type(value).__name__)


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
