"""TensorFlow-free text processing shared by training and the runtimes.

`keras_lstm.text.TextTokenizer` (tensorflow-text, in-graph) and
`lstm_text.PyTokenizer` (pure Python, for onnxruntime and TFLite servers and
phones' host code) apply the same rules, defined once in `lstm_text.rules`,
and give the same tokens. `lstm_text.Vocabulary` maps tokens to ids. Nothing
here imports TensorFlow or Keras.
"""

from lstm_text.tokenizer import PyTokenizer, TokenizerConfig
from lstm_text.vocabulary import Vocabulary

__all__ = ["PyTokenizer", "TokenizerConfig", "Vocabulary"]
