"""The run folder: the one place a trained model's facts live, for both tasks.

```
RUN/
  config.json        format_version, task, preset, training config, model config,
                     preprocessors (tokenizer, maximum length, vocabulary file), labels
  vocabulary.txt     one token per line; the line number is the id (0 = PAD, 1 = OOV);
                     translation: source_vocabulary.txt and target_vocabulary.txt
  model.keras        the best model (sentiment; translation: model.weights.h5)
  best_score.json    the best validation score and its epoch
  splits/            the held-out splits, and a sample of the training texts that
                     calibrates int8 exports
  baseline/          sentiment: TF-IDF + logistic regression (`keras_lstm.baseline`)
  backup/            the state of an unfinished run (`--resume`); removed when done
  logs/              TensorBoard logs
  export/            what `keras-lstm export` writes (see `export.metadata`)
```

`format_version` 2 is written; version 1 (no `format_version`; each task laid
out its own way) is read and converted in memory. TensorFlow-free.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_lstm.errors import ConfigError

FORMAT_VERSION = 2
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


def atomic_copy(source, path):
    """Copies the file `source` to `path` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
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
    config = {"format_version": FORMAT_VERSION, **config}
    atomic_write_text(Path(run_dir) / CONFIG_FILE,
                      json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def read_json(path, error=ConfigError, what="file"):
    """A JSON object from `path`; one `error` line if it is missing, not JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as cause:
        raise error(f"{path}: not valid JSON ({cause})") from None
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def check_version(found, path, error=ConfigError):
    """Refuses a `format_version` this keras-lstm cannot read, naming both versions."""
    if not isinstance(found, int) or isinstance(found, bool) or not 1 <= found <= FORMAT_VERSION:
        raise error(f"{path}: format_version {found!r} is not one this keras-lstm reads "
                    f"(1 to {FORMAT_VERSION}); a newer keras-lstm wrote it?")


def require(mapping, field, path, error=ConfigError):
    """`mapping[field]`, or one `error` line naming the file and the missing field."""
    if field not in mapping:
        raise error(f"{path}: field {field!r} is missing")
    return mapping[field]


def read_config(run_dir, task=None):
    """Reads RUN/config.json (any format version, as version 2); checks it is a run of `task`.

    Raises:
        ConfigError: not a run folder, unreadable config, a version this
            keras-lstm cannot read, a missing field, or another task.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    config = read_json(path)
    check_version(config.get("format_version", 1), path)
    found = require(config, "task", path)
    if task is not None and found != task:
        raise ConfigError(f"{run_dir}: is a {found} run, expected a {task} run")
    if config.get("format_version", 1) == 1:
        config = _from_version_1(config, path)
    for field in ("training", "model", "preprocessors", "model_file",
                  *(("labels",) if found == "sentiment" else ())):
        require(config, field, path)
    return config


def _from_version_1(config, path):
    """A version-1 config.json (before both tasks shared one layout) as version 2."""
    task = config["task"]
    new = {key: value for key, value in config.items()
           if key not in ("tokenizer", "max_length", "source_tokenizer", "target_tokenizer")}
    new["format_version"] = FORMAT_VERSION
    if task == "sentiment":
        new["preprocessors"] = {"text": {
            "tokenizer": require(config, "tokenizer", path),
            "max_length": require(config, "max_length", path),
            "start_end": False, "vocabulary": VOCABULARY_FILE}}
        new["model_file"] = MODEL_FILE
    else:
        new["preprocessors"] = {
            "source": {"tokenizer": require(config, "source_tokenizer", path),
                       "max_length": None, "start_end": False,
                       "vocabulary": "source_vocabulary.txt"},
            "target": {"tokenizer": require(config, "target_tokenizer", path),
                       "max_length": None, "start_end": True,
                       "vocabulary": "target_vocabulary.txt"}}
        new["model_file"] = "model.weights.h5"
    return new


def load_preprocessors(run_dir, config):
    """`{name: lstm_text.Preprocessor}` of a run, vocabularies read from the folder."""
    from lstm_text.preprocessor import Preprocessor

    return {name: Preprocessor.load(run_dir, spec)
            for name, spec in config["preprocessors"].items()}


def save_model_atomic(model, path, weights_only=False):
    """Saves a Keras model (`.keras`), or its weights (`.weights.h5`), through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if weights_only else ".keras"
    tmp = path.with_name(f".{path.name.removesuffix(suffix)}.tmp{suffix}")
    try:
        (model.save_weights if weights_only else model.save)(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_model(run_dir):
    """Loads RUN/model.keras in Keras safe mode.

    Raises:
        ConfigError: the file is missing, truncated or not a Keras model.
    """
    import keras

    import keras_lstm.models  # noqa: F401  (registers every Keras object our models hold)
    from keras_lstm.errors import load_or_raise

    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {MODEL_FILE} (was training finished?)")
    return load_or_raise(lambda: keras.saving.load_model(path, safe_mode=True), path, "Keras",
                         ConfigError)
