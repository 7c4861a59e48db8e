"""Pre-trained word vectors: reading GloVe/word2vec text files and starting the embedding from them."""

import json

import numpy as np
import pytest

from keras_lstm.app.cli import main
from keras_lstm.core.errors import DataError
from keras_lstm.data.word_vectors import read_word_vectors
from lstm_text import Vocabulary
from tests.helpers import train_args

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

VOCABULARY = Vocabulary.build([["good", "bad", "film", "plot"]], min_count=1)


def write(tmp_path, text, name="vectors.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("header", ["", "5 2\n"])
def test_glove_and_word2vec_files_give_the_vocabulary_rows(tmp_path, header):
    path = write(tmp_path, header + "Good 1 2\ngood 3 4\nunseen 5 6\nbad -7 8.5e-1\n"
                 "[UNK] 9 9\n")
    vectors = read_word_vectors(path, VOCABULARY, 2)
    expected = np.zeros((len(VOCABULARY), 2), np.float32)
    # "Good" is normalised to the token "good" and, being first, wins over "good";
    # the OOV row is never taken from the file.
    expected[VOCABULARY.index["good"]] = [1, 2]
    expected[VOCABULARY.index["bad"]] = [-7, 0.85]
    np.testing.assert_array_equal(vectors.matrix, expected)
    assert [VOCABULARY.tokens[i] for i in np.flatnonzero(vectors.found)] == ["bad", "good"]


@pytest.mark.parametrize("text, message", [
    ("good 1 2 3\n", "vectors.txt:1: the vectors have 3 numbers, the embedding 2; "
                     "set --embedding-dim 3"),
    ("9 3\ngood 1 2 3\n", "vectors.txt:1: the vectors have 3 numbers, the embedding 2"),
    ("good 1 2\nbad 1\n", "vectors.txt:2: expected a word and 2 numbers separated by "
                          "spaces, got 1 numbers"),
    ("good 1 2\nbad 1 x\n", "vectors.txt:2: 'x' is not a number"),
    ("other 1 2\n", "vectors.txt: none of the 4 vocabulary tokens has a vector among its 1 "
                    "words"),
    ("\n\n", "vectors.txt: no word vectors in the file"),
])
def test_bad_vectors_files_name_the_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError) as error:
        read_word_vectors(write(tmp_path, text), VOCABULARY, 2)
    assert message in str(error.value)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e",
                                       "\x0b", "\x0c"])
def test_words_holding_splitlines_breaks_are_one_line(tmp_path, separator):
    """Lines end at \n only: a word with U+2028 (or the like) is one word, even on line 1."""
    path = write(tmp_path, f"a{separator}b 1 2\ngood 3 4\nx{separator} 5 6\nbad 7 8\n")
    vectors = read_word_vectors(path, VOCABULARY, 2)
    np.testing.assert_array_equal(vectors.matrix[VOCABULARY.index["good"]], [3, 4])
    np.testing.assert_array_equal(vectors.matrix[VOCABULARY.index["bad"]], [7, 8])


def test_crlf_endings_and_fasttext_trailing_spaces_are_accepted(tmp_path):
    path = write(tmp_path, "2 2 \r\ngood 1 2 \r\nbad 3 4 \r\n")
    vectors = read_word_vectors(path, VOCABULARY, 2)
    np.testing.assert_array_equal(vectors.matrix[VOCABULARY.index["bad"]], [3, 4])


def test_classic_mac_line_endings_are_named(tmp_path):
    with pytest.raises(DataError) as error:
        read_word_vectors(write(tmp_path, "good 1 2\rbad 3 4\r"), VOCABULARY, 2)
    assert str(error.value).endswith(
        "vectors.txt:1: the vectors have 4 numbers, the embedding 2; set --embedding-dim "
        "4; the line holds a carriage return (\\r): lines end with \\n or \\r\\n")


@pytest.mark.parametrize("number", ["nan", "inf", "-Infinity", "1e39"])
def test_numbers_that_are_not_finite_are_errors(tmp_path, number):
    with pytest.raises(DataError) as error:
        read_word_vectors(write(tmp_path, f"good 1 2\nbad 3 {number}\n"), VOCABULARY, 2)
    assert str(error.value).endswith(
        f"vectors.txt:2: {number!r} is not a finite float32 number")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_bytes(b"good 1 2\nb\xffd 1 2\n")
    with pytest.raises(DataError, match=r"vectors.txt:2: not valid UTF-8"):
        read_word_vectors(path, VOCABULARY, 2)


def test_training_starts_from_the_vectors(tmp_path, small_csv):  # noqa: F811
    """With a learning rate of 1e-30 (0 is refused) the trained embedding is the initial one
    to float32 precision: the file's rows where found."""
    from keras_lstm.runs import load_model

    rng = np.random.default_rng(0)
    words = {"good": rng.normal(size=8), "awful": rng.normal(size=8), "Day": rng.normal(size=8)}
    path = write(tmp_path, "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in words.items()))
    out = tmp_path / "run"
    assert main(train_args(small_csv, out, "--embeddings", str(path), "--learning-rate", "1e-30",
                           "--epochs", "1")) == 0

    vocabulary = Vocabulary.load(out / "vocabulary.txt")
    embedding = load_model(out).get_layer("embedding").get_weights()[0]
    for word, vector in words.items():
        np.testing.assert_allclose(embedding[vocabulary.index[word.lower()]], vector, rtol=1e-6)
    # The rows without a vector keep Keras' small uniform initialisation.
    assert np.abs(embedding[vocabulary.index["film"]]).max() <= 0.05
    config = json.loads((out / "config.json").read_text())
    assert config["word_vectors"] == {"file": str(path), "tokens_found": 3,
                                      "tokens": len(vocabulary) - 2}
    assert config["training"]["embeddings"] == str(path)


def test_cli_reports_a_bad_vectors_file_in_one_line_before_writing(tmp_path, small_csv, capsys):  # noqa: F811
    path = write(tmp_path, "good 1 2\n")
    code = main(train_args(small_csv, tmp_path / "run", "--embeddings", str(path)))
    err = capsys.readouterr().err
    assert code == 2
    assert "vectors.txt:1: the vectors have 2 numbers, the embedding 8; set " \
           "--embedding-dim 2" in err
    # One error line (after the `preset:` message the reporter writes to stderr too).
    assert [line for line in err.splitlines() if "error" in line] == [err.splitlines()[-1]]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
