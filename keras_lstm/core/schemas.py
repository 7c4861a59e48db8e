"""The schemas of the two documents every reader shares: RUN/config.json and EXPORT/metadata.json.

Each is read, validated and migrated here, once: any `format_version` this
keras-lstm knows (1, before both tasks shared one layout; 2, written today) is
returned as version 2, and anything else is one line naming the file and the
field. Writers go through `write_config` / `write_metadata` (atomic, 0644).
TensorFlow-free: the runtimes, the server and the exporters all read through it.

RUN/ (a training run)::

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
    export/            what `keras-lstm export` writes (metadata.json below)

EXPORT/metadata.json::

    {"format_version": 2, "task": "sentiment" | "translation",
     "preprocessors": {NAME: {"tokenizer": {...}, "max_length": N | null,
                              "start_end": bool, "vocabulary": "FILE"}},
     "labels": [...],                                    sentiment
     "max_output_length": N, "attention": bool,          translation
     "artifacts": {NAME: {"backend": "onnx" | "tflite" | "saved_model", ...}}}

Sentiment has one preprocessor, "text"; translation has "source" and "target".
Each artifact names its file(s) relative to the export folder; nothing may lead
outside it.

>>> check_version(3, "config.json")
Traceback (most recent call last):
...
keras_lstm.core.errors.ConfigError: config.json: format_version 3 is not one this keras-lstm reads (1 to 2); a newer keras-lstm wrote it?
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keras_lstm.core.errors import ArtifactError, ConfigError
from keras_lstm.core.files import atomic_write_text

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "MODEL_FILE",
    "RENAMED_FIELDS",
    "SPLITS_DIR",
    "VOCABULARY_FILE",
    "check_version",
    "read_config",
    "read_json",
    "read_metadata",
    "require",
    "write_config",
    "write_json",
    "write_metadata",
]

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
VOCABULARY_FILE = "vocabulary.txt"
MODEL_FILE = "model.keras"
SPLITS_DIR = "splits"
# Training-config fields renamed within format version 2: old name -> new name.
# `read_config` (and `TrainingConfig.from_dict`) read the old names as the new.
RENAMED_FIELDS = {"skip_bad_lines": "skip_bad_rows"}


def write_json(path: str | Path, value: object) -> Path:
    """Writes `value` as indented UTF-8 JSON, atomically; returns the path."""
    return atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def write_config(run_dir: str | Path, config: dict) -> Path:
    """Writes RUN/config.json at the current format version."""
    return write_json(Path(run_dir) / CONFIG_FILE, {"format_version": FORMAT_VERSION, **config})


def write_metadata(folder: str | Path, metadata: dict) -> Path:
    """Writes EXPORT/metadata.json at the current format version."""
    return write_json(Path(folder) / METADATA_FILE,
                      {"format_version": FORMAT_VERSION, **metadata})


def read_json(path: str | Path, error: type = ConfigError, what: str = "file") -> dict:
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


def check_version(found: object, path: str | Path, error: type = ConfigError) -> None:
    """Refuses a `format_version` this keras-lstm cannot read, naming both versions."""
    if not isinstance(found, int) or isinstance(found, bool) or not 1 <= found <= FORMAT_VERSION:
        raise error(f"{path}: format_version {found!r} is not one this keras-lstm reads "
                    f"(1 to {FORMAT_VERSION}); a newer keras-lstm wrote it?")


def require(mapping: dict, field: str, path: str | Path, error: type = ConfigError) -> Any:
    """`mapping[field]`, or one `error` line naming the file and the missing field."""
    if field not in mapping:
        raise error(f"{path}: field {field!r} is missing")
    return mapping[field]


def read_config(run_dir: str | Path, task: str | None = None) -> dict:
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
        config = _config_from_version_1(config, path)
    training = config.get("training")
    if isinstance(training, dict) and any(name in training for name in RENAMED_FIELDS):
        config = dict(config, training={RENAMED_FIELDS.get(name, name): value
                                         for name, value in training.items()})
    for field in ("training", "model", "preprocessors", "model_file",
                  *(("labels",) if found == "sentiment" else ())):
        require(config, field, path)
    return config


def _config_from_version_1(config, path):
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


def read_metadata(folder: str | Path) -> dict:
    """Reads EXPORT/metadata.json (any format version, as version 2).

    Raises:
        ArtifactError: not an export folder, not JSON, a version this
            keras-lstm cannot read, or a missing field.
    """
    path = Path(folder) / METADATA_FILE
    if not Path(folder).is_dir() or not path.is_file():
        raise ArtifactError(f"{folder}: not an export folder (no {METADATA_FILE})")
    metadata = read_json(path, ArtifactError)
    check_version(metadata.get("format_version", 1), path, ArtifactError)
    task = require(metadata, "task", path, ArtifactError)
    if task not in ("sentiment", "translation"):
        raise ArtifactError(f"{path}: unknown task {task!r}")
    if metadata.get("format_version", 1) == 1:
        metadata = _metadata_from_version_1(metadata, path)
    for field in ("preprocessors", "artifacts", *(("labels",) if task == "sentiment" else
                                                  ("max_output_length", "attention"))):
        require(metadata, field, path, ArtifactError)
    for field in ("preprocessors", "artifacts"):  # every reader walks these: no traceback
        if not isinstance(metadata[field], dict):
            raise ArtifactError(f"{path}: field {field!r} must be a JSON object")
    return metadata


def _metadata_from_version_1(metadata, path):
    """A version-1 metadata.json as version 2."""
    new = dict(metadata, format_version=FORMAT_VERSION)
    if metadata["task"] == "sentiment":
        new["preprocessors"] = {"text": {
            "tokenizer": require(metadata, "tokenizer", path, ArtifactError),
            "max_length": require(metadata, "max_length", path, ArtifactError),
            "start_end": False, "vocabulary": metadata.get("vocabulary", VOCABULARY_FILE)}}
        require(metadata, "artifacts", path, ArtifactError)
        return new
    new["preprocessors"] = {
        "source": {"tokenizer": require(metadata, "source_tokenizer", path, ArtifactError),
                   "max_length": None, "start_end": False,
                   "vocabulary": "source_vocabulary.txt"},
        "target": {"tokenizer": require(metadata, "target_tokenizer", path, ArtifactError),
                   "max_length": None, "start_end": True, "vocabulary": "target_vocabulary.txt"}}
    new["artifacts"] = {fmt: {"backend": fmt, **metadata[fmt]}
                        for fmt in metadata.get("formats", ["onnx"]) if fmt in metadata}
    return new
