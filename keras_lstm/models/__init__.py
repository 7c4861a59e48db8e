"""The notes' two networks. Importing this package registers every Keras object they hold."""

from keras_lstm.models import sentiment, seq2seq  # noqa: F401

__all__ = ["sentiment", "seq2seq"]
