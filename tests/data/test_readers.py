"""Reading labelled files: formats, errors naming file/line/field, dedup, splits."""

import json

import pytest

from keras_lstm.data import readers
from keras_lstm.errors import DataError


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_reads_csv_tsv_and_jsonl(tmp_path):
    csv_path = write(tmp_path, "a.csv", 'text,label\n"hello, world",positive\nbad,negative\n')
    tsv_path = write(tmp_path, "a.tsv", "label\ttext\npositive\thello\n")
    jsonl = write(tmp_path, "a.jsonl", json.dumps({"review": "好", "y": "pos"}) + "\n\n")
    assert readers.read_labelled_file(csv_path).texts == ["hello, world", "bad"]
    assert readers.read_labelled_file(tsv_path).labels == ["positive"]
    table = readers.read_labelled_file(jsonl, text_column="review", label_column="y")
    assert (table.texts, table.labels) == (["好"], ["pos"])


@pytest.mark.parametrize("name, content, kwargs, message", [
    ("a.csv", "text,label\nfine,positive\n   ,negative\n", {}, r"a\.csv, line 3, field 'text': empty text"),
    ("a.csv", "words,label\nfine,positive\n", {}, r"a\.csv, line 2: no field 'text' \(found 'words', 'label'\)"),
    ("a.csv", "text,label\nfine,positive,extra\n", {}, r"line 2: 3 fields, expected 2"),
    ("a.csv", "text,label\n", {}, r"a\.csv: no rows"),
    ("a.csv", "", {}, r"a\.csv: no rows"),
    ("a.csv", b"text,label\nok,positive\n\xff\xfe,negative\n", {}, r"line 3: not valid UTF-8"),
    ("a.jsonl", '{"text": "x", "label": "y"}\n{"text": \n', {}, r"line 2: not valid JSON"),
    ("a.jsonl", '["x", "y"]\n', {}, r"line 1: expected a JSON object"),
    ("a.jsonl", '{"text": "x", "label": ""}\n', {}, r"line 1, field 'label': empty label"),
    ("a.txt", "x", {}, r"unknown format"),
])
def test_errors_name_file_line_and_field(tmp_path, name, content, kwargs, message):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError, match=message):
        readers.read_labelled_file(path, **kwargs)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        readers.read_labelled_file(tmp_path / "none.csv")


def test_deduplicate_keeps_first_and_drops_conflicts():
    texts, labels, conflicts = readers.deduplicate(
        ["a", "b", "a ", "c", "c"], ["pos", "neg", "pos", "pos", "neg"])
    assert (texts, labels, conflicts) == (["a", "b"], ["pos", "neg"], 1)


def test_stratified_split_is_deterministic_disjoint_and_stratified():
    texts = [f"t{i}" for i in range(200)]
    labels = ["pos"] * 150 + ["neg"] * 50
    first = readers.stratified_split(texts, labels, (0.8, 0.1, 0.1), seed=3)
    assert first == readers.stratified_split(texts, labels, (0.8, 0.1, 0.1), seed=3)
    assert first != readers.stratified_split(texts, labels, (0.8, 0.1, 0.1), seed=4)
    sets = [set(part[0]) for part in first]
    assert sum(map(len, sets)) == 200 and not (sets[0] & sets[1] or sets[0] & sets[2])
    assert first[1][1].count("pos") == 15 and first[1][1].count("neg") == 5


def test_check_labels_names_the_unknown_label():
    with pytest.raises(DataError, match=r"val\.csv, row 2: label 'neutral' is not among"):
        readers.check_labels({"pos", "neg"}, ["pos", "neutral"], "val.csv")


def test_stratified_split_mixes_a_file_grouped_by_label():
    """The first texts of a split are used as samples: they must not be one label."""
    texts = [f"t{i}" for i in range(2000)]
    labels = ["neg"] * 1000 + ["pos"] * 1000  # a file with every negative first
    train, validation, _ = readers.stratified_split(texts, labels, (0.8, 0.1, 0.1), seed=0)
    for part_labels in (train[1][:200], validation[1][:100]):
        assert 0.3 < part_labels.count("pos") / len(part_labels) < 0.7
