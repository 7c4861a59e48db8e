r"""Sentence pairs for translation: the Tatoeba/Anki TSV format (`source<TAB>target[<TAB>…]`).

Read through `keras_lstm.data.rows.RowReader` (format "pairs"): a line ends
at "\n" ("\r\n" and stray "\r"s before the "\n" are accepted); U+2028,
U+0085, \x0b and the other characters `str.splitlines()` would break at are
text. The format has no quoting, so a sentence cannot hold a tab or a line
break; a "\r" inside a sentence is reported as a bad line, because it is
almost always a file saved with classic-Mac "\r" line endings, which would
otherwise be read as one garbled pair. Each side is stripped of surrounding
whitespace. A bad line is one `DataError`, `FILE:LINE: problem`, unless
`skip_bad_rows` counts and skips it.
"""

import dataclasses
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import DataError
from keras_lstm.data import rows

__all__ = ["SentencePairs", "pair_length", "read_pairs", "split_by_source", "unknown_token_share"]


@dataclasses.dataclass
class SentencePairs:
    """Pairs read from a file, with what was dropped on the way."""

    sources: list[str]
    targets: list[str]
    path: str = ""
    read: int = 0
    bad_rows: int = 0
    first_bad: str | None = None
    duplicates: int = 0
    too_long: int = 0


def pair_length(text):
    """Length used by the filter: CJK characters count one each, other words one each."""
    from lstm_text import PyTokenizer

    return len(PyTokenizer(lowercase=False).tokenize(text))


def read_pairs(path, reverse=False, skip_bad_rows=False, max_length=None):
    """Reads tab-separated sentence pairs; extra columns (e.g. attribution) are ignored.

    Args:
        path: The file (UTF-8).
        reverse: Swap the columns (translate the second language into the first).
        skip_bad_rows: Count and skip malformed lines instead of stopping.
        max_length: Drop pairs with a side longer than this many tokens.

    Raises:
        DataError: missing file, invalid UTF-8, a line without a tab or with an
            empty side (naming the line), no pairs.
    """
    path = Path(path)
    pairs = SentencePairs([], [], str(path))
    seen, bad_pairs = set(), 0
    with rows.open_binary(path) as stream:
        reader = rows.RowReader(stream, "pairs", str(path), skip_bad_rows=skip_bad_rows)
        for number, columns in reader:
            pairs.read += 1
            problem = None
            if len(columns) < 2:
                problem = "no tab (expected source<TAB>target)"
            elif not columns[0].strip() or not columns[1].strip():
                problem = "empty " + ("source" if not columns[0].strip() else "target")
            elif "\r" in columns[0].strip() or "\r" in columns[1].strip():
                problem = ("a carriage return (\\r) inside a sentence (lines end with \\n "
                           "or \\r\\n)")
            if problem:
                reader.bad(number, problem)
                bad_pairs += 1
                continue
            source, target = columns[0].strip(), columns[1].strip()
            if reverse:
                source, target = target, source
            if (source, target) in seen:
                pairs.duplicates += 1
                continue
            seen.add((source, target))
            if max_length and max(pair_length(source), pair_length(target)) > max_length:
                pairs.too_long += 1
                continue
            pairs.sources.append(source)
            pairs.targets.append(target)
    pairs.bad_rows, pairs.first_bad = reader.skipped, reader.first_skipped
    pairs.read += reader.skipped - bad_pairs  # lines of invalid UTF-8 never became rows
    if not pairs.sources:
        raise DataError(f"{path}: no sentence pairs")
    return pairs


def unknown_token_share(texts, tokenize, vocabulary):
    """The share of the tokens of `texts` that `vocabulary` does not hold.

    A high share on data to evaluate or translate means the wrong column or
    the wrong language (e.g. the sides swapped: `--reverse`). TensorFlow-free.

    Args:
        texts: Strings, e.g. the source sentences (a sample is enough).
        tokenize: A function from a string to its tokens, e.g.
            `lstm_text.PyTokenizer(config).tokenize` with the run's config.
        vocabulary: An `lstm_text.Vocabulary`, or any collection of tokens.
            Its padding and OOV entries ("[PAD]", "[UNK]") never count as known.

    Returns:
        A float in [0, 1]: unknown tokens / all tokens; 0.0 if there are no tokens.

    Example:

    >>> from lstm_text import Vocabulary
    >>> vocabulary = Vocabulary.build([["hello", "world"]])
    >>> unknown_token_share(["hello there", "world"], str.split, vocabulary)
    0.3333333333333333
    """
    from lstm_text.vocabulary import OOV, PAD

    known = getattr(vocabulary, "index", vocabulary)
    total = unknown = 0
    for text in texts:
        for token in tokenize(text):
            total += 1
            if token in (PAD, OOV) or token not in known:
                unknown += 1
    return unknown / total if total else 0.0


def split_by_source(sources, targets, fractions=(0.8, 0.1, 0.1), seed=0):
    """Train/validation/test split in which no source sentence is in two splits.

    Returns:
        Three `(sources, targets)` pairs of lists, each in a seeded random order.
    """
    unique = sorted(set(sources))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_val = int(round(fractions[1] * len(unique)))
    n_test = int(round(fractions[2] * len(unique)))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[unique[index]] = 1 if rank < n_val else 2 if rank < n_val + n_test else 0
    members = [[], [], []]
    for index, source in enumerate(sources):
        members[split_of[source]].append(index)
    # Each split in a seeded random order, not file order (Tatoeba files are sorted
    # by length, and the first pairs of a split serve as samples).
    rng = np.random.default_rng(seed + 1)
    parts = []
    for indices in members:
        indices = rng.permutation(np.asarray(indices, dtype=np.int64))
        parts.append(([sources[i] for i in indices], [targets[i] for i in indices]))
    return parts
