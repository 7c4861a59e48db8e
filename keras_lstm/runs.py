"""The run folder: the one place a trained model's facts live.

A run folder holds everything needed to reload a model and everything every
later stage (evaluate, predict, export) reads:

```
RUN/
  config.json       task, training config, model config, tokenizer config, labels
  vocabulary.txt    one token per line; the line number is the id (0 = PAD, 1 = OOV)
  model.keras       the best model (Keras format, loads in safe mode)
  splits/           the held-out splits as JSON Lines (text, label), and a sample of
                    the training texts that calibrates int8 exports
  backup/           BackupAndRestore state while training (removed when done)
  logs/             TensorBoard logs
```
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_lstm.errors import ConfigError

CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.txt"
MODEL_FILE = "model.keras"
SPLITS_DIR = "splits"


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(final):
    """Yields a temporary folder beside `final` that replaces `final` once the block succeeds.

    An earlier `final` survives a failed or interrupted block untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield work
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_config(run_dir, config):
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def read_config(run_dir, task=None):
    """Reads RUN/config.json; checks it is a run folder of `task`.

    Raises:
        ConfigError: not a run folder, unreadable config, or another task.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or "task" not in config:
        raise ConfigError(f"{path}: field 'task' is missing")
    if task is not None and config["task"] != task:
        raise ConfigError(f"{run_dir}: is a {config['task']} run, expected a {task} run")
    return config


def save_model_atomic(model, path):
    """Saves a Keras model to `path` (.keras) through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_model(run_dir):
    """Loads RUN/model.keras in Keras safe mode.

    Raises:
        ConfigError: the file is missing, truncated or not a Keras model.
    """
    import keras

    # Importing keras_lstm (this module's package) has registered every Keras
    # object the project's models hold: the LSTM, the masked max pooling and
    # the attention layer.
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {MODEL_FILE} (was training finished?)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged zip
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: cannot load the Keras model ({first_line})") from None
