"""The notes' sentiment classifier: word vectors → LSTM features → softmax."""

import dataclasses

import keras

from keras_lstm.layers import LSTM

__all__ = [
    "LSTM_KINDS",
    "POOLINGS",
    "MaskedGlobalMaxPooling1D",
    "SentimentModelConfig",
    "build_sentiment_model",
    "make_lstm",
    "set_valence",
]

LSTM_KINDS = ("custom", "keras")
POOLINGS = ("last", "max", "mean")


@keras.saving.register_keras_serializable(package="keras_lstm")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over the valid steps of `(batch, time, features)` (masked steps excluded)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            valid = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1)
            inputs = keras.ops.where(valid, inputs, keras.ops.full_like(inputs, -1e9))
        return keras.ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@dataclasses.dataclass
class SentimentModelConfig:
    """Architecture of a sentiment model; saved in the run folder's config.json.

    Args:
        vocab_size: Rows of the embedding (the vocabulary file's length).
        num_classes: Number of labels.
        embedding_dim: Width of the word vectors.
        units: LSTM units per direction.
        layers: Number of stacked LSTM layers.
        bidirectional: Wrap every LSTM in `keras.layers.Bidirectional`.
        lstm: `"custom"` for `keras_lstm.layers.LSTM`, `"keras"` for
            `keras.layers.LSTM`; everything else is the same.
        dropout: Dropout on the word vectors and on the LSTM features.
        pooling: How the last LSTM's outputs become the features: "last"
            (the final hidden state h_T), "max" or "mean" over the valid
            steps (padding excluded).
        lexicon: Concatenate to each word vector one frozen number, the
            token's valence in a sentiment lexicon (an `Embedding` named
            "valence", set by `set_valence`; zeros until then).
        wide: Add a "wide" bag-of-words branch: a learned score per token and
            class, averaged over the valid tokens and added to the logits.
    """

    vocab_size: int
    num_classes: int
    embedding_dim: int = 128
    units: int = 128
    layers: int = 1
    bidirectional: bool = False
    lstm: str = "custom"
    dropout: float = 0.2
    pooling: str = "last"
    lexicon: bool = False
    wide: bool = False

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.lstm not in LSTM_KINDS:
            raise ValueError(f"lstm must be one of {LSTM_KINDS}, got {self.lstm!r}")
        if self.layers < 1:
            raise ValueError(f"layers must be at least 1, got {self.layers}")


def make_lstm(kind, units, return_sequences, name, return_state=False):
    """An LSTM layer of the requested kind with Keras' defaults."""
    if kind == "custom":
        return LSTM(units, return_sequences=return_sequences, return_state=return_state, name=name)
    # use_cudnn=False keeps the graph exportable from a GPU machine too.
    return keras.layers.LSTM(units, return_sequences=return_sequences, return_state=return_state,
                             name=name, use_cudnn=False)


def build_sentiment_model(config: SentimentModelConfig) -> keras.Model:
    """Builds Embedding → LSTM × layers → Dense(softmax).

    The input is `token_ids`, int32 `(batch, time)`, right-padded with 0; the
    embedding masks the padding so that every length is handled exactly.

    Example:

    >>> model = build_sentiment_model(SentimentModelConfig(vocab_size=100, num_classes=3))
    >>> model(np.array([[5, 6, 7, 0]])).shape
    (1, 3)
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    if config.lexicon:
        # An ordinary (frozen) Embedding: TFLite and ONNX see one more Gather and a Concat.
        valence = keras.layers.Embedding(config.vocab_size, 1, mask_zero=True, trainable=False,
                                         embeddings_initializer="zeros", name="valence")
        x = keras.layers.Concatenate(name="word_features")([x, valence(token_ids)])
    for index in range(config.layers):
        sequences = index < config.layers - 1 or config.pooling != "last"
        layer = make_lstm(config.lstm, config.units, sequences, name=f"lstm_{index}")
        if config.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
        x = layer(x)
    if config.pooling == "max":
        x = MaskedGlobalMaxPooling1D(name="max_pooling")(x)
    elif config.pooling == "mean":
        x = keras.layers.GlobalAveragePooling1D(name="mean_pooling")(x)
    x = keras.layers.Dropout(config.dropout, name="features_dropout")(x)
    if not config.wide:
        probabilities = keras.layers.Dense(
            config.num_classes, activation="softmax", name="probabilities"
        )(x)
        return keras.Model(token_ids, probabilities, name="sentiment")
    logits = keras.layers.Dense(config.num_classes, name="deep_logits")(x)
    scores = keras.layers.Embedding(config.vocab_size, config.num_classes, mask_zero=True,
                                    embeddings_initializer="zeros", name="wide")(token_ids)
    wide = keras.layers.GlobalAveragePooling1D(name="wide_mean")(scores)
    logits = keras.layers.Add(name="logits")([logits, wide])
    probabilities = keras.layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(token_ids, probabilities, name="sentiment")


def set_valence(model: keras.Model, valence) -> None:
    """Sets the frozen "valence" embedding of a `lexicon=True` model: one number per token id."""
    import numpy as np

    layer = model.get_layer("valence")
    layer.set_weights([np.asarray(valence, dtype="float32").reshape(-1, 1)])
