"""A run's Keras model: saved atomically, loaded in safe mode.

The run folder's layout and its config.json are `keras_lstm.core.schemas`;
this is the TensorFlow side of it.
"""

from pathlib import Path

from keras_lstm.core.errors import ConfigError
from keras_lstm.core.files import atomic_path
from keras_lstm.core.schemas import MODEL_FILE

__all__ = ["load_model", "load_preprocessors", "save_model_atomic"]


def load_preprocessors(run_dir, config):
    """`{name: lstm_text.Preprocessor}` of a run, vocabularies read from the folder."""
    from lstm_text.preprocessor import Preprocessor

    return {name: Preprocessor.load(run_dir, spec)
            for name, spec in config["preprocessors"].items()}


def save_model_atomic(model, path, weights_only=False):
    """Saves a Keras model (`.keras`), or its weights (`.weights.h5`), through a temporary file."""
    with atomic_path(path) as tmp:
        (model.save_weights if weights_only else model.save)(tmp)


def load_model(run_dir):
    """Loads RUN/model.keras in Keras safe mode.

    Raises:
        ConfigError: the file is missing, truncated or not a Keras model.
    """
    import keras

    import keras_lstm.models  # noqa: F401  (registers every Keras object our models hold)
    from keras_lstm.core.errors import load_or_raise

    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {MODEL_FILE} (was training finished?)")
    return load_or_raise(lambda: keras.saving.load_model(path, safe_mode=True), path, "Keras",
                         ConfigError)
