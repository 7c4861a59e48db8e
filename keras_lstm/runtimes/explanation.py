"""Why a sentiment model chose its label: one signed weight per token, by occlusion.

The weight of token i toward a label is how much the label's probability drops
when the model reads the text without that token:

    weight_i = p(label | ids) - p(label | ids with the i-th id removed)

Positive: the token pushed toward the label; negative: against it. The n + 1
id sequences (the whole text, then each one-token-shorter text) go to the
runtime as one call, so the method needs nothing but a way to score ids: it
works the same through Keras, the SavedModel, ONNX and TFLite, and imports
neither TensorFlow nor Keras (docs/design.md says why occlusion and what it
costs).

Example:

>>> from keras_lstm import runtimes           # after `keras-lstm demo --fast`: not run as a doctest
>>> runtime = runtimes.load("runs/demo/sentiment/export", backend="onnx")  # doctest: +SKIP
>>> explain(runtime.preprocessor, runtime.predict_ids, "质量很好", label=1)  # doctest: +SKIP
{'label': 1, 'tokens': ['质量', '量很', '很好'], 'weights': [-0.013098, -0.010253, 0.558744]}
>>> runtime.explain(["质量很好"])  # doctest: +SKIP
[{'label': 'positive', 'tokens': ['质量', '量很', '很好'], 'weights': [...]}]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_text.preprocessor import Preprocessor
from lstm_text.vocabulary import OOV_ID

__all__ = ["DECIMALS", "explain", "occluded", "occlusion_weights"]

DECIMALS = 6  # as the probabilities `predict` prints


def occluded(ids: list[int]) -> list[list[int]]:
    """`ids`, then `ids` without each of its ids in turn (n + 1 rows).

    A row left empty becomes `[OOV]`, as `Preprocessor.encode` makes an empty
    text: what the model reads for a text without its one token.

    >>> occluded([5, 6, 7])
    [[5, 6, 7], [6, 7], [5, 7], [5, 6]]
    >>> occluded([5])
    [[5], [1]]
    """
    ids = list(ids)
    return [ids or [OOV_ID]] + [ids[:i] + ids[i + 1:] or [OOV_ID] for i in range(len(ids))]


def occlusion_weights(probabilities: np.ndarray, label: int) -> np.ndarray:
    """The weights of one text from its `occluded` rows' probabilities `(n + 1, labels)`."""
    probabilities = np.asarray(probabilities, np.float64)
    return probabilities[0, label] - probabilities[1:, label]


def explain(preprocessor: Preprocessor, predict_ids: Callable[[list[list[int]]], np.ndarray],
            text: str, label: int | None = None) -> dict:
    """One text's tokens and each one's weight toward `label`.

    Args:
        preprocessor: The model's `lstm_text.Preprocessor` (its kept tokens are
            the ones explained; a text longer than `max_length` tokens is
            explained on the tokens the model read).
        predict_ids: `predict_ids(rows)` → probabilities `(len(rows), labels)`
            for unpadded id lists (a runtime's `predict_ids`).
        text: The text.
        label: The label's index; default: the one the model predicts.

    Returns:
        `{"label": index, "tokens": [...], "weights": [...]}`, one weight per
        token (rounded to 6 decimals); no tokens for a text that has none.
    """
    tokens = preprocessor.tokens(text)[: preprocessor.max_length]
    ids = preprocessor.vocabulary.encode(tokens)
    probabilities = predict_ids(occluded(ids))
    if label is None:
        label = int(np.argmax(probabilities[0]))
    weights = occlusion_weights(probabilities, label)
    return {"label": label, "tokens": tokens,
            "weights": [round(w, DECIMALS) for w in weights.tolist()]}
