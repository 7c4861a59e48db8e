"""Greedy and beam search on a decoder whose probabilities are known."""

import numpy as np

from lstm_text.decoding import beam_decode, greedy_decode, log_softmax

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
