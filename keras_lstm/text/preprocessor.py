"""`GraphPreprocessor`: `lstm_text.Preprocessor` inside a TensorFlow graph.

The same configuration and the same ids, computed with the tensorflow-text
tokenizer and a lookup table: the `tf.data` pipelines of both tasks, Keras
inference and the SavedModels' string signatures all turn text into ids here.
"""

import tensorflow as tf

from keras_lstm.text.tokenizer import TextTokenizer
from lstm_text.preprocessor import Preprocessor
from lstm_text.vocabulary import OOV_ID, Vocabulary

__all__ = ["GraphPreprocessor", "build_vocabulary"]


class GraphPreprocessor(tf.Module):
    """Strings → ids in the graph, as `lstm_text.Preprocessor` does in Python.

    A `tf.Module`, so that a SavedModel that tracks it keeps its lookup table.

    Example:

    >>> graph = GraphPreprocessor(preprocessor)
    >>> graph(tf.constant(["Good film!", ""])).numpy()
    array([[2, 3, 1],
           [1, 0, 0]], dtype=int32)
    """

    def __init__(self, preprocessor: Preprocessor):
        super().__init__()
        self.preprocessor = preprocessor
        self.tokenizer = TextTokenizer(preprocessor.tokenizer_config)
        vocabulary = preprocessor.vocabulary
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocabulary.tokens),
            tf.range(len(vocabulary.tokens), dtype=tf.int64)), OOV_ID)

    def ragged(self, texts):
        """`(batch,)` strings → ragged int32 ids `(batch, None)`."""
        return self.ids(self.tokenizer.tokenize(texts))

    def ids(self, tokens):
        """Ragged string tokens `(batch, None)` → ragged int32 ids, as `ragged` gives them.

        Prepared shards hold tokens: reading them, this is all that is left to do.
        """
        ids = tf.cast(tf.ragged.map_flat_values(self.table.lookup, tokens), tf.int32)
        ids = ids[:, : self.preprocessor.max_length]
        rows = ids.nrows()
        if self.preprocessor.start_end:
            start = tf.fill([rows, 1], self.preprocessor.start_id)
            end = tf.fill([rows, 1], self.preprocessor.end_id)
            return tf.concat([start, ids, end], axis=1)
        # An empty text becomes [OOV]: an LSTM needs one step.
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        oov = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(empty)], tf.constant(OOV_ID, tf.int32)), empty)
        return tf.concat([ids, oov], axis=1)

    def ragged_batched(self, texts, chunk=4096):
        """`ragged` over a Python list of any length, a chunk at a time."""
        texts = list(texts)
        pieces = [self.ragged(tf.constant(texts[i:i + chunk], tf.string))
                  for i in range(0, len(texts), chunk)]
        return tf.concat(pieces, axis=0) if pieces else tf.ragged.constant([], dtype=tf.int32,
                                                                            ragged_rank=1)

    def __call__(self, texts):
        """`(batch,)` strings → `(batch, longest)` int32 ids, right-padded with 0."""
        return self.ragged(texts).to_tensor(default_value=0)


def build_vocabulary(texts, tokenizer_config, max_size=20_000, min_count=1, reserved=()):
    """The vocabulary of `texts` as tokenized in the graph (fast on large corpora).

    See `lstm_text.Vocabulary.build` for the order and the special tokens.
    """
    tokenizer = TextTokenizer(tokenizer_config)
    texts = list(texts)

    def token_lists():
        for i in range(0, len(texts), 4096):
            for row in tokenizer.tokenize(texts[i:i + 4096]).to_list():
                yield [token.decode("utf-8") for token in row]

    return Vocabulary.build(token_lists(), max_size=max_size, min_count=min_count,
                            reserved=reserved)
