"""Property tests: any bytes either load or give one one-line DataError; texts round-trip.

Also checks the Hypothesis profiles of tests/conftest.py (derandomized under CI).
"""

import csv
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lstm.core.errors import DataError
from keras_lstm.data.pairs import read_pairs
from keras_lstm.data.readers import read_labelled_file
from tests.helpers import REPO

# Characters that matter to the formats: separators, quotes, JSON syntax, every
# character str.splitlines() breaks at, NUL and a byte-order mark.
SPECIAL = "\u2028\u2029\x85\x1c\x1d\x1e\x1f\x0b\x0c\r\n\t,\"'{}[]:\\ \x00\ufeff"
PIECE = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.sampled_from("abé好1-.e"),
                                   st.characters(exclude_categories=("Cs",))), max_size=10)
# Mostly real line ends; sometimes characters that must not end a line, or none.
LINE_END = st.sampled_from(["\n"] * 6 + ["\r\n", "\r", "\u2028", "\x85", ""])
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | PIECE,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(PIECE, children, max_size=3), max_leaves=6)


@st.composite
def table_bytes(draw, delimiter):
    """A header (usually text and label), rows of random pieces, random line endings."""
    header = draw(st.sampled_from([["text", "label"]] * 3 + [["label", "text", "x"], ["text"],
                                                              ["text", "label", "text"]]))
    # Mostly rows of the header's width, sometimes not.
    width = st.sampled_from([len(header)] * 12 + [1, 2, 3, 4])
    rows = draw(st.lists(width.flatmap(lambda n: st.lists(PIECE, min_size=n, max_size=n)),
                         max_size=5))
    # Quoted as csv does (so that rows usually parse), or left bare.
    quote = draw(st.sampled_from([True, True, False]))
    text = "".join(delimiter.join('"' + f.replace('"', '""') + '"' if quote else f
                                  for f in line) + draw(LINE_END)
                   for line in [header] + rows)
    return text.encode("utf-8")


# Valid JSON syntax that Python's json module still cannot read: an integer beyond
# its 4 300 digits (ValueError) and nesting beyond the recursion limit (RecursionError).
HOSTILE_JSON = st.sampled_from(['{"text": "a", "label": ' + "9" * 4400 + "}",
                                "[" * 5000 + "]" * 5000, '{"a": ' * 5000])


@st.composite
def jsonl_bytes(draw):
    rows = draw(st.lists(st.one_of(
        st.fixed_dictionaries({"text": JSON_VALUE, "label": JSON_VALUE}),
        st.fixed_dictionaries({"text": PIECE, "label": PIECE}),
        st.fixed_dictionaries({"text": PIECE, "label": PIECE}),
        st.fixed_dictionaries({"text": PIECE, "label": st.integers() | st.floats()}),
        JSON_VALUE), max_size=5))
    ascii_only = draw(st.booleans())
    lines = [json.dumps(row, ensure_ascii=ascii_only) + draw(LINE_END) for row in rows]
    if draw(st.integers(0, 3)) == 0:  # a line that is rarely JSON, or hostile JSON
        lines.append(draw(PIECE | HOSTILE_JSON))
    return "".join(lines).encode("utf-8")


@st.composite
def pairs_bytes(draw):
    lines = draw(st.lists(st.lists(PIECE, min_size=1, max_size=3), max_size=6))
    return "".join("\t".join(line) + draw(LINE_END) for line in lines).encode("utf-8")


def with_raw_bytes(strategy):
    """The strategy's files, raw bytes, and its files with a few bytes replaced."""
    @st.composite
    def mutated(draw):
        data = bytearray(draw(strategy))
        for _ in range(draw(st.integers(0, 3))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)

    return st.one_of(strategy, st.binary(max_size=200), mutated())


CONTENT = {
    "a.csv": with_raw_bytes(table_bytes(",")),
    "a.tsv": with_raw_bytes(table_bytes("\t")),
    "a.jsonl": with_raw_bytes(jsonl_bytes()),
    "pairs.tsv": with_raw_bytes(pairs_bytes()),
}


def assert_one_line_data_error(error, path):
    message = str(error)
    assert type(error) is DataError
    assert error.__cause__ is None  # raised `from None`: one error, not a chain
    assert message.startswith(str(path)), message
    assert len(message.splitlines()) == 1 and message == message.strip(), repr(message)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


@pytest.mark.parametrize("name", list(CONTENT))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), reverse=st.booleans(), skip_bad_rows=st.booleans(),
       max_length=st.sampled_from([None, 3]))
@pytest.mark.slow
def test_any_bytes_load_or_raise_one_line_data_error(folder, name, data, reverse,
                                                     skip_bad_rows, max_length):
    content = data.draw(CONTENT[name], label="content")
    path = folder / name
    path.write_bytes(content)
    try:
        if name == "pairs.tsv":
            pairs = read_pairs(path, reverse=reverse, skip_bad_rows=skip_bad_rows,
                               max_length=max_length)
        else:
            table = read_labelled_file(path)
    except DataError as error:
        assert_one_line_data_error(error, path)
        return
    if name == "pairs.tsv":
        assert pairs.sources and len(pairs.sources) == len(pairs.targets)
        for side in pairs.sources + pairs.targets:
            assert side == side.strip() and "\t" not in side and "\n" not in side
    else:
        assert table.texts and len(table.texts) == len(table.labels)
        assert all(isinstance(text, str) and text.strip() for text in table.texts)
        assert all(label == label.strip() and label for label in table.labels)


# Any non-blank Unicode text but NUL, which Python 3.11's csv module refuses.
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               min_size=1, max_size=30).filter(str.strip)
LABEL = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                min_size=1, max_size=8).map(str.strip).filter(bool)


@pytest.mark.parametrize("name", ["a.jsonl", "a.csv", "a.tsv"])
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=6))
def test_any_texts_round_trip(folder, name, rows):
    """What the trainer writes (json.dumps, ensure_ascii=False) or csv writes reads back exactly."""
    texts, labels = map(list, zip(*rows))
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                for t, y in rows), encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file, delimiter="," if name.endswith(".csv") else "\t")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    table = read_labelled_file(path)
    assert (table.texts, table.labels) == (texts, labels)


SIDE = st.text(alphabet=st.characters(exclude_categories=("Cs",),
                                      exclude_characters="\t\n\r"),
               min_size=1, max_size=20).map(str.strip).filter(bool)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(SIDE, SIDE), min_size=1, max_size=6, unique=True))
def test_any_sentence_pairs_round_trip(folder, pairs):
    """As the translation trainer writes splits/*.tsv: f"{source}\\t{target}\\n"."""
    path = folder / "pairs.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    read = read_pairs(path)
    assert list(zip(read.sources, read.targets)) == pairs


def active_profile(**environment):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    code = ("import tests.conftest; from hypothesis import settings; s = settings.default; "
            "print(s.derandomize, s.max_examples, s.deadline, s.database)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env | environment,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()


def test_hypothesis_is_derandomized_under_ci():
    assert active_profile(CI="true") == ["True", "100", "None", "None"]
    assert active_profile(HYPOTHESIS_PROFILE="ci") == ["True", "100", "None", "None"]
    derandomize, _, deadline, database = active_profile()
    assert (derandomize, deadline) == ("False", "None") and database != "None"
