"""`keras-lstm predict TARGET --input FILE`: a model over a file, streamed in batches.

Reads CSV, TSV (both with a header row), JSON Lines (one object per line) or
plain text (one text per line) and writes each input row with its prediction
added: sentiment `label` and the probabilities (CSV/TSV: one
`probability_<label>` column per label; JSON Lines: a `probabilities`
object), translation `translation`. Where the input already has a field of
that name (a labelled file's `label`), the added ones are called
`predicted_label`, ... The output has the input's format; plain text, which
cannot hold a prediction, becomes JSON Lines, and so does any input when
`--output` ends in `.jsonl`.

Memory does not grow with the file: rows are read, predicted and written
`batch_size` at a time. Output to a file is written to a temporary file in
the same folder and renamed over the final name only when the whole input
was read, so an interrupted run leaves either the previous file or nothing.

Rows are read by `keras_lstm.data.rows.RowReader`, the project's one row
reader: a bad row (invalid UTF-8, a missing column, an empty text, a line
that is not a JSON object) stops the run with one line, `FILE:LINE: reason`,
unless `skip_bad_rows`, which counts and skips them; the CSV field limit is
raised only while the reader parses. In CSV and JSON Lines a line of only
white space is not a row; in plain text it is an empty text.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
from pathlib import Path

from keras_lstm.core.errors import ConfigError, DataError
from keras_lstm.core.files import atomic_output
from keras_lstm.core.reporter import Reporter
from keras_lstm.data.rows import RowReader, open_binary

__all__ = ["Writer", "guess_format", "predict_file", "read_rows", "text_column_of"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".txt": "txt", ".text": "txt"}


def guess_format(path, given=None):
    if given:
        return given
    if str(path) == "-":
        return "txt"
    try:
        return FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise ConfigError(f"{path}: unknown format; give --format csv, tsv, jsonl or txt") from None


def text_column_of(reader, text_column):
    """The CSV/TSV column of the texts (default "text", or a table's only column), checked."""
    header = reader.header
    if header is None:
        raise DataError(f"{reader.name}: empty file (expected a header row)")
    if text_column is None:
        text_column = "text" if "text" in header or len(header) != 1 else header[0]
    if text_column not in header:
        raise reader.error(reader.header_line, f"no column {text_column!r} (columns: "
                                               f"{', '.join(header)}); give --text-column")
    return text_column


def read_rows(reader, text_column):
    """Yields `(line, row, text)` of each good row of a `keras_lstm.data.rows.RowReader`.

    `row` is a list (CSV/TSV; the header is `reader.header`), a dict (JSON
    Lines) or a str (plain text); a bad row goes to `reader.bad`.
    """
    if reader.format in ("csv", "tsv"):
        text_column = text_column_of(reader, text_column)
        width = len(reader.header)
        index = reader.header.index(text_column)
        for line, row in reader:
            if index >= len(row):
                reader.bad(line, f"missing column {text_column!r} (the row has {len(row)} of "
                                 f"{width} fields)")
            elif not row[index].strip():
                reader.bad(line, f"empty text in column {text_column!r}")
            else:
                yield line, row, row[index]
    elif reader.format == "jsonl":
        column = text_column or "text"
        for line, row in reader:
            if column not in row:
                reader.bad(line, f"no field {column!r}")
                continue
            text = row[column]
            if not isinstance(text, str):
                reader.bad(line, f"field {column!r} is {type(text).__name__}, expected a string")
            elif not text.strip():
                reader.bad(line, f"empty text in field {column!r}")
            else:
                yield line, row, text
    else:
        if text_column:
            raise ConfigError("--text-column does not apply to plain text (one text per line)")
        for line, text in reader:
            if not text.strip():
                reader.bad(line, "empty text")
            else:
                yield line, text, text


class Writer:
    """Writes rows with their predictions, in CSV/TSV or JSON Lines."""

    def __init__(self, stream, format, task, labels):  # noqa: A002
        self.stream = stream
        self.format = format
        self.task = task
        self.labels = labels
        self.header = None
        self.csv = (csv.writer(stream, delimiter="," if format == "csv" else "\t",
                               lineterminator="\n") if format in ("csv", "tsv") else None)

    def added_names(self, taken):
        names = (["label", "probabilities"] if self.task == "sentiment" else ["translation"])
        if self.format in ("csv", "tsv") and self.task == "sentiment":
            names = ["label"] + [f"probability_{label}" for label in self.labels]
        if any(name in taken for name in names):
            names = [f"predicted_{name}" for name in names]
        return names

    def write_header(self, header):
        self.header = header
        if self.csv:
            self.added = self.added_names(set(header))
            self.csv.writerow(header + self.added)

    def values(self, prediction):
        if self.task == "translation":
            return [prediction["translation"]]
        if self.csv:
            return [prediction["label"]] + [prediction["probabilities"][label]
                                            for label in self.labels]
        return [prediction["label"], prediction["probabilities"]]

    def write(self, row, prediction):
        values = self.values(prediction)
        if self.csv:
            self.csv.writerow(row + values)
            return
        if isinstance(row, str):
            row = {"text": row}
        elif isinstance(row, list):
            row = dict(zip(self.header, row))
        record = dict(row)
        record.update(zip(self.added_names(row), values))
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def _output(path):
    """A text stream to `path` ("-": stdout) that replaces `path` only on success."""
    if str(path) == "-":
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--output {path}: is a folder")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {path}: no folder {path.parent}")
    with atomic_output(path, newline="", sync=True) as stream:
        yield stream


@contextlib.contextmanager
def _input(path):
    if str(path) == "-":
        yield sys.stdin.buffer, None
        return
    with open_binary(path) as stream:
        size = os.fstat(stream.fileno()).st_size
        yield stream, size if Path(path).is_file() else None


def predict_file(runtime, input, output="-", format=None, text_column=None,  # noqa: A002
                 batch_size=256, skip_bad_rows=False, beam=None, reporter=None) -> dict:
    """Predicts every row of `input` and writes the rows with their predictions to `output`.

    Args:
        runtime: A runtime of `keras_lstm.runtimes`.
        input: A file path, or "-" for stdin (plain text unless `format`).
        output: A file path, or "-" for stdout.
        format: "csv", "tsv", "jsonl" or "txt" (default: from the file's extension).
        text_column: The column (CSV/TSV) or field (JSON Lines) of the texts;
            default "text" (or a table's only column).
        batch_size: Rows per runtime call (and per write).
        skip_bad_rows: Count and skip bad rows instead of stopping at the first.
        beam: Translation: beam size (1: greedy; default `keras_lstm.presets.DECODING`).
        reporter: A `keras_lstm.core.reporter.Reporter` for the progress (a bar
            over the input's bytes on a terminal, a plain line every few
            seconds in a log; at verbosity 2, a closing line); None: silent.

    Returns:
        `{"rows": written, "skipped": bad rows skipped, "first_skipped": the
        first one's message or None}`.

    Raises:
        DataError: A bad row (without `skip_bad_rows`), an unreadable file.
        ConfigError: An unknown format or a bad option.
    """
    format = guess_format(input, format)  # noqa: A001
    if format not in ("csv", "tsv", "jsonl", "txt"):
        raise ConfigError(f"--format: expected csv, tsv, jsonl or txt, got {format!r}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size: expected a positive number, got {batch_size}")
    name = "<stdin>" if str(input) == "-" else str(input)
    out_format = format
    if format == "txt" or (str(output) != "-" and Path(output).suffix.lower() in (".jsonl",
                                                                                  ".ndjson")):
        out_format = "jsonl"
    labels = list(getattr(runtime, "labels", None) or [])
    written = 0
    with _input(input) as (stream, size), _output(output) as out:
        reader = RowReader(stream, format, name, size=size, skip_bad_rows=skip_bad_rows)
        # Quiet when piped and quick: no closing line unless asked for (-v).
        progress = (reporter or Reporter(0)).progress(
            "predict", total=size, unit="B", summary=bool(reporter) and reporter.enabled(2))
        writer = Writer(out, out_format, runtime.task, labels)
        rows = read_rows(reader, text_column)
        if format in ("csv", "tsv"):
            text_column_of(reader, text_column)  # the header's errors before any output
            writer.write_header(reader.header)
        batch = []

        def flush():
            nonlocal written
            predictions = runtime.rows([text for _, _, text in batch], beam=beam)
            for (_, row, _), prediction in zip(batch, predictions, strict=True):
                writer.write(row, prediction)
            written += len(batch)
            batch.clear()
            out.flush()
            progress.note(f"{written} rows")
            progress.update(reader.bytes - progress.count)

        with progress:
            for item in rows:
                batch.append(item)
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
            progress.close(f"{written} rows written to {'stdout' if str(output) == '-' else output}")
    return {"rows": written, "skipped": reader.skipped, "first_skipped": reader.first_skipped}
