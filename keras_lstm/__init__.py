"""keras-lstm: the textbook LSTM as a Keras 3 layer, and the products built on it.

Importing the package registers its Keras objects (`keras_lstm>LSTM`, ...), so
models holding them load with `keras.saving.load_model(path)` in safe mode.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_lstm import layers  # noqa: E402
from keras_lstm.models import sentiment, seq2seq  # noqa: E402,F401  (their layers register too)

__version__ = "0.1.0"
__all__ = ["layers", "__version__"]
