"""Prepared data: a labelled corpus of any size, read in bounded memory into TFRecord shards.

`prepare` reads the file twice, as a stream, and never holds its texts:

1. **scan**: each row's text is hashed (8 bytes of BLAKE2b of the stripped
   text) and its label numbered; 10 bytes a row.
2. **deduplicate and split on hashes**: a text is kept at its first
   occurrence unless it also appears under another label (as
   `readers.deduplicate` does in memory); its split is a function of its hash
   and the seed only (`split_of`), so no list of texts is needed.
3. **tokenize and write**: chunks of kept rows are tokenized in the graph
   (`keras_lstm.text.TextTokenizer`); the training rows' tokens are counted
   (memory bounded by the number of distinct tokens) and every training and
   validation row is written, cut to `max_length` tokens, in blocks of
   `BLOCK_RECORDS` examples, each block one `tf.train.Example` record
   `{"tokens": flat bytes_list, "row_splits": int64, "labels": int64}`; training
   blocks go round-robin to the shards (block `i` to shard `i % shards`), with a
   histogram of lengths per shard (it gives the number of batches of any batch
   size without reading the data). Validation, test and calibration texts are
   also written as JSON Lines, the run folder's `splits/`.

The folder is written to a temporary name and renamed when complete.
Training reads it with `keras_lstm.data.pipeline.make_prepared_dataset`;
the vocabulary is built from the token counts when training starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import ConfigError, DataError
from keras_lstm.core.reporter import Reporter
from keras_lstm.data import readers

__all__ = [
    "BLOCK_RECORDS",
    "CALIBRATION_TEXTS",
    "CHUNK_ROWS",
    "FORMAT_VERSION",
    "MIN_SHARDS",
    "PREPARED_FILE",
    "RECORDS_PER_SHARD",
    "SETTINGS",
    "STREAM_BYTES",
    "Prepared",
    "is_prepared",
    "keep_first_unique",
    "prepare",
    "should_stream",
    "source_facts",
    "split_of",
    "text_hashes",
]

PREPARED_FILE = "prepared.json"
FORMAT_VERSION = 1
# `train --data FILE` prepares (streams) by itself from this size on.
STREAM_BYTES = 64 * 2**20
CHUNK_ROWS = 8192
# Examples per TFRecord record: a record holds a block of examples (serializing
# one proto per example would cost more than tokenizing it).
BLOCK_RECORDS = 128
RECORDS_PER_SHARD = 250_000
MIN_SHARDS = 8
# The training texts kept as splits/calibration.jsonl, in memory or prepared: they
# calibrate the int8 TFLite export (fewer, 100-200, moved 3-5 % of the labels).
CALIBRATION_TEXTS = 1000
# What the shards depend on: a prepared folder is reused only if these match.
SETTINGS = ("text_column", "label_column", "tokenizer", "max_length", "fractions", "seed")


def text_hashes(texts) -> np.ndarray:
    """Each text's deduplication key: 8 bytes of BLAKE2b of the stripped text, as uint64."""
    return np.fromiter((_hash(text) for text in texts), dtype=np.uint64)


def _hash(text):
    return int.from_bytes(hashlib.blake2b(text.strip().encode("utf-8"), digest_size=8).digest(),
                          "little")


def split_of(hashes, seed, fractions) -> np.ndarray:
    """Each text's split, 0 train, 1 validation, 2 test, from its hash and the seed only.

    A SplitMix64 finaliser of `hash ^ mix(seed)` gives a uniform number in
    [0, 1) per text; the fractions cut that interval. The same text gets the
    same split in every pass, in any order, on any machine.
    """
    hashes = np.asarray(hashes, np.uint64)
    split = np.empty(len(hashes), np.int8)
    for start in range(0, len(hashes), 2**20):  # a chunk at a time: few temporaries
        with np.errstate(over="ignore"):
            x = hashes[start:start + 2**20] ^ _splitmix(np.array([seed], np.uint64))
            u = (_splitmix(x) >> np.uint64(11)).astype(np.float64) / 2.0**53
        split[start:start + 2**20] = (u >= fractions[0]).astype(np.int8) + (
            u >= fractions[0] + fractions[1])
    return split


def _splitmix(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keep_first_unique(hashes, labels):
    """Rows to keep: each text's first occurrence, unless it appears under two labels.

    Returns:
        `(keep, conflicting)`: a boolean mask over the rows and the number of
        distinct texts dropped for conflicting labels, as `readers.deduplicate`.
    """
    hashes, labels = np.asarray(hashes, np.uint64), np.asarray(labels)
    keep = np.zeros(len(hashes), bool)
    if not len(hashes):
        return keep, 0
    order = np.argsort(hashes, kind="stable")  # stable: the first occurrence comes first
    ordered = hashes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    conflict = (np.minimum.reduceat(labels[order], starts)
                != np.maximum.reduceat(labels[order], starts))
    keep[order[starts[~conflict]]] = True
    return keep, int(conflict.sum())


def is_prepared(path) -> bool:
    return path is not None and (Path(path) / PREPARED_FILE).is_file()


def should_stream(data, stream) -> bool:
    """Whether `train --data` prepares shards: asked, already prepared, or a large file."""
    if data is None:
        return False
    if is_prepared(data):
        return True
    if stream is not None:
        return stream
    try:
        return os.path.getsize(data) >= STREAM_BYTES
    except OSError:
        return False  # the reader gives the error


def source_facts(path) -> dict:
    """What identifies the source file a folder was prepared from."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


def prepare(data, out, settings: dict, shards: int | None = None, verbose=1) -> Prepared:
    """Reads `data` (CSV, TSV or JSON Lines) into a prepared folder `out`.

    Args:
        data: The labelled file.
        out: The folder to write (replaced only when complete).
        settings: `SETTINGS`: `text_column`, `label_column`, `tokenizer` (a
            `TokenizerConfig` dict), `max_length`, `fractions` (train,
            validation, test) and `seed`; other entries (the training config's
            values) are kept in prepared.json.
        shards: Training shards (default: one per 250 000 rows, at least 8).
        verbose: Progress lines on stderr (see `keras_lstm.core.reporter`).

    Returns:
        The `Prepared` folder.
    """
    from keras_lstm.core.files import atomic_directory

    data = Path(data)
    settings = {**settings, "fractions": [float(f) for f in settings["fractions"]]}
    reporter = Reporter(verbose)
    with reporter.progress(f"reading {data}", unit="rows") as progress:
        hashes, labels, names = _scan(data, settings, progress)
    keep, conflicting = keep_first_unique(hashes, labels)
    split = split_of(hashes, settings["seed"], settings["fractions"])
    split[~keep] = -1
    del hashes, keep
    train_labels = sorted({names[i] for i in np.unique(labels[split == 0])})
    if len(train_labels) < 2:
        found = f"only {train_labels[0]!r}" if train_labels else "no rows"
        raise DataError(f"{data}: needs at least two labels in the training split, found {found}")
    for i in np.unique(labels[split > 0]):
        if names[i] not in train_labels:
            raise DataError(f"{data}: label {names[i]!r} has no training rows (only "
                            "validation or test ones); use more data or drop it")
    sizes = {name: int((split == i).sum()) for i, name in enumerate(("train", "validation",
                                                                      "test"))}
    readers.check_validation_split(sizes["validation"], settings["fractions"][1],
                                   sum(sizes.values()), str(data))
    if shards is not None and shards < 1:
        raise ConfigError(f"--shards: expected at least 1, got {shards}")
    shards = shards or max(MIN_SHARDS, math.ceil(sizes["train"] / RECORDS_PER_SHARD))
    label_ids = np.array([train_labels.index(n) if n in train_labels else -1 for n in names])
    with atomic_directory(out) as work:
        with reporter.progress(f"tokenizing and writing {shards} shards") as progress:
            written = _write(data, work, settings, split, labels, label_ids, train_labels,
                             shards, progress)
        meta = {"format_version": FORMAT_VERSION, "task": "sentiment",
                "source": source_facts(data), **settings, "labels": train_labels,
                "rows": int(len(split)), "duplicates": int(len(split) - sum(sizes.values())),
                "conflicting": conflicting, "splits": sizes, **written}
        (work / PREPARED_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return Prepared(out)


def _scan(path, settings, progress):
    """Pass 1: the hash and label number of every row (10 bytes a row)."""
    from array import array

    hashes, labels, names = array("Q"), array("H"), {}
    for _, text, label in readers.iter_labelled_rows(path, settings["text_column"],
                                                     settings["label_column"]):
        hashes.append(_hash(text))
        if label not in names:
            if len(names) == 2**16 - 1:
                raise DataError(f"{path}: more than {2**16 - 1} distinct labels; is "
                                f"{settings['label_column']!r} the label column?")
            names[label] = len(names)
        labels.append(names[label])
        if len(hashes) % CHUNK_ROWS == 0:
            progress.update(CHUNK_ROWS)
    progress.update(len(hashes) % CHUNK_ROWS)
    return np.frombuffer(hashes, np.uint64), np.frombuffer(labels, np.uint16), list(names)


def _write(path, work, settings, split, labels, label_ids, label_names, shards, progress):
    """Pass 2: tokenize the kept rows, count training tokens, write shards and splits.

    Tokenizing a chunk (TensorFlow, which releases the GIL) overlaps with
    reading the next one and writing the last one (Python).
    """
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow as tf

    from keras_lstm.text.tokenizer import TextTokenizer
    from lstm_text import TokenizerConfig

    tokenizer = TextTokenizer(TokenizerConfig.from_dict(settings["tokenizer"]))
    max_length = settings["max_length"]
    train_files = [f"train-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    writers = [tf.io.TFRecordWriter(str(work / name)) for name in train_files]
    writers.append(tf.io.TFRecordWriter(str(work / "validation.tfrecord")))
    (work / "splits").mkdir()
    texts_out = {name: (work / "splits" / f"{name}.jsonl").open("w", encoding="utf-8")
                 for name in ("validation", "test", "calibration")}
    lengths = np.zeros((shards + 1, max_length + 1), np.int64)  # the last row: validation
    counts = {}
    blocks = calibrated = 0  # training blocks written, calibration texts written

    def tokenize(texts, parts):
        tokens = tokenizer.tokenize(tf.constant(texts))
        flat = tf.ragged.boolean_mask(tokens, tf.constant(parts == 0)).flat_values
        unique, _, count = tf.unique_with_counts(flat)
        return tokens[:, :max_length], unique.numpy(), count.numpy()

    def write(texts, parts, label_numbers, tokenized):
        nonlocal blocks, calibrated
        cut, unique, count = tokenized
        for token, n in zip(unique.tolist(), count.tolist(), strict=True):
            counts[token] = counts.get(token, 0) + n
        names = [label_names[i] for i in label_numbers]
        for i in np.flatnonzero(parts == 2):
            _json_line(texts_out["test"], texts[i], names[i])
        for i in np.flatnonzero(parts == 1):
            _json_line(texts_out["validation"], texts[i], names[i])
        for i in np.flatnonzero(parts == 0)[:CALIBRATION_TEXTS - calibrated]:
            _json_line(texts_out["calibration"], texts[i], names[i])
            calibrated += 1
        for part in (0, 1):
            rows = np.flatnonzero(parts == part)
            selected = tf.gather(cut, rows)
            flat = selected.flat_values.numpy().tolist()
            starts = selected.row_splits.numpy()
            sizes = np.maximum(np.diff(starts), 1)  # an empty text is one [UNK] step
            for first in range(0, len(rows), BLOCK_RECORDS):
                last = min(first + BLOCK_RECORDS, len(rows))
                shard = blocks % shards if part == 0 else shards
                writers[shard].write(_block(flat[starts[first]:starts[last]],
                                            starts[first:last + 1] - starts[first],
                                            label_numbers[rows[first:last]]))
                np.add.at(lengths[shard], sizes[first:last], 1)
                blocks += part == 0
        progress.update(len(texts))

    def chunks():
        texts, parts, numbers = [], [], []
        rows = readers.iter_labelled_rows(path, settings["text_column"], settings["label_column"])
        for i, (_, text, _) in enumerate(rows):
            if i >= len(split):
                raise DataError(f"{path}: the file changed while it was read")
            if split[i] >= 0:
                texts.append(text)
                parts.append(split[i])
                numbers.append(label_ids[labels[i]])
                if len(texts) == CHUNK_ROWS:
                    yield texts, np.array(parts), np.array(numbers)
                    texts, parts, numbers = [], [], []
        if texts:
            yield texts, np.array(parts), np.array(numbers)

    try:
        with ThreadPoolExecutor(1) as pool:
            pending = None
            for texts, parts, numbers in chunks():
                future = pool.submit(tokenize, texts, parts)
                if pending is not None:
                    write(*pending[:3], pending[3].result())
                pending = (texts, parts, numbers, future)
            if pending is not None:
                write(*pending[:3], pending[3].result())
    finally:
        for writer in writers:
            writer.close()
        for handle in texts_out.values():
            handle.close()
    tokens = sorted(((t.decode("utf-8"), n) for t, n in counts.items()),
                    key=lambda item: (-item[1], item[0]))
    (work / "token_counts.json").write_text(json.dumps(tokens, ensure_ascii=False) + "\n")
    return {"train_shards": [{"file": name, "lengths": lengths[i].tolist()}
                             for i, name in enumerate(train_files)],
            "validation_shard": {"file": "validation.tfrecord", "lengths": lengths[-1].tolist()},
            "token_counts": "token_counts.json", "distinct_tokens": len(tokens)}


def _block(tokens, row_splits, labels):
    """One record: a block of examples, `tokens` flat with their `row_splits`, and `labels`."""
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "tokens": tf.train.Feature(bytes_list=tf.train.BytesList(value=tokens)),
        "row_splits": tf.train.Feature(int64_list=tf.train.Int64List(value=row_splits)),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
    })).SerializeToString()


def _json_line(handle, text, label):
    handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


class Prepared:
    """A prepared folder: its facts, its vocabulary and its shards' files and lengths."""

    def __init__(self, folder):
        from keras_lstm.core.schemas import read_json

        self.folder = Path(folder)
        self.meta = read_json(self.folder / PREPARED_FILE)
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(f"{self.folder / PREPARED_FILE}: format_version {version!r} is not "
                            f"{FORMAT_VERSION}; prepare the data again")
        self.labels = self.meta["labels"]
        self.sizes = self.meta["splits"]

    def matches(self, data, settings) -> bool:
        """Whether this folder was prepared from `data`, unchanged, with `settings`."""
        settings = {**settings, "fractions": [float(f) for f in settings["fractions"]]}
        try:
            return self.meta["source"] == source_facts(data) and all(
                self.meta.get(key) == settings[key] for key in SETTINGS)
        except OSError:
            return False

    def token_counts(self) -> dict:
        return dict(json.loads((self.folder / self.meta["token_counts"]).read_text("utf-8")))

    def vocabulary(self, max_size, min_count):
        from lstm_text.vocabulary import Vocabulary

        return Vocabulary.from_counts(self.token_counts(), max_size, min_count)

    def shards(self, split="train"):
        """`[(path, lengths)]` of a split's shards; `lengths[n]` counts records of n tokens."""
        entries = (self.meta["train_shards"] if split == "train"
                   else [self.meta["validation_shard"]])
        return [(str(self.folder / e["file"]), np.asarray(e["lengths"])) for e in entries]

    def split_file(self, name) -> Path:
        return self.folder / "splits" / f"{name}.jsonl"

    def source_path(self) -> Path:
        return Path(self.meta["source"]["path"])

    def training_texts(self, limit) -> tuple[list, list]:
        """`(texts, labels)`: the first `limit` training texts, read again from the source file.

        The shards keep tokens, not texts. A text is a training text where
        `split_of` its hash says so, as in `prepare`; duplicates are kept once
        and texts seen under two labels dropped, among the rows read (a
        conflict further down the file is not seen). Empty lists when the
        source file is gone or changed since it was prepared.
        """
        source = self.source_path()
        try:
            if source_facts(source) != self.meta["source"]:
                return [], []
        except OSError:
            return [], []
        seen, texts, labels = {}, [], []
        rows = readers.iter_labelled_rows(source, self.meta["text_column"],
                                          self.meta["label_column"])
        while len(seen) < limit:
            chunk = [(text, label) for _, text, label in itertools.islice(rows, CHUNK_ROWS)]
            if not chunk:
                break
            hashes = text_hashes(text for text, _ in chunk)
            training = split_of(hashes, self.meta["seed"], self.meta["fractions"]) == 0
            for (text, label), key, kept in zip(chunk, hashes.tolist(), training.tolist()):
                if kept and label in self.labels and len(seen) < limit:
                    seen.setdefault(key, (text, label, set()))[2].add(label)
        for text, label, found in seen.values():
            if len(found) == 1:
                texts.append(text)
                labels.append(label)
        return texts, labels
