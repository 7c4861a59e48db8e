"""Text: the in-graph tokenizer and preprocessor, and their TensorFlow-free twins from `lstm_text`."""

from keras_lstm.text.preprocessor import GraphPreprocessor, build_vocabulary
from keras_lstm.text.tokenizer import TextTokenizer
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary
from lstm_text.preprocessor import Preprocessor

__all__ = ["GraphPreprocessor", "Preprocessor", "PyTokenizer", "TextTokenizer",
           "TokenizerConfig", "Vocabulary", "build_vocabulary"]
