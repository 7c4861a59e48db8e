"""Labelled text files (CSV, TSV, JSON Lines): reading, deduplication, splitting.

Every problem is a `DataError` naming the file, the line and the field, and
saying what was expected.
"""

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from keras_lstm.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".ndjson": "jsonl"}


@dataclasses.dataclass
class LabelledTexts:
    """Texts and their labels, as read from `path`."""

    texts: list[str]
    labels: list[str]
    path: str


def _read_text(path):
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 (byte {raw[error.start]:#04x}); "
                        "save the file as UTF-8") from None


def read_labelled_file(path, text_column="text", label_column="label", format=None):  # noqa: A002
    """Reads texts and labels from a CSV, TSV or JSON Lines file.

    Args:
        path: The file; its extension picks the format unless `format` does.
        text_column, label_column: Column names (CSV/TSV header) or JSON fields.
        format: "csv", "tsv" or "jsonl".

    Returns:
        `LabelledTexts`.

    Raises:
        DataError: missing/unreadable file, invalid UTF-8, unknown format,
            missing column, empty text or label, bad JSON, or no rows.
    """
    path = Path(path)
    format = format or FORMATS.get(path.suffix.lower())  # noqa: A001
    if format not in ("csv", "tsv", "jsonl"):
        raise DataError(f"{path}: unknown format (expected a .csv, .tsv or .jsonl file)")
    text = _read_text(path)
    rows = _jsonl_rows(path, text) if format == "jsonl" else _table_rows(path, text, format)
    texts, labels = [], []
    for line, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                found = ", ".join(repr(k) for k in row) or "none"
                raise DataError(f"{path}, line {line}: no field {column!r} (found {found}); "
                                "set --text-column/--label-column")
        value, label = row[text_column], row[label_column]
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{path}, line {line}, field {text_column!r}: empty text")
        if label is None or not str(label).strip():
            raise DataError(f"{path}, line {line}, field {label_column!r}: empty label")
        texts.append(value)
        labels.append(str(label).strip())
    if not texts:
        raise DataError(f"{path}: no rows (expected a header and at least one row)"
                        if format != "jsonl" else f"{path}: no rows")
    return LabelledTexts(texts, labels, str(path))


def _table_rows(path, text, format):  # noqa: A002
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="," if format == "csv" else "\t")
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise DataError(f"{path}, line 1: {error}") from None
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


def _jsonl_rows(path, text):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
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


def stratified_split(texts, labels, fractions=(0.8, 0.1, 0.1), seed=0):
    """Splits into train/validation/test keeping each label's share, reproducibly.

    Returns:
        Three `(texts, labels)` pairs, each in a seeded random order.
        Deduplicate first: a text appears in one split only if it appears once.
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
