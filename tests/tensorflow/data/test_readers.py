"""Reading labelled files: formats, errors naming file/line/field, dedup, splits."""

import csv
import json

import pytest

from keras_lstm.core.errors import DataError
from keras_lstm.data import readers


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
    ("a.csv", "text,label\nfine,positive\n   ,negative\n", {}, r"a\.csv:3: field 'text': empty text$"),
    ("a.csv", "words,label\nfine,positive\n", {}, r"a\.csv:1: no column 'text' \(found 'words', 'label'\); set --text-column/--label-column$"),
    ("a.csv", "text,label\nfine,positive,extra\n", {}, r"a\.csv:2: 3 fields, expected 2 as in the header$"),
    ("a.csv", "text,label\n", {}, r"a\.csv: no rows"),
    ("a.csv", "", {}, r"a\.csv: no rows"),
    ("a.csv", b"text,label\nok,positive\n\xff\xfe,negative\n", {}, r"a\.csv:3: not valid UTF-8 \(byte 0xff at byte 1 of the line\); save the file as UTF-8$"),
    ("a.jsonl", '{"text": "x", "label": "y"}\n{"text": \n', {}, r"a\.jsonl:2: not valid JSON \(Expecting value at column 10\)$"),
    ("a.jsonl", '["x", "y"]\n', {}, r"a\.jsonl:1: expected a JSON object$"),
    ("a.jsonl", '{"text": "x", "label": ""}\n', {}, r"a\.jsonl:1: field 'label': empty label$"),
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


# Characters str.splitlines() breaks at although no format here does (besides \n and \r).
LINE_BREAKS_OF_SPLITLINES = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]
TEXTS_WITH_BREAKS = ([f"before{c}after" for c in LINE_BREAKS_OF_SPLITLINES]
                     + [c + "edge" + c for c in LINE_BREAKS_OF_SPLITLINES]
                     + ["two\nlines", "windows\r\nbreak", "lone\rreturn", "tab\there"])


def write_table(path, texts, labels, delimiter):
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, delimiter=delimiter)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))
    return path


@pytest.mark.parametrize("name", ["splits.jsonl", "a.csv", "a.tsv"])
def test_texts_holding_splitlines_breaks_round_trip_exactly(tmp_path, name):
    """A run must read back its own splits/*.jsonl, written as the trainer writes them."""
    labels = [f"label{i % 3}" for i in range(len(TEXTS_WITH_BREAKS))]
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                for t, y in zip(TEXTS_WITH_BREAKS, labels)), encoding="utf-8")
    else:
        write_table(path, TEXTS_WITH_BREAKS, labels, "," if name.endswith(".csv") else "\t")
    table = readers.read_labelled_file(path)
    assert (table.texts, table.labels) == (TEXTS_WITH_BREAKS, labels)


def test_jsonl_with_raw_separators_inside_strings_and_crlf_endings(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "a\u2028b\x85c", "label": "x"}\r\n'
                                      '{"text": "d\u2029e", "label": "y"}\r\n')
    table = readers.read_labelled_file(path)
    assert (table.texts, table.labels) == (["a\u2028b\x85c", "d\u2029e"], ["x", "y"])


def test_jsonl_with_lone_carriage_returns_says_so(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": "x"}\r{"text": "b", "label": "y"}\r')
    with pytest.raises(DataError) as error:
        readers.read_labelled_file(path)
    assert str(error.value) == (f"{path}:1: not valid JSON (Extra data at column 29); the line holds a "
                                r"carriage return (\r): JSON Lines lines end with \n or \r\n")


@pytest.mark.parametrize("name", ["a.csv", "a.tsv"])
def test_a_one_megabyte_text_reads_and_the_csv_limit_is_restored(tmp_path, name):
    text = ("好" + "word " * 7) * 2**15  # 1 179 648 characters, 9 x csv's default field limit
    assert len(text) > 2**20
    path = write_table(tmp_path / name, [text, "short"], ["pos", "neg"],
                       "," if name.endswith(".csv") else "\t")
    limit = csv.field_size_limit()
    table = readers.read_labelled_file(path)
    assert table.texts == [text, "short"]
    assert csv.field_size_limit() == limit  # no process-wide side effect


@pytest.mark.parametrize("line, message", [
    ('{"text": 5, "label": "x"}', "1: field 'text': expected a string, got a number"),
    ('{"text": ["a"], "label": "x"}', "1: field 'text': expected a string, got an array"),
    ('{"text": null, "label": "x"}', "1: field 'text': empty text"),
    ('{"text": "a", "label": {"b": 1}}',
     "1: field 'label': expected a string or a number, got an object"),
    ('{"text": "a", "label": ' + "1" * 5000 + "}", "1: not valid JSON (a number too long to read)"),
    ("[" * 100_000 + "]" * 100_000, "1: not valid JSON (nested too deeply)"),
], ids=["number-text", "array-text", "null-text", "object-label", "long-number",
        "deep-nesting"])
def test_jsonl_values_of_the_wrong_type_are_one_line_errors(tmp_path, line, message):
    path = write(tmp_path, "a.jsonl", line + "\n")
    with pytest.raises(DataError) as error:
        readers.read_labelled_file(path)
    assert str(error.value) == f"{path}:{message}"


def test_numeric_json_labels_are_read_as_strings(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    assert readers.read_labelled_file(path).labels == ["1", "0"]


def test_a_column_named_twice_in_the_header_is_an_error(tmp_path):
    path = write(tmp_path, "a.csv", "text,label,text\na,pos,b\n")
    with pytest.raises(DataError) as error:
        readers.read_labelled_file(path)
    assert str(error.value) == f"{path}:1: column 'text' appears 2 times in the header"


def test_check_label_count_needs_two_labels():
    readers.check_label_count(["pos", "neg", "pos"], "train.csv")
    with pytest.raises(DataError) as error:
        readers.check_label_count(["pos", "pos", "pos"], "train.csv")
    assert str(error.value) == "train.csv: needs at least two labels, found only 'pos' (3 rows)"
    with pytest.raises(DataError, match=r"^train\.csv: needs at least two labels, found no rows$"):
        readers.check_label_count([], "train.csv")


def test_a_validation_fraction_that_rounds_to_no_rows_is_an_error():
    # 0.1 of 4 rows of each label rounds to 0 rows per label.
    texts, labels = [f"t{i}" for i in range(8)], ["pos", "neg"] * 4
    with pytest.raises(DataError) as error:
        readers.stratified_split(texts, labels, (0.8, 0.1, 0.1), source="train.csv")
    assert str(error.value) == (
        "train.csv: the validation fraction 0.1 of 8 rows rounds to no rows (it is taken per "
        "label); use more data, a larger --val-fraction or --val-data")
    # No validation wanted, or enough rows: no error.
    assert readers.stratified_split(texts, labels, (0.9, 0.0, 0.1))[1] == ([], [])
    assert len(readers.stratified_split(texts, labels, (0.5, 0.25, 0.25))[1][0]) == 2
    readers.check_validation_split(1, 0.1, 8)


def test_a_limit_reads_no_further_than_its_rows(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
                                      "not json at all\n")
    table = readers.read_labelled_file(path, limit=2)
    assert (table.texts, table.labels) == (["a", "b"], ["x", "y"])
    with pytest.raises(DataError, match=r"a\.jsonl:3: not valid JSON"):
        readers.read_labelled_file(path)


def test_a_reader_left_open_does_not_block_another(tmp_path):
    """Evaluation reads a held-out sample while it streams its own file: in one thread."""
    import threading

    path = write_table(tmp_path / "a.csv", [f"text {i}" for i in range(3000)], ["x"] * 3000, ",")
    first = readers.iter_labelled_rows(path)
    assert next(first)[1] == "text 0"
    done = []
    reader = threading.Thread(target=lambda: done.append(readers.read_labelled_file(path)),
                              daemon=True)
    reader.start()
    reader.join(20)
    assert done and len(done[0].texts) == 3000, "the second reader waited for the first"
    assert [text for _, text, _ in first][-1] == "text 2999"
