"""The notes' encoder-decoder: an encoder LSTM's final state initialises a decoder LSTM.

Three Keras models share one set of layers:

* the training model `(source_ids, target_in_ids) → logits`, trained with
  teacher forcing (the decoder reads the true previous target token);
* the `encoder` model `source_ids → (encoder_outputs, h, c)`: `(h, c)` is the
  context vector of the notes, `encoder_outputs` feed the attention;
* the one-step `decoder` model `(token, h, c, encoder_outputs, source_mask) →
  (logits, h, c, attention)`, run in a loop to emit the target token by token
  until the end token (greedy or beam search, see `lstm_text.decoding`).

With `attention=True` the decoder adds Luong-style (dot-product) attention
over the encoder outputs: `score = h_dec · h_encᵀ`, masked softmax over the
source, `context = Σ weights · h_enc`, `h̃ = tanh(W_c [h_dec; context])`.
"""

import dataclasses

import keras
from keras import ops

from keras_lstm.models.sentiment import LSTM_KINDS, make_lstm

__all__ = ["LuongAttention", "MaskedAccuracy", "Seq2Seq", "Seq2SeqConfig", "SourceMask"]


@dataclasses.dataclass
class Seq2SeqConfig:
    """Architecture of a translation model; saved in the run folder's config.json.

    Args:
        source_vocab_size, target_vocab_size: Rows of the two embeddings.
        embedding_dim: Width of the word vectors.
        units: LSTM units of the encoder and the decoder.
        attention: Add Luong attention over the encoder outputs.
        lstm: `"custom"` (keras_lstm.layers.LSTM) or `"keras"`.
        dropout: Dropout on the embeddings and the decoder features.
    """

    source_vocab_size: int
    target_vocab_size: int
    embedding_dim: int = 128
    units: int = 256
    attention: bool = True
    lstm: str = "custom"
    dropout: float = 0.1

    def __post_init__(self):
        if self.lstm not in LSTM_KINDS:
            raise ValueError(f"lstm must be one of {LSTM_KINDS}, got {self.lstm!r}")


@keras.saving.register_keras_serializable(package="keras_lstm")
class LuongAttention(keras.layers.Layer):
    """Dot-product attention of decoder states over encoder outputs.

    Call arguments:
        decoder_outputs: `(batch, target_time, units)`.
        encoder_outputs: `(batch, source_time, units)`.
        source_mask: `(batch, source_time)` booleans, `True` on real tokens.

    Returns:
        `(attended, weights)`: `tanh(W_c [decoder; context])`
        `(batch, target_time, units)` and the attention weights
        `(batch, target_time, source_time)`.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.combine = keras.layers.Dense(units, activation="tanh", name="combine")
        self.supports_masking = True

    def compute_mask(self, *args, **kwargs):
        return None

    def build(self, decoder_outputs_shape, encoder_outputs_shape=None, source_mask_shape=None):
        self.combine.build((*decoder_outputs_shape[:-1], 2 * decoder_outputs_shape[-1]))
        self.built = True

    def call(self, decoder_outputs, encoder_outputs, source_mask):
        scores = ops.matmul(decoder_outputs, ops.transpose(encoder_outputs, (0, 2, 1)))
        mask = ops.expand_dims(ops.cast(source_mask, "bool"), 1)
        scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(weights, encoder_outputs)
        attended = self.combine(ops.concatenate([decoder_outputs, context], axis=-1))
        return attended, weights

    def compute_output_shape(self, decoder_outputs_shape, encoder_outputs_shape,
                             source_mask_shape):
        return ((*decoder_outputs_shape[:-1], self.units),
                (*decoder_outputs_shape[:-1], encoder_outputs_shape[1]))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_lstm")
class SourceMask(keras.layers.Layer):
    """`source_ids != 0`: which source positions are real tokens."""

    def call(self, ids):
        return ops.not_equal(ids, 0)


class Seq2Seq:
    """The layers of an encoder-decoder and the three models built from them."""

    def __init__(self, config: Seq2SeqConfig):
        self.config = config
        c = config
        self.source_embedding = keras.layers.Embedding(
            c.source_vocab_size, c.embedding_dim, mask_zero=True, name="source_embedding")
        self.target_embedding = keras.layers.Embedding(
            c.target_vocab_size, c.embedding_dim, mask_zero=True, name="target_embedding")
        self.encoder_lstm = _stateful_lstm(c.lstm, c.units, "encoder_lstm")
        self.decoder_lstm = _stateful_lstm(c.lstm, c.units, "decoder_lstm")
        self.embedding_dropout = keras.layers.Dropout(c.dropout, name="embedding_dropout")
        self.features_dropout = keras.layers.Dropout(c.dropout, name="features_dropout")
        self.attention = LuongAttention(c.units, name="attention") if c.attention else None
        self.source_mask = SourceMask(name="source_mask")
        self.projection = keras.layers.Dense(c.target_vocab_size, name="logits")

    def _decode(self, target_ids, h, c, encoder_outputs, source_mask):
        x = self.embedding_dropout(self.target_embedding(target_ids))
        outputs, h, c = self.decoder_lstm(x, initial_state=[h, c])
        weights = None
        if self.attention is not None:
            outputs, weights = self.attention(outputs, encoder_outputs, source_mask)
        logits = self.projection(self.features_dropout(outputs))
        return logits, h, c, weights

    def training_model(self):
        """`(source_ids, target_in_ids) → logits` for teacher forcing."""
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        target_ids = keras.Input((None,), dtype="int32", name="target_in_ids")
        encoder_outputs, h, c = self.encoder_lstm(
            self.embedding_dropout(self.source_embedding(source_ids)))
        logits, *_ = self._decode(target_ids, h, c, encoder_outputs, self.source_mask(source_ids))
        return keras.Model([source_ids, target_ids], logits, name="seq2seq")

    def encoder_model(self):
        """`source_ids → (encoder_outputs, h, c)`: the context vector is `(h, c)`."""
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        encoder_outputs, h, c = self.encoder_lstm(self.source_embedding(source_ids))
        return keras.Model(source_ids, [encoder_outputs, h, c], name="encoder")

    def decoder_model(self):
        """One decoding step: `(token, h, c, encoder_outputs, source_mask) → (logits, h, c, attention)`."""
        units = self.config.units
        token = keras.Input((1,), dtype="int32", name="token")
        h = keras.Input((units,), name="h")
        c = keras.Input((units,), name="c")
        encoder_outputs = keras.Input((None, units), name="encoder_outputs")
        source_mask = keras.Input((None,), dtype="bool", name="source_mask")
        logits, h2, c2, weights = self._decode(token, h, c, encoder_outputs, source_mask)
        outputs = [logits[:, 0, :], h2, c2]
        if weights is not None:
            outputs.append(weights[:, 0, :])
        return keras.Model([token, h, c, encoder_outputs, source_mask], outputs, name="decoder")


def _stateful_lstm(kind, units, name):
    """An LSTM returning its whole sequence and its final (h, c)."""
    return make_lstm(kind, units, return_sequences=True, name=name, return_state=True)


@keras.saving.register_keras_serializable(package="keras_lstm")
class MaskedAccuracy(keras.metrics.Metric):
    """Token accuracy over the real (non-padding) target tokens."""

    def __init__(self, name="masked_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        valid = ops.cast(ops.not_equal(y_true, 0), "float32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), y_true.dtype)
        hits = ops.cast(ops.equal(predicted, y_true), "float32")
        self.hits.assign_add(ops.sum(hits * valid))
        self.count.assign_add(ops.sum(valid))

    def result(self):
        return self.hits / ops.maximum(self.count, 1.0)
