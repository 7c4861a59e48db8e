"""Greedy and beam search on a decoder whose probabilities are known."""

import numpy as np
import pytest

from lstm_text.decoding import (
    beam_decode,
    greedy_decode,
    log_softmax,
    resolve_decoding,
    top_candidates,
    translate_batch,
)

START, END = 1, 2


def table_step(table):
    """A decoder whose next-token distribution depends only on the previous token."""
    log_table = log_softmax(np.log(np.asarray(table, dtype=np.float64)))

    def step(tokens, h, c):
        return log_table[tokens], h, c

    return step


# From START: token 3 (0.6) or 4 (0.4). After 3: END 0.35 / 5 0.35 / 6 0.3 ... the greedy
# path 3 → END has probability 0.6 * 0.35 = 0.21, the better path 4 → END 0.4 * 0.9 = 0.36.
TABLE = np.full((7, 7), 1e-6)
TABLE[START, 3], TABLE[START, 4] = 0.6, 0.4
TABLE[3, END], TABLE[3, 5], TABLE[3, 6] = 0.35, 0.34, 0.31
TABLE[4, END], TABLE[4, 5] = 0.9, 0.1
TABLE[5, END] = TABLE[6, END] = 1.0
TABLE[END, END] = 1.0


def states(batch):
    return np.zeros((batch, 2)), np.zeros((batch, 2))


def test_greedy_takes_the_locally_best_token_and_stops_at_end():
    assert greedy_decode(table_step(TABLE), *states(2), START, END, max_length=10) == [[3], [3]]


def test_beam_finds_the_more_probable_sentence():
    result = beam_decode(table_step(TABLE), *states(2), START, END, max_length=10, beam_size=2,
                         length_penalty=0.0)
    assert result == [[4], [4]]


def test_beam_of_one_is_greedy():
    assert beam_decode(table_step(TABLE), *states(1), START, END, max_length=10, beam_size=1,
                       length_penalty=0.0) == [[3]]


def test_max_length_stops_a_sentence_without_end():
    loop = np.full((7, 7), 1e-6)
    loop[:, 5] = 1.0
    assert greedy_decode(table_step(loop), *states(1), START, END, max_length=4) == [[5] * 4]
    assert beam_decode(table_step(loop), *states(1), START, END, max_length=4,
                       beam_size=3) == [[5] * 4]


# Length penalty: START → 3 (0.51) → END (0.5) is the more probable sentence, 0.255; START →
# 4 (0.49) → 5 (0.7) → END (0.7) has 0.2401. Ranked by log P / ((5 + len) / 6) ** alpha, with
# len counting END: alpha 0 keeps [3] (-1.366 > -1.427); alpha 0.6 prefers [4, 5] (-1.201 >
# -1.245), and alpha 1.0 too (-1.070 > -1.171). The other finished sentences, [3, 5] and
# [4, 6], score below both at every alpha.
PENALTY_TABLE = np.full((7, 7), 1e-9)
PENALTY_TABLE[START, 3], PENALTY_TABLE[START, 4] = 0.51, 0.49
PENALTY_TABLE[3, END], PENALTY_TABLE[3, 5] = 0.5, 0.5
PENALTY_TABLE[4, 5], PENALTY_TABLE[4, 6] = 0.7, 0.3
PENALTY_TABLE[5, END], PENALTY_TABLE[5, 6] = 0.7, 0.3
PENALTY_TABLE[6, END] = PENALTY_TABLE[END, END] = 1.0


@pytest.mark.parametrize("length_penalty, expected", [(0.0, [3]), (0.6, [4, 5]), (1.0, [4, 5])])
def test_length_penalty_favours_the_longer_sentence_as_documented(length_penalty, expected):
    step = table_step(PENALTY_TABLE)
    assert beam_decode(step, *states(1), START, END, max_length=10, beam_size=2,
                       length_penalty=length_penalty) == [expected]
    # Greedy has no length penalty: the locally best first token, then END.
    assert greedy_decode(step, *states(1), START, END, max_length=10) == [[3]]


class Target:
    """The target side's preprocessor, as `translate_batch` uses it: ids → text."""

    start_id, end_id = START, END

    def decode(self, ids):
        return " ".join(map(str, ids))


def table_translator(table):
    """`translate_batch`'s encoder and decoder around `table_step` (the source is ignored)."""
    step = table_step(table)

    def encoder(source):
        batch = len(source)
        return np.zeros((batch, 1, 2), np.float32), *states(batch)

    def decoder(tokens, h, c, outputs, mask):
        log_probs, h, c = step(tokens[:, 0], h, c)
        return log_probs, h, c

    return lambda texts, **decoding: translate_batch(
        texts, lambda t: np.ones((len(t), 1), np.int32), encoder, decoder, Target(),
        max_length=10, **decoding)


def test_translate_batch_defaults_to_the_measured_decoding(monkeypatch):
    from keras_lstm import presets
    from lstm_text import decoding

    assert decoding.DECODING is presets.DECODING  # one constant, read at each call
    assert resolve_decoding() == (presets.DECODING["beam"], presets.DECODING["length_penalty"])
    assert resolve_decoding(1, 0.0) == (1, 0.0)
    translate = table_translator(PENALTY_TABLE)
    # beam 1: greedy_decode's output; the length penalty does not apply.
    assert translate(["a", "b"], beam=1) == ["3", "3"]
    assert translate(["a"], beam=1, length_penalty=1.0) == ["3"]
    assert translate(["a"], beam=2, length_penalty=0.0) == ["3"]
    assert translate(["a"], beam=2, length_penalty=1.0) == ["4 5"]
    # The default is whatever DECODING says, for beam and length penalty alike.
    monkeypatch.setitem(presets.DECODING, "beam", 2)
    for penalty, expected in ((0.0, "3"), (1.0, "4 5")):
        monkeypatch.setitem(presets.DECODING, "length_penalty", penalty)
        assert translate(["a"]) == [expected]
    monkeypatch.setitem(presets.DECODING, "beam", 1)
    assert translate(["a"]) == ["3"]


def test_top_candidates_are_a_full_sorts_first_columns():
    scores = np.random.default_rng(0).normal(size=(5, 40))
    for count in (1, 7, 40, 80):
        np.testing.assert_array_equal(top_candidates(scores, count),
                                      np.argsort(-scores, axis=1)[:, :count])
