"""Greedy and beam-search decoding over a one-step decoder (NumPy only, no TensorFlow).

The decoder is any callable `step(tokens, h, c) -> (log_probs, h, c)` on NumPy
arrays (a Keras model, an onnxruntime session or a TFLite interpreter wrapped
by the caller), so every runtime decodes with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lstm_text.preprocessor import Preprocessor

__all__ = [
    "DECODING",
    "beam_decode",
    "greedy_attention",
    "greedy_decode",
    "log_softmax",
    "resolve_decoding",
    "top_candidates",
    "translate_batch",
]

# The default decoding of a translation model everywhere: `keras-lstm predict`, `evaluate`
# and `serve`, and every runtime's `translate`. The best row of bench/decoding.py's table on
# held-out Tatoeba pairs (bench/README.md; why this one: docs/design.md). Greedy decoding is
# `beam=1` (`--beam 1`, `"beam": 1`). `keras_lstm.presets.DECODING` is this constant.
DECODING = {"beam": 4, "length_penalty": 0.6}


def resolve_decoding(beam: int | None = None,
                     length_penalty: float | None = None) -> tuple[int, float]:
    """`(beam, length_penalty)`, each `None` replaced by its `DECODING` default.

    Args:
        beam: Beam size (1: greedy), or `None` for the default.
        length_penalty: GNMT length-penalty exponent, or `None` for the default.

    Returns:
        The `(beam, length_penalty)` to decode with.

    Example:

    >>> resolve_decoding(1)
    (1, 0.6)
    """
    return (DECODING["beam"] if beam is None else int(beam),
            DECODING["length_penalty"] if length_penalty is None else float(length_penalty))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of `logits` along the last axis (shifted by the max: no overflow).

    Example:

    >>> log_softmax(np.log(np.array([[1.0, 3.0]]))).round(4)
    array([[-1.3863, -0.2877]])
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def greedy_decode(step: Callable[..., tuple], h: np.ndarray, c: np.ndarray, start_id: int,
                  end_id: int, max_length: int) -> list[list[int]]:
    """Decodes a batch greedily, stopping at `end_id` or `max_length` tokens.

    Args:
        step: `step(tokens (batch,), h, c) -> (log_probs (batch, vocab), h, c)`.
        h, c: `(batch, units)` initial decoder states (the context vector).
        start_id, end_id: Ids of the start and end tokens.
        max_length: Most tokens emitted per sentence (the end token excluded).

    Returns:
        A list of token-id lists, one per batch item, without start/end tokens.
    """
    batch = h.shape[0]
    tokens = np.full((batch,), start_id, dtype=np.int32)
    done = np.zeros((batch,), dtype=bool)
    outputs = [[] for _ in range(batch)]
    for _ in range(max_length):
        log_probs, h, c = step(tokens, h, c)
        tokens = np.argmax(log_probs, axis=-1).astype(np.int32)
        for i, token in enumerate(tokens):
            if not done[i]:
                if token == end_id:
                    done[i] = True
                else:
                    outputs[i].append(int(token))
        if done.all():
            break
    return outputs


def top_candidates(scores: np.ndarray, count: int) -> np.ndarray:
    """Column indices of the `count` highest `scores` of each row, highest first."""
    count = min(count, scores.shape[1])
    top = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def beam_decode(step: Callable[..., tuple], h: np.ndarray, c: np.ndarray, start_id: int,
                end_id: int, max_length: int, beam_size: int | None = None,
                length_penalty: float | None = None) -> list[list[int]]:
    """Beam search for each batch item, all beams of all items stepped as one batch.

    Hypotheses are ranked by `log P / lp(len)` with the GNMT length penalty
    `lp(len) = ((5 + len) / 6) ** length_penalty`, `len` counting the end
    token. Log-probabilities are negative, so a larger `length_penalty`
    favours longer hypotheses; 0 ranks by probability alone.

    Args:
        step: As for `greedy_decode`; called on `batch * beam_size` rows.
        h, c: `(batch, units)` initial decoder states.
        start_id, end_id, max_length: As for `greedy_decode`.
        beam_size: Hypotheses kept per sentence (default: `DECODING`'s).
        length_penalty: Exponent of the length penalty (0: none; default:
            `DECODING`'s).

    Returns:
        A list of the best token-id list per batch item.
    """
    beam_size, length_penalty = resolve_decoding(beam_size, length_penalty)
    batch, k = h.shape[0], beam_size
    h = np.repeat(h, k, axis=0)
    c = np.repeat(c, k, axis=0)
    scores = np.full((batch, k), -np.inf, dtype=np.float64)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    sequences = [[[] for _ in range(k)] for _ in range(batch)]
    tokens = np.full((batch * k,), start_id, dtype=np.int32)
    finished = [[] for _ in range(batch)]

    def penalty(length):
        return ((5.0 + length) / 6.0) ** length_penalty

    for _ in range(max_length):
        log_probs, h, c = step(tokens, h, c)
        vocab = log_probs.shape[-1]
        total = scores[:, :, None] + log_probs.reshape(batch, k, vocab)
        flat = total.reshape(batch, k * vocab)
        # 2k candidates: enough to refill k live beams after some end. Partition, then sort
        # only those: a full sort of k * vocab scores per sentence dominated a step.
        top = top_candidates(flat, 2 * k)
        new_scores = np.full((batch, k), -np.inf)
        new_sequences = [[[] for _ in range(k)] for _ in range(batch)]
        origin = np.zeros((batch, k), dtype=np.int64)
        new_tokens = np.full((batch, k), end_id, dtype=np.int32)
        for b in range(batch):
            filled = 0
            for index in top[b]:
                score = flat[b, index]
                if not np.isfinite(score):
                    break
                beam, token = divmod(int(index), vocab)
                if token == end_id:
                    sequence = sequences[b][beam]
                    finished[b].append((score / penalty(len(sequence) + 1), sequence))
                    continue
                new_scores[b, filled] = score
                new_sequences[b][filled] = sequences[b][beam] + [token]
                origin[b, filled] = beam
                new_tokens[b, filled] = token
                filled += 1
                if filled == k:
                    break
        rows = (np.arange(batch)[:, None] * k + origin).reshape(-1)
        h, c = h[rows], c[rows]
        scores, sequences, tokens = new_scores, new_sequences, new_tokens.reshape(-1)
        # Stop when no live beam can beat the best finished hypothesis.
        if all(
            finished[b] and max(s for s, _ in finished[b]) >= (scores[b].max() / penalty(max_length))
            for b in range(batch)
        ):
            break
    best = []
    for b in range(batch):
        candidates = list(finished[b])
        for beam in range(k):
            if np.isfinite(scores[b, beam]):
                candidates.append((scores[b, beam] / penalty(len(sequences[b][beam])),
                                   sequences[b][beam]))
        best.append(max(candidates, key=lambda item: item[0])[1] if candidates else [])
    return best


def translate_batch(texts: Sequence[str], encode_ids: Callable[[Sequence[str]], np.ndarray],
                    encoder: Callable[..., tuple], decoder: Callable[..., tuple],
                    target: Preprocessor, max_length: int, beam: int | None = None,
                    length_penalty: float | None = None) -> list[str]:
    """Translates texts with any encoder/one-step-decoder pair (Keras, onnxruntime, ...).

    Args:
        texts: Source strings.
        encode_ids: `texts → (batch, time)` right-padded int32 source ids.
        encoder: `ids → (encoder_outputs, h, c)` as NumPy arrays.
        decoder: `(token (n, 1), h, c, encoder_outputs, source_mask) → (logits, h, c)`.
        target: The target side's `lstm_text.Preprocessor` (its [START] and
            [END] ids, and `decode` from ids to text).
        max_length: As for `greedy_decode`.
        beam, length_penalty: As for `beam_decode` (`beam` 1: `greedy_decode`);
            `None` takes the default, `DECODING`.
    """
    if not texts:
        return []
    source = encode_ids(texts)
    encoder_outputs, h, c = encoder(source)
    mask = source != 0

    def step(tokens, h, c):
        rows = len(tokens) // len(texts)  # beams per text
        logits, h, c = decoder(tokens[:, None].astype(np.int32), h.astype(np.float32),
                               c.astype(np.float32), np.repeat(encoder_outputs, rows, axis=0),
                               np.repeat(mask, rows, axis=0))
        return log_softmax(np.asarray(logits, np.float64)), np.asarray(h), np.asarray(c)

    start, end = target.start_id, target.end_id
    beam, length_penalty = resolve_decoding(beam, length_penalty)
    if beam <= 1:
        ids = greedy_decode(step, h, c, start, end, max_length)
    else:
        ids = beam_decode(step, h, c, start, end, max_length, beam, length_penalty)
    return [target.decode(row) for row in ids]


def greedy_attention(text: str, encode_ids: Callable[[Sequence[str]], np.ndarray],
                     encoder: Callable[..., tuple], decoder: Callable[..., tuple],
                     preprocessors: Mapping[str, Preprocessor], max_length: int) -> dict:
    """Greedy decoding of one text (`lstm_text.decoding`) that keeps each step's attention.

    The decoding loop is `translate_batch`'s: this only watches the decoder's
    steps. Step k's weights are those the decoder used to choose target token
    k; the step that chose [END] is dropped.

    Args:
        text: One source text.
        encode_ids, encoder: As for `lstm_text.decoding.translate_batch`.
        decoder: `(token, h, c, encoder_outputs, source_mask) → (logits, h, c,
            weights (batch, source time))`.
        preprocessors: The `source` and `target` `lstm_text.Preprocessor`s.
        max_length: Most target tokens.

    Returns:
        The dict of `TranslationRuntime.attention_map`.
    """
    source, target = preprocessors["source"], preprocessors["target"]
    steps = []

    def watched(*inputs):
        logits, h, c, weights = decoder(*inputs)
        steps.append((int(np.argmax(logits[0])), np.asarray(weights, np.float32)[0]))
        return logits, h, c

    [translation] = translate_batch([text], encode_ids, encoder, watched, target, max_length,
                                    beam=1)
    # greedy_decode picks the argmax of each step's log-softmax: the argmax of its logits.
    chosen = [token for token, _ in steps]
    count = chosen.index(target.end_id) if target.end_id in chosen else len(chosen)
    ids = source.encode(text)
    tokens = source.tokens(text)[: len(ids)]  # the kept ones only (a 1 MB text is a prefix)
    if len(tokens) != len(ids):  # an empty text is one [UNK]
        tokens = source.vocabulary.decode(ids)
    weights = np.stack([w[: len(ids)] for _, w in steps[:count]]) if count else \
        np.zeros((0, len(ids)), np.float32)
    return {"translation": translation, "source": tokens,
            "target": target.vocabulary.decode(chosen[:count]), "weights": weights}
