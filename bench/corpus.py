"""A seeded, tweet-like labelled CSV of any size, written in a stream.

Usage: python bench/corpus.py OUT.csv --rows 1000000 [--seed 0]

Writes `text,label` rows (labels positive, negative, neutral) of 5 to 25 words from a
fixed vocabulary (60 common English words and 3 000 made-up words, Zipf-distributed),
with sentiment words whose polarity follows the label, `@airline` mentions, a comma in
about one text in twenty (so the CSV quotes it) and a double quote in one in two hundred.
About 3 % of the rows repeat an earlier row exactly (2 % a row of the same block, 1 % one
of 200 "viral" texts) and 0.05 % repeat one of 20 of those viral texts under another
label, so a reader's de-duplication and conflict handling have work to do.

Rows are made in blocks of 50 000, each from its own seed `(seed, block)`: memory stays
at one block whatever the size, and the first N rows of a larger corpus are the corpus
of N rows (when N is a multiple of the block size). One million rows are about 100 MB.
"""

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

LABELS = ("negative", "neutral", "positive")
LABEL_SHARES = (0.5, 0.3, 0.2)  # roughly the airline tweets' shares
BLOCK_ROWS = 50_000
WORDS_PER_TEXT = (5, 25)
COMMON = ("the to i a you for on my and is in it of flight at me was your with be this "
          "that not have are no just get can so we but now an they plane when time will "
          "from what all out do service how been today still customer gate bag help one "
          "crew seat back us").split()
POSITIVE = ("great love thanks awesome amazing good best happy excellent nice wonderful "
            "perfect fantastic appreciate friendly helpful smooth comfortable enjoyed glad").split()
NEGATIVE = ("delayed cancelled worst terrible bad rude lost hate awful never disappointed "
            "horrible late broken waiting stuck fail annoyed useless poor").split()
MENTIONS = ("@united @usairways @americanair @southwestair @jetblue @virginamerica "
            "@delta @alaskaair @spiritairlines @hawaiianair").split()
SYLLABLES = ("ka lo mi ne ru ta po se di fa gu be zo va ni re mo la ki tu "
             "pe sa do ri ga hu jo ce ly wa").split()
MADE_UP_WORDS = 3_000
VIRAL_TEXTS = 200
CONFLICTED_TEXTS = 20  # the viral texts that also appear under other labels
# Per row: an exact copy of an earlier row of its block, of a viral text, or a viral text
# under another label.
COPY_SHARE, VIRAL_SHARE, CONFLICT_SHARE = 0.02, 0.01, 0.0005
# Per word of a positive or negative text (neutral: NEUTRAL_SENTIMENT): a sentiment word,
# of the label's polarity with probability ON_POLARITY.
SENTIMENT_SHARE, NEUTRAL_SENTIMENT, ON_POLARITY = 0.15, 0.03, 0.8


def vocabulary(seed=0):
    """The common words then MADE_UP_WORDS distinct made-up words, the same for a seed."""
    rng = np.random.default_rng([seed, 1 << 20])
    words, seen = list(COMMON), set(COMMON) | set(POSITIVE) | set(NEGATIVE)
    while len(words) < len(COMMON) + MADE_UP_WORDS:
        word = "".join(rng.choice(SYLLABLES, size=rng.integers(2, 5)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _texts(rng, labels, words, word_p):
    """One text per label id: Zipf words, sentiment words by label, mentions, punctuation."""
    lengths = rng.integers(WORDS_PER_TEXT[0], WORDS_PER_TEXT[1] + 1, size=len(labels))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    row_of = np.repeat(np.arange(len(labels)), lengths)
    token_label = labels[row_of]
    ids = rng.choice(len(words), size=int(ends[-1]), p=word_p)
    tokens = np.asarray(words, dtype=object)[ids]

    share = np.where(token_label == LABELS.index("neutral"), NEUTRAL_SENTIMENT, SENTIMENT_SHARE)
    sentiment = rng.random(len(tokens)) < share
    # Neutral texts' sentiment words are of either polarity.
    positive = np.where(token_label == LABELS.index("positive"), True,
                        np.where(token_label == LABELS.index("negative"), False,
                                 rng.random(len(tokens)) < 0.5))
    positive = np.where(rng.random(len(tokens)) < ON_POLARITY, positive, ~positive)
    picks = rng.integers(0, len(POSITIVE), size=len(tokens))
    polar = np.where(positive, np.asarray(POSITIVE, dtype=object)[picks % len(POSITIVE)],
                     np.asarray(NEGATIVE, dtype=object)[picks % len(NEGATIVE)])
    tokens = np.where(sentiment, polar, tokens)

    mention = rng.random(len(labels)) < 0.3
    tokens[starts[mention]] = np.asarray(MENTIONS, dtype=object)[
        rng.integers(0, len(MENTIONS), size=int(mention.sum()))]
    # A comma after a word that is not the text's last: the CSV writer quotes the field.
    comma_rows = np.flatnonzero(rng.random(len(labels)) < 0.05)
    comma_at = starts[comma_rows] + (rng.random(len(comma_rows)) * (lengths[comma_rows] - 1)).astype(int)
    tokens[comma_at] = tokens[comma_at] + ","
    quote_rows = np.flatnonzero(rng.random(len(labels)) < 0.005)
    tokens[ends[quote_rows] - 1] = '"' + tokens[ends[quote_rows] - 1] + '"'

    tokens = tokens.tolist()
    return [" ".join(tokens[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]


def _zipf(n, exponent=1.0):
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def blocks(rows, seed=0, block_rows=BLOCK_ROWS):
    """Yields `(texts, label_names, counts)` blocks that together make `rows` rows.

    `counts` has the block's `copies` (exact repeats of an earlier row), `viral` (exact
    repeats of a viral text, whose first occurrence may be in any block) and `conflicts`
    (a viral text under another label).
    """
    words = vocabulary(seed)
    word_p = _zipf(len(words))
    viral_rng = np.random.default_rng([seed, 1 << 21])
    viral_labels = viral_rng.choice(len(LABELS), size=VIRAL_TEXTS, p=LABEL_SHARES)
    viral_texts = _texts(viral_rng, viral_labels, words, word_p)
    for block, start in enumerate(range(0, rows, block_rows)):
        size = min(block_rows, rows - start)
        rng = np.random.default_rng([seed, block])
        labels = rng.choice(len(LABELS), size=size, p=LABEL_SHARES)
        texts = _texts(rng, labels, words, word_p)
        kind = rng.random(size)
        pick = rng.integers(0, VIRAL_TEXTS, size=size)
        counts = dict(copies=0, viral=0, conflicts=0)
        for i in np.flatnonzero(kind < COPY_SHARE + VIRAL_SHARE + CONFLICT_SHARE).tolist():
            if kind[i] < CONFLICT_SHARE:
                source = pick[i] % CONFLICTED_TEXTS
                texts[i] = viral_texts[source]
                labels[i] = (viral_labels[source] + 1 + (kind[i] < CONFLICT_SHARE / 2)) % 3
                counts["conflicts"] += 1
            elif kind[i] < CONFLICT_SHARE + VIRAL_SHARE:
                texts[i], labels[i] = viral_texts[pick[i]], viral_labels[pick[i]]
                counts["viral"] += 1
            elif i > 0:
                source = int(rng.integers(0, i))
                texts[i], labels[i] = texts[source], labels[source]
                counts["copies"] += 1
        yield texts, [LABELS[label] for label in labels.tolist()], counts


def write_corpus(path, rows, seed=0):
    """Writes the corpus of `rows` rows and `seed` to `path` (through `path`.partial).

    Args:
        path: the CSV file to write (header `text,label`).
        rows: how many data rows.
        seed: the generator's seed; the same seed and size give the same bytes.

    Returns:
        A dict: `rows`, `bytes`, `seconds`, and the summed `copies`, `viral`, `conflicts`.

    Example:
        >>> write_corpus("/tmp/tweets.csv", 1000)["rows"]
        1000
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    start = time.perf_counter()
    totals = dict(copies=0, viral=0, conflicts=0)
    with open(partial, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(("text", "label"))
        for texts, labels, counts in blocks(rows, seed):
            writer.writerows(zip(texts, labels))
            for key, value in counts.items():
                totals[key] += value
    os.replace(partial, path)  # a cached corpus is never a half-written one
    return dict(rows=rows, bytes=path.stat().st_size, seconds=time.perf_counter() - start,
                **totals)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument("--rows", type=int, default=100_000, help="data rows (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main():
    args = build_parser().parse_args()
    if args.rows < 1:
        raise SystemExit("--rows: at least 1")
    stats = write_corpus(args.out, args.rows, args.seed)
    print(f"wrote {stats['rows']} rows ({stats['bytes'] / 1e6:.1f} MB) to {args.out} in "
          f"{stats['seconds']:.1f} s; repeats: {stats['copies']} in-block, {stats['viral']} "
          f"viral, {stats['conflicts']} under another label")


if __name__ == "__main__":
    main()
