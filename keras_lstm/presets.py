"""Named training recipes: the best settings the benches measured for each kind of data.

`keras-lstm train` starts from a preset, and the flags a user gives override
it field by field. Without `--preset`, the task picks one from the data
(`choose`), and `train` prints which. The demo, the benches and the notebooks
read their settings from here, so the numbers they quote and the defaults a
user gets cannot drift apart.

TensorFlow-free: the CLI reads it to build `--help`.
"""

from lstm_text import decoding

__all__ = ["DECODING", "PRESETS", "STRATEGIES", "get", "is_mostly_cjk", "names"]

# How `keras-lstm train --strategy` spreads the work (`keras_lstm.training.strategy`).
STRATEGIES = ("default", "mirrored", "multi-worker")

PRESETS = {
    "sentiment": {
        # bench/sentiment_quality.py, the embedded reviews: CJK bigrams as tokens,
        # bidirectional, max pooling (84.6 % mean over three splits).
        "reviews-zh": dict(bidirectional=True, pooling="max", cjk_bigrams=True, epochs=6,
                           units=64, embedding_dim=128, vocab_size=60_000, min_count=1,
                           max_length=200, batch_size=64, dropout=0.5),
        # bench/sentiment_quality.py, the airline tweets: with the lexicon prior (VADER's
        # valence beside each word vector) 81.3 % mean accuracy over three splits and 53.2 % /
        # 13.3 % on the English minimal pairs, against 81.1 % and 51.4 % / 10.3 % without; the
        # augmentations, contrast copies and the wide branch did no better (2026-12-03).
        "tweets-en": dict(bidirectional=True, pooling="max", max_length=50, epochs=8,
                          dropout=0.5, units=64, embedding_dim=128, vocab_size=12_000,
                          min_count=1, lexicon=True),
        # The demo's architecture, small: what `keras-lstm demo --fast` and the tests run.
        "fast": dict(bidirectional=True, pooling="max", cjk_bigrams=True, max_examples=3000,
                     epochs=2, units=16, embedding_dim=16, vocab_size=2000, max_length=40,
                     batch_size=32, learning_rate=5e-3),
    },
    "translation": {
        # The embedded CLDR date/number pairs: BLEU about 96 in under a minute.
        "cldr-demo": dict(epochs=8, units=128, embedding_dim=32),
        # bench/translation_quality.py on Tatoeba zh → en: early stopping ended the
        # 25-epoch budget at epoch 17; BLEU 20.4 with beam 4.
        "sentences": dict(units=256, embedding_dim=128, epochs=25, dropout=0.2, max_length=20,
                          patience=3, learning_rate=2e-3, max_output_length=40, attention=True),
        "fast": dict(max_examples=2000, epochs=1, units=16, embedding_dim=16),
    },
}

# The default decoding of a translation model (measured; see lstm_text.decoding).
DECODING = decoding.DECODING


def names(task: str) -> list[str]:
    return list(PRESETS[task])


def get(task: str, name: str) -> dict:
    """The settings of preset `name` of `task` (a copy)."""
    from keras_lstm.core.errors import ConfigError

    if name not in PRESETS[task]:
        raise ConfigError(f"--preset: {task} has no preset {name!r}; expected one of "
                          f"{', '.join(PRESETS[task])}")
    return dict(PRESETS[task][name])


def is_mostly_cjk(texts, threshold=0.3) -> bool:
    """Whether CJK characters are at least `threshold` of the letters of `texts`."""
    from lstm_text.rules import CJK

    cjk = letters = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                cjk += any(a <= ord(ch) <= b for a, b in CJK)
    return letters > 0 and cjk / letters >= threshold
