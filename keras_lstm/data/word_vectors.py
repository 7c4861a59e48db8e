"""Pre-trained word vectors (GloVe, word2vec or fastText text files) for the embedding layer.

The notes' second step, "word vectors", can start from vectors learned on far
more text than a labelled set holds. Nothing is downloaded: the user gives a
file they have.
"""

import dataclasses
import unicodedata
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import DataError
from keras_lstm.data import rows

__all__ = ["WordVectors", "read_word_vectors"]


@dataclasses.dataclass
class WordVectors:
    """The vectors of a vocabulary's tokens, as read from `path`.

    Attributes:
        matrix: float32 `(len(vocabulary), dim)`; zeros where `found` is False.
        found: bool `(len(vocabulary),)`: the token has a vector in the file.
        path: The file.
    """

    matrix: np.ndarray
    found: np.ndarray
    path: str

    def initialise(self, embedding):
        """Copies the found rows into a built `keras.layers.Embedding`; other rows keep theirs."""
        weights = np.asarray(embedding.embeddings)
        if weights.shape != self.matrix.shape:
            raise ValueError(f"embedding is {weights.shape}, vectors are {self.matrix.shape}")
        embedding.embeddings.assign(np.where(self.found[:, None], self.matrix, weights))


def _normalise(word):
    # The tokenizer's own normalisation, so that "Good" in a cased file finds "good".
    return unicodedata.normalize("NFKC", word).lower()


def _is_header(fields):
    return len(fields) == 2 and all(field.isascii() and field.isdigit() for field in fields)


def read_word_vectors(path, vocabulary, dim):
    """Reads the vectors of `vocabulary`'s tokens from a text file.

    The format is GloVe's: a word, then its `dim` numbers, separated by spaces,
    one word per line; word2vec and fastText `.vec` text files, whose first
    line is "<count> <dim>", are read too. Words are matched to tokens after
    NFKC normalisation and lower-casing, as the tokenizer does; the first
    vector of a token wins (these files list frequent words first). The file
    is streamed, and only the vocabulary's vectors are kept.

    Args:
        path: The vectors file (UTF-8).
        vocabulary: A `lstm_text.Vocabulary`.
        dim: The embedding width the vectors must have.

    Returns:
        `WordVectors`.

    Raises:
        DataError: missing file, invalid UTF-8, a line that is not a word and
            `dim` numbers, a number that is not finite in float32, a width
            other than `dim`, or no token found; the message names the file
            and the line. Lines end at a line feed only, so a word may hold
            U+2028, U+0085, a form feed and the like.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: word vectors file not found")
    matrix = np.zeros((len(vocabulary), dim), np.float32)
    found = np.zeros(len(vocabulary), bool)
    lines = 0
    # Lines end at "\n" only (`keras_lstm.data.rows`): a word may hold U+2028, U+0085
    # or \x0c, which text mode or str.splitlines() would take for line breaks.
    with rows.open_binary(path) as file:
        for number, line in rows.RowReader(file, "lines", str(path), hint=""):
            # Fields are separated by spaces (U+0020) only; fastText ends lines with one.
            line = line.rstrip(_LINE_END)
            if not line.strip():
                continue
            if number == 1:
                fields = line.split(" ")
                if _is_header(fields):
                    if int(fields[1]) != dim:
                        raise rows.line_error(path, number, _width_message(int(fields[1]), dim))
                    continue
                if len(fields) - 1 != dim:
                    raise rows.line_error(path, number, _width_message(len(fields) - 1, dim)
                                          + _carriage_return_hint(line))
            # Split from the right: a few GloVe words contain spaces.
            fields = line.rsplit(" ", dim)
            if len(fields) != dim + 1 or not fields[0]:
                raise rows.line_error(path, number, f"expected a word and {dim} numbers "
                                      f"separated by spaces, got {len(line.split(' ')) - 1} "
                                      "numbers" + _carriage_return_hint(line))
            lines += 1
            index = vocabulary.index.get(_normalise(fields[0]))
            if index is None or found[index] or index < 2:  # PAD and OOV keep their own rows
                continue
            try:
                with np.errstate(over="ignore"):  # beyond float32 is reported just below
                    vector = np.asarray(fields[1:], np.float32)
            except ValueError:
                bad = next((f for f in fields[1:] if not _is_number(f)), fields[1])
                raise rows.line_error(path, number, f"{bad!r} is not a number"
                                      + _carriage_return_hint(line)) from None
            if not np.isfinite(vector).all():
                # "nan", "inf" or a number beyond float32 would poison every gradient.
                bad = fields[1 + int(np.flatnonzero(~np.isfinite(vector))[0])]
                raise rows.line_error(path, number, f"{bad!r} is not a finite float32 number")
            matrix[index] = vector
            found[index] = True
    if not lines:
        raise DataError(f"{path}: no word vectors in the file")
    if not found.any():
        raise DataError(f"{path}: none of the {len(vocabulary) - 2} vocabulary tokens has a "
                        f"vector among its {lines} words; are they for this language?")
    return WordVectors(matrix=matrix, found=found, path=str(path))


_LINE_END = " \t\r\n"


def _carriage_return_hint(line):
    # A file saved with classic-Mac "\r" line endings reads as one long line.
    return ("; the line holds a carriage return (\\r): lines end with \\n or \\r\\n"
            if "\r" in line else "")


def _width_message(width, dim):
    return f"the vectors have {width} numbers, the embedding {dim}; set --embedding-dim {width}"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
