"""Large data: streaming preparation into shards, bounded memory, workers' own shards.

The properties of `bench/scale.py`, on small generated files: the prepared
path gives the in-memory path's vocabulary, ids and batches for the same
seed; it holds no list of the corpus; shards are read whole and disjointly.
"""

import csv
import json
import random
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from keras_lstm.data import pipeline, prepared, readers
from keras_lstm.text import GraphPreprocessor, build_vocabulary
from lstm_text import TokenizerConfig
from lstm_text.preprocessor import Preprocessor
from tests.helpers import REPO

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

WORDS = ("good bad fine great awful okay movie plot actor nice boring fun sad happy love hate "
         "not very quite story").split()


def write_corpus(path, rows, seed=0):
    """A labelled CSV with repeated texts, texts under two labels, and quoted commas."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
            label = "pos" if ("good" in words or "great" in words) else rng.choice(["neg", "neu"])
            text = " ".join(words) + (", really" if i % 7 == 0 else "")
            writer.writerow([text, label])
    return path


SETTINGS = {"text_column": "text", "label_column": "label", "max_length": 8, "seed": 3,
            "tokenizer": TokenizerConfig().to_dict(), "fractions": [0.8, 0.1, 0.1]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    data = write_corpus(folder / "data.csv", 3000)
    return data, prepared.prepare(data, folder / "prepared", SETTINGS, shards=3, verbose=0)


def in_memory_train_split(data):
    """The in-memory path: read, deduplicate, and split by the same hash function."""
    table = readers.read_labelled_file(data)
    texts, labels, conflicting = readers.deduplicate(table.texts, table.labels)
    split = prepared.split_of(prepared.text_hashes(texts), SETTINGS["seed"],
                              SETTINGS["fractions"])
    return ([(t, y) for t, y, s in zip(texts, labels, split, strict=True) if s == part]
            for part in range(3)), conflicting


def test_prepared_splits_and_vocabulary_are_the_in_memory_ones(corpus):
    data, folder = corpus
    (train, validation, test), conflicting = in_memory_train_split(data)
    assert folder.sizes == {"train": len(train), "validation": len(validation),
                            "test": len(test)}
    assert folder.meta["conflicting"] == conflicting > 0 and folder.meta["duplicates"] > 0
    assert folder.labels == sorted({y for _, y in train})
    for name, rows in (("validation", validation), ("test", test), ("calibration", train[:1000])):
        written = readers.read_labelled_file(folder.split_file(name))
        assert list(zip(written.texts, written.labels)) == rows
    expected = build_vocabulary([t for t, _ in train], TokenizerConfig(), max_size=50, min_count=2)
    assert folder.vocabulary(50, 2).tokens == expected.tokens


def test_the_training_texts_read_again_for_the_baseline_are_the_in_memory_ones(corpus):
    data, folder = corpus
    (train, _, _), _ = in_memory_train_split(data)
    texts, labels = folder.training_texts(10**6)
    assert list(zip(texts, labels, strict=True)) == train
    # A limit reads the file's first training texts only; a text whose other label
    # comes later in the file is not known to conflict yet.
    table = readers.read_labelled_file(data)
    found = {}
    for text, label in zip(table.texts, table.labels, strict=True):
        found.setdefault(text.strip(), set()).add(label)
    texts, labels = folder.training_texts(100)
    assert len(texts) == len(set(texts)) and 90 <= len(texts) <= 100
    assert set(zip(texts, labels)) <= set(train) | {(t, y) for t, y in zip(texts, labels)
                                                    if len(found[t.strip()]) > 1}
    # A source file changed since it was prepared is not read.
    changed = prepared.Prepared(folder.folder)
    changed.meta = {**changed.meta, "source": {**changed.meta["source"], "bytes": 1}}
    assert changed.training_texts(100) == ([], [])


@pytest.mark.parametrize("split", ["train", "validation"])
def test_prepared_batches_are_the_in_memory_batches(corpus, split):
    data, folder = corpus
    rows = list(in_memory_train_split(data)[0])[0 if split == "train" else 1]
    vocabulary = folder.vocabulary(20_000, 1)
    graph = GraphPreprocessor(Preprocessor(TokenizerConfig(), vocabulary, SETTINGS["max_length"]))
    index = {label: i for i, label in enumerate(folder.labels)}
    options = {"batch_size": 32, "shuffle": split == "train", "seed": 5, "epochs": 3,
               "first_epoch": 1}
    memory = pipeline.make_dataset([t for t, _ in rows], [index[y] for _, y in rows], graph,
                                   **options)
    sharded = pipeline.make_prepared_dataset(folder.shards(split), graph, **options)
    assert sharded.steps_per_epoch == memory.steps_per_epoch
    batches = list(zip(memory, sharded, strict=True))
    assert len(batches) == 2 * memory.steps_per_epoch
    for (ids, labels), (ids2, labels2) in batches:
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_array_equal(labels, labels2)


def records(dataset):
    """The multiset of `(ids, label)` examples of a batched dataset (padding dropped)."""
    return sorted((tuple(int(i) for i in row if i), int(y)) for ids, labels in dataset
                  for row, y in zip(ids.numpy(), labels.numpy(), strict=True))


def test_streamed_epochs_see_every_example_once_in_a_new_seeded_order(corpus, monkeypatch):
    data, folder = corpus
    monkeypatch.setattr(pipeline, "IN_MEMORY_RECORDS", 0)  # stream, as for millions of texts
    monkeypatch.setattr(pipeline, "SHUFFLE_BUFFER", 256)
    vocabulary = folder.vocabulary(20_000, 1)
    graph = GraphPreprocessor(Preprocessor(TokenizerConfig(), vocabulary, SETTINGS["max_length"]))
    (train, _, _), _ = in_memory_train_split(data)
    index = {label: i for i, label in enumerate(folder.labels)}
    expected = sorted((tuple(graph.ragged([t]).to_list()[0]), index[y]) for t, y in train)

    def epoch(e):
        dataset = pipeline.make_prepared_dataset(folder.shards(), graph, batch_size=32, seed=5,
                                                 epochs=e + 1, first_epoch=e)
        return dataset, [b[1].numpy().tolist() for b in dataset]

    dataset, first = epoch(0)
    assert records(dataset) == expected
    assert len(first) == dataset.steps_per_epoch
    assert epoch(0)[1] == first  # the seed fixes the order
    assert epoch(1)[1] != first  # and each epoch has its own


def test_two_workers_read_disjoint_shards_that_cover_the_data(corpus, monkeypatch):
    _, folder = corpus
    vocabulary = folder.vocabulary(20_000, 1)
    graph = GraphPreprocessor(Preprocessor(TokenizerConfig(), vocabulary, SETTINGS["max_length"]))
    whole = records(pipeline.make_prepared_dataset(folder.shards(), graph, batch_size=8,
                                                   shuffle=False))
    workers = [pipeline.make_prepared_dataset(folder.shards(), graph, batch_size=8, shuffle=False,
                                              num_shards=2, shard_index=i) for i in range(2)]
    files = [set(w.files) for w in workers]
    assert not files[0] & files[1] and files[0] | files[1] == {f for f, _ in folder.shards()}
    assert workers[0].steps_per_epoch == workers[1].steps_per_epoch
    # Each worker's examples come from its own shards only; with every batch kept
    # (a batch size that evens out), together they are the whole training split.
    monkeypatch.setattr(pipeline, "steps_of", lambda *a: 10**9)
    parts = [records(pipeline.make_prepared_dataset(folder.shards(), graph, batch_size=8,
                                                    shuffle=False, num_shards=2, shard_index=i))
             for i in range(2)]
    assert sorted(parts[0] + parts[1]) == whole
    with pytest.raises(ValueError, match="3 shards cannot be shared by 4 workers"):
        pipeline.make_prepared_dataset(folder.shards(), graph, num_shards=4, shard_index=0)


def test_steps_of_counts_the_batches_of_bucketing(corpus):
    _, folder = corpus
    graph = GraphPreprocessor(Preprocessor(TokenizerConfig(), folder.vocabulary(100, 1), 8))
    for batch_size in (1, 7, 64):
        dataset = pipeline.make_prepared_dataset(folder.shards(), graph, batch_size=batch_size,
                                                 shuffle=False, num_shards=1)
        lengths = sum(counts for _, counts in folder.shards())
        assert pipeline.steps_of(lengths, batch_size, pipeline.bucket_boundaries(8)) == \
            dataset.steps_per_epoch == sum(1 for _ in dataset.take(dataset.steps_per_epoch + 5))


def test_preparation_memory_does_not_grow_with_the_corpus(tmp_path):
    """Python's heap peak per extra row: a few array entries (hash, label, split and the
    sort that finds duplicates), never a text: a list of these texts costs over 100 bytes
    a row."""
    peaks = {}
    for rows in (20_000, 60_000):  # both over a chunk (CHUNK_ROWS) of rows
        data = write_corpus(tmp_path / f"{rows}.csv", rows, seed=rows)
        tracemalloc.start()
        prepared.prepare(data, tmp_path / f"p{rows}", SETTINGS, shards=2, verbose=0)
        peaks[rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    per_row = (peaks[60_000] - peaks[20_000]) / 40_000
    print(f"heap peak {peaks}; {per_row:.1f} bytes per extra row")
    assert per_row < 40


def test_text_split_depends_on_the_text_and_seed_only():
    texts = [f"text {i}" for i in range(20_000)]
    hashes = prepared.text_hashes(texts)
    split = prepared.split_of(hashes, 7, (0.8, 0.1, 0.1))
    assert np.array_equal(prepared.split_of(hashes[::-1], 7, (0.8, 0.1, 0.1)), split[::-1])
    assert np.array_equal(prepared.text_hashes([" text 5 "]), hashes[5:6])  # stripped, as dedup
    assert not np.array_equal(prepared.split_of(hashes, 8, (0.8, 0.1, 0.1)), split)
    shares = np.bincount(split, minlength=3) / len(texts)
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)


def test_keep_first_unique_matches_deduplicate():
    rng = random.Random(1)
    texts = [rng.choice(["a", "b", "c", "d", "e", " a", "f"]) for _ in range(300)]
    labels = [rng.choice([0, 0, 0, 1]) if t.strip() in "ab" else 0 for t in texts]
    keep, conflicting = prepared.keep_first_unique(prepared.text_hashes(texts), labels)
    kept, _, expected_conflicts = readers.deduplicate(texts, [str(y) for y in labels])
    assert [t for t, k in zip(texts, keep, strict=True) if k] == kept
    assert conflicting == expected_conflicts


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "keras_lstm", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO),
                                                               "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_cli_prepare_then_train_and_evaluate_from_shards(tmp_path):
    data = write_corpus(tmp_path / "data.csv", 1500)
    done = cli("prepare", "sentiment", "--data", data, "--out", tmp_path / "p", "--shards", 2,
               "--max-length", 12, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()  # the result; the phases went to stderr
    assert len(lines) == 1 and lines[0].startswith("prepared 1500 texts in ") \
        and "2 training shards" in lines[0]
    assert any(line.startswith(f"reading {data}: 1,500 rows in ")
               for line in done.stderr.splitlines())
    assert "\r" not in done.stdout + done.stderr and "\x1b" not in done.stdout + done.stderr
    # The prepared folder fixes what its tokens depend on.
    refused = cli("train", "sentiment", "--data", tmp_path / "p", "--out", tmp_path / "r",
                  "--max-length", 20, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        f"keras-lstm: error: --max-length 20: {tmp_path / 'p'} was prepared with 12; prepare it "
        "again to change it")
    assert not (tmp_path / "r").exists()
    again = cli("prepare", "sentiment", "--data", data, "--out", tmp_path / "p", cwd=tmp_path)
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
    trained = cli("train", "sentiment", "--data", tmp_path / "p", "--out", tmp_path / "r",
                  "--units", 8, "--embedding-dim", 8, "--epochs", 1, "-v", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "first training step after" in trained.stderr
    assert "baseline (TF-IDF + logistic regression) fitted on " in trained.stderr
    assert "baseline (TF-IDF + logistic regression, same training split): accuracy" in \
        trained.stdout
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["training"]["max_length"] == 12
    assert config["splits"] == json.loads((tmp_path / "p" / "prepared.json").read_text())["splits"]
    scored = cli("evaluate", tmp_path / "r", "--json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["examples"] == config["splits"]["test"]
    # The run's splits (copied from the shards' folder) serve the export's checks.
    exported = cli("export", tmp_path / "r", "--formats", "onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    onnx = cli("evaluate", tmp_path / "r" / "export", "--runtime", "onnx", "--data",
               tmp_path / "r" / "splits" / "test.jsonl", "--json", cwd=tmp_path)
    assert json.loads(onnx.stdout)["accuracy"] == json.loads(scored.stdout)["accuracy"]
    # The export inside its run folder finds the run's baseline; an export alone has none.
    baseline = json.loads(scored.stdout)["baseline"]
    assert baseline is not None and json.loads(onnx.stdout)["baseline"] == baseline
    shutil.copytree(tmp_path / "r" / "export", tmp_path / "alone")
    alone = cli("evaluate", tmp_path / "alone", "--data", tmp_path / "r" / "splits" / "test.jsonl",
                "--json", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["baseline"] is None
    assert "not inside its run folder" in json.loads(alone.stdout)["baseline_missing"]


@pytest.mark.parametrize("flags, message", [
    (["--val-data", "{data}"], "--val-data does not apply to streamed (prepared) data"),
    (["--max-examples", "10"], "--max-examples does not apply to streamed (prepared) data"),
    (["--strategy", "multi-worker"], "multi-worker training reads prepared shards"),
])
def test_streamed_training_refuses_what_does_not_apply(tmp_path, flags, message, monkeypatch):
    data = write_corpus(tmp_path / "data.csv", 50)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    from keras_lstm.app.cli import main

    flags = [f.format(data=data) for f in flags]
    assert main(["train", "sentiment", "--data", str(data), "--stream", "--out",
                 str(tmp_path / "r"), *flags]) == 2
    assert not (tmp_path / "r" / "config.json").exists()
