"""Layer 2, serving trained models without TensorFlow: `load(path, backend)` → a runtime with `.predict` or `.translate`.

One base, `Runtime`, holds what every backend of every task shares: the
metadata, the preprocessors (text → ids, `lstm_text.Preprocessor`), a lock,
and the one place where a damaged artifact becomes an `ArtifactError` line.
`SentimentRuntime` adds `.predict_proba`/`.predict` and `.explain` (token
weights by occlusion, `keras_lstm.explanation`, through `.predict_ids`);
`TranslationRuntime` adds `.translate` (greedy or beam search in
`lstm_text.decoding`, the same code for every backend). Each backend
supplies only how its model runs (a sentiment backend: `run_ids`).

The onnxruntime and TFLite backends import neither TensorFlow nor Keras.
Every runtime is safe to share between threads.

Example (after `keras-lstm demo`, so not run as a doctest):

>>> runtime = load("runs/demo/sentiment/export", backend="onnx")  # doctest: +SKIP
>>> runtime.predict(["质量很好"])  # doctest: +SKIP
[{'label': 'positive', 'probabilities': {'negative': 0.02, 'positive': 0.98}}]
>>> load("runs/demo/translation/export", backend="tflite").translate(["15:30"], beam=4)  # doctest: +SKIP
['3:30 PM']
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from keras_lstm.core.errors import ArtifactError, ConfigError
from keras_lstm.core.schemas import CONFIG_FILE, METADATA_FILE, read_config, read_metadata
from keras_lstm.runtimes.base import RUNTIMES, Runtime, SentimentRuntime, TranslationRuntime
from keras_lstm.runtimes.onnx import OnnxSentiment, OnnxTranslation
from keras_lstm.runtimes.saved_model import SavedModelSentiment, SavedModelTranslation
from keras_lstm.runtimes.tflite import TFLiteSentiment, TFLiteTranslation

__all__ = [
    "BACKENDS", "OnnxSentiment", "OnnxTranslation", "Runtime", "SavedModelSentiment",
    "SavedModelTranslation", "SentimentRuntime", "TFLiteSentiment", "TFLiteTranslation",
    "TranslationRuntime", "backend_for", "load", "runtime_class",
]

BACKENDS = ("onnx", "tflite", "saved_model", "keras")
PLUGINS = "keras_lstm.runtimes"  # entry-point group: backends that live in higher layers


def runtime_class(task: str, backend: str) -> type:
    """The registered runtime class of `(task, backend)`.

    The backends of this layer register when this package is imported. The
    Keras backend lives with TensorFlow (`keras_lstm.inference`) and registers
    itself when that module is imported; a backend not registered yet is
    looked up among the `keras_lstm.runtimes` entry points (pyproject.toml),
    the way pytest finds its plugins, so this layer never imports the ones above.

    Raises:
        ConfigError: no runtime of that task and backend is installed.
    """
    if (task, backend) not in RUNTIMES:
        for entry in importlib.metadata.entry_points(group=PLUGINS, name=backend):
            try:
                entry.load()
            except ImportError as cause:
                raise ConfigError(f"--runtime {backend}: needs the training install "
                                  f"(pip install 'keras-lstm[train]'): {cause}") from None
    if (task, backend) not in RUNTIMES:
        raise ConfigError(f"--runtime {backend}: no {backend} runtime for {task} is installed "
                          f"(have {', '.join(sorted(b for t, b in RUNTIMES if t == task))})")
    return RUNTIMES[(task, backend)]


def _backend_of(artifact):
    suffix = Path(artifact).suffix
    return "onnx" if suffix == ".onnx" else "tflite" if suffix == ".tflite" else "saved_model"


def backend_for(path: str | Path, backend: str | None = None,
                artifact: str | None = None) -> str:
    """The backend `load(path, backend, artifact)` uses: `backend` if given, else the
    artifact's (by its name, or `path`'s when it is one artifact of an export), "keras" for
    a run folder, else "onnx". Reads no file but checks which exist."""
    if backend is not None:
        return backend
    path = Path(path)
    if artifact:
        return _backend_of(artifact)
    if (path / CONFIG_FILE).is_file():
        return "keras"
    if not (path / METADATA_FILE).is_file() and (path.parent / METADATA_FILE).is_file():
        return _backend_of(path.name)
    return "onnx"


def load(path: str | Path, backend: str | None = None, artifact: str | None = None) -> Runtime:
    """Loads a trained model for serving: the runtime of its task and backend.

    Args:
        path: An export folder (with metadata.json), one artifact in it
            (`model.onnx`, `model_int8.tflite`, `saved_model`, ...), or a run
            folder (its Keras model, or with another backend its `export/`).
        backend: "onnx", "tflite", "saved_model" or "keras"; default: guessed
            from an artifact's name, "keras" for a run folder, else "onnx".
        artifact: A sentiment artifact's file name in the folder (e.g.
            "model_int8.tflite"); translation exports have one per backend.

    Returns:
        A `SentimentRuntime` (`.predict`, `.predict_proba`) or a
        `TranslationRuntime` (`.translate`).

    Raises:
        ArtifactError, ConfigError: no such folder, not an export or run
            folder, a damaged artifact, or an unknown backend.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or folder")
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"--runtime: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    backend = backend_for(path, backend, artifact)
    if (path / CONFIG_FILE).is_file():  # a run folder
        run_dir = path
        config = read_config(run_dir)
        if backend == "keras":
            metadata = {"task": config["task"], "preprocessors": config["preprocessors"],
                        "artifacts": {}, "labels": config.get("labels"),
                        "max_output_length": config.get("max_output_length", config[
                            "training"].get("max_output_length", 40)),
                        "attention": config["model"].get("attention", False)}
            return runtime_class(config["task"], "keras")(run_dir, metadata, run_dir=run_dir,
                                                        training=config["training"])
        path = path / "export"
    folder = path
    if not (path / METADATA_FILE).is_file() and (path.parent / METADATA_FILE).is_file():
        folder, artifact = path.parent, path.name
    metadata = read_metadata(folder)
    run_dir = folder.parent if (folder.parent / CONFIG_FILE).is_file() else None
    training = read_config(run_dir)["training"] if run_dir else None
    if backend == "keras" and run_dir is None:
        raise ArtifactError(f"{folder}: the keras runtime needs the run folder around the export")
    kwargs = {"artifact": artifact} if artifact else {}
    return runtime_class(metadata["task"], backend)(folder, metadata, run_dir=run_dir,
                                                  training=training, **kwargs)
