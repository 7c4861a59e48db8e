"""Text: the in-graph tokenizer, and the TensorFlow-free twin and vocabulary from `lstm_text`."""

from keras_lstm.text.tokenizer import TextTokenizer
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary

__all__ = ["PyTokenizer", "TextTokenizer", "TokenizerConfig", "Vocabulary"]
