"""Keras layers of keras_lstm."""

from keras_lstm.layers.lstm import LSTM, graph_target

__all__ = ["LSTM", "graph_target"]
