"""The tf.data pipeline: ids, padding, bucketing, determinism, and its pure-Python twin."""

import numpy as np

from keras_lstm.data.default_reviews import load_default_reviews
from keras_lstm.data.pipeline import encode_texts, make_dataset
from keras_lstm.text import PyTokenizer, TextTokenizer, Vocabulary

TEXTS = ["good film", "不好", "", "bad bad film film film", "ok !"] * 8
LABELS = [0, 1, 0, 1, 0] * 8


def build():
    vocab = Vocabulary.build([PyTokenizer().tokenize(t) for t in TEXTS])
    return TextTokenizer(), vocab


def batches(seed, max_length=3):
    tokenizer, vocab = build()
    dataset = make_dataset(TEXTS, LABELS, tokenizer, vocab, batch_size=4, max_length=max_length,
                           seed=seed)
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_batches_are_right_padded_cut_and_cover_every_example():
    got = batches(seed=1)
    assert sum(len(y) for _, y in got) == len(TEXTS)
    tokenizer, vocab = build()
    expected = {tuple(row[row > 0]) for row in encode_texts(TEXTS, tokenizer, vocab, 3)}
    for ids, _ in got:
        assert ids.dtype == np.int32 and ids.shape[1] <= 3
        for row in ids:
            length = int((row > 0).sum())
            assert np.all(row[:length] > 0) and np.all(row[length:] == 0)  # right-padded
            assert tuple(row[:length]) in expected
        assert (ids > 0).sum(axis=1).max() == ids.shape[1]  # padded to the longest only


def test_seed_fixes_the_order_and_the_epoch_reshuffles():
    first, again, other = batches(1), batches(1), batches(2)
    flat = lambda bs: [tuple(r) for x, _ in bs for r in x]  # noqa: E731
    assert flat(first) == flat(again)
    assert flat(first) != flat(other)


def test_python_encoding_equals_pipeline_encoding_on_default_texts():
    texts, _ = load_default_reviews()
    texts = texts[:3000]
    vocab = Vocabulary.build([PyTokenizer().tokenize(t) for t in texts], max_size=3000)
    np.testing.assert_array_equal(encode_texts(texts, TextTokenizer(), vocab, 50),
                                  encode_texts(texts, PyTokenizer(), vocab, 50))


def test_empty_text_becomes_one_oov_token():
    tokenizer, vocab = build()
    assert encode_texts(["", "   "], tokenizer, vocab, 5).tolist() == [[1], [1]]


def test_autotuning_is_off_and_changes_no_batch(monkeypatch):
    """The pipelines run without tf.data's autotuner (bench/input_pipeline.py); same batches."""
    from keras_lstm.data import pipeline
    from keras_lstm.translation import make_pair_dataset

    tokenizer, vocab = build()
    dataset = make_dataset(TEXTS, LABELS, tokenizer, vocab, batch_size=4, seed=1)
    pairs = make_pair_dataset([[3, 4, 5], [6, 7], [8]] * 4, [[1, 9, 2], [1, 2]] * 6,
                              batch_size=2, shuffle=True, seed=1)
    assert dataset.options().autotune.enabled is False
    assert pairs.options().autotune.enabled is False
    monkeypatch.setattr(pipeline, "AUTOTUNE_INPUT", True)
    assert make_dataset(TEXTS, LABELS, tokenizer, vocab, batch_size=4,
                        seed=1).options().autotune.enabled is not False
    flat = lambda bs: [tuple(r) for x, _ in bs for r in np.asarray(x)]  # noqa: E731
    assert flat(dataset) == flat(batches(seed=1, max_length=100))
