"""keras-lstm: the textbook LSTM as a Keras 3 layer, and the products built on it.

Importing the package is cheap: TensorFlow and Keras load only where a
command needs them (`keras_lstm.layers`, training, export). Every Keras
object the project's models hold is registered by `keras_lstm.models`,
which `keras_lstm.runs.load_model` imports before loading in safe mode.
"""

import importlib

__version__ = "0.2.0"
__all__ = ["layers", "__version__"]


def __getattr__(name):
    # `keras_lstm.layers` (and the other subpackages) load on first use.
    if name in ("layers", "models", "text", "data", "tasks"):
        return importlib.import_module(f"keras_lstm.{name}")
    raise AttributeError(f"module 'keras_lstm' has no attribute {name!r}")
