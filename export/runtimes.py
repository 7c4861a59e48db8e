"""Serving exported sentiment models: `load(path, backend)` → `.predict(texts)`.

The onnxruntime and TFLite backends import neither TensorFlow nor Keras: they
tokenize with `lstm_text.PyTokenizer`, which gives the same ids as the
in-graph tokenizer. Every backend is safe to share between threads.

Example:

>>> runtime = load("runs/demo/sentiment/export", backend="onnx")
>>> runtime.predict(["质量很好"])
[{'label': 'positive', 'probabilities': {'negative': 0.02, 'positive': 0.98}}]
"""

import threading
from pathlib import Path

import numpy as np

from export.metadata import METADATA_FILE, VOCABULARY_FILE, ArtifactError, read_metadata
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary
from lstm_text.vocabulary import OOV_ID, PAD_ID

BACKENDS = ("onnx", "tflite", "saved_model", "keras")


class Runtime:
    """Shared by every backend: tokenization, batching and the output format."""

    def __init__(self, folder, metadata):
        self.folder = Path(folder)
        self.metadata = metadata
        self.labels = list(metadata["labels"])
        self.max_length = int(metadata["max_length"])
        self.tokenizer = PyTokenizer(TokenizerConfig.from_dict(metadata["tokenizer"]))
        self.vocabulary = Vocabulary.load(self.folder / VOCABULARY_FILE)

    def encode(self, texts):
        """Token ids per text (cut to max_length; an empty text is [OOV])."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of texts, not one string")
        rows = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, expected str")
            rows.append(self.vocabulary.encode(self.tokenizer.tokenize(text))[: self.max_length]
                        or [OOV_ID])
        return rows

    def predict_proba(self, texts):
        raise NotImplementedError

    def predict(self, texts):
        """Label and probabilities (6 decimals, as `SentimentClassifier.predict`) per text."""
        probabilities = self.predict_proba(texts)
        return [
            {"label": self.labels[int(np.argmax(p))],
             "probabilities": {label: round(float(v), 6) for label, v in zip(self.labels, p)}}
            for p in probabilities
        ]


def pad(rows):
    out = np.full((len(rows), max((len(r) for r in rows), default=1)), PAD_ID, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class OnnxRuntime(Runtime):
    """onnxruntime on a padded batch: the LSTM op's sequence_lens keeps it exact."""

    def __init__(self, folder, metadata, artifact="model.onnx"):
        super().__init__(folder, metadata)
        import onnxruntime

        path = self.folder / artifact
        options = onnxruntime.SessionOptions()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for bad files
            raise ArtifactError(f"{path}: cannot load the ONNX model "
                                f"({str(error).splitlines()[0][:200]})") from None
        self.input_name = self.session.get_inputs()[0].name

    def run_ids(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"token ids must be an integer array (batch, time), got "
                             f"{ids.dtype} {ids.shape}")
        return self.session.run(None, {self.input_name: ids.astype(np.int32)})[0]

    def predict_proba(self, texts, batch_size=64):
        rows = self.encode(texts)
        out = [self.run_ids(pad(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


class TFLiteRuntime(Runtime):
    """The TFLite interpreter (ai_edge_litert), one unpadded sequence per invocation."""

    def __init__(self, folder, metadata, artifact="model_float32.tflite"):
        super().__init__(folder, metadata)
        from ai_edge_litert.interpreter import Interpreter

        path = self.folder / artifact
        try:
            self.interpreter = Interpreter(model_path=str(path))
        except Exception as error:
            raise ArtifactError(f"{path}: cannot load the TFLite model "
                                f"({str(error).splitlines()[0][:200]})") from None
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.lock = threading.Lock()
        self.length = None

    def run_ids(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) == 0:
            raise ValueError(f"token ids must be a non-empty 1-D integer array, got "
                             f"{ids.dtype} {ids.shape}")
        with self.lock:  # an interpreter is not thread-safe
            if self.length != len(ids):
                self.interpreter.resize_tensor_input(self.input_index, [1, len(ids)])
                self.interpreter.allocate_tensors()
                self.length = len(ids)
            # The fused LSTM keeps its state in variables between invocations.
            self.interpreter.reset_all_variables()
            self.interpreter.set_tensor(self.input_index, ids.astype(np.int32)[None, :])
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output_index)[0].copy()

    def predict_proba(self, texts):
        rows = self.encode(texts)
        if not rows:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.stack([self.run_ids(row) for row in rows])


class SavedModelRuntime(Runtime):
    """The SavedModel's `serving_default` signature: raw strings in (tokenized in the graph)."""

    def __init__(self, folder, metadata, artifact="saved_model"):
        super().__init__(folder, metadata)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the signature uses)

        path = self.folder / artifact
        try:
            self.model = tf.saved_model.load(str(path))
        except Exception as error:
            raise ArtifactError(f"{path}: cannot load the SavedModel "
                                f"({str(error).splitlines()[0][:200]})") from None
        self.serve = self.model.signatures["serving_default"]
        self.tf = tf

    def predict_proba(self, texts):
        texts = list(texts)
        self.encode(texts)  # the same type checks as the other backends
        if not texts:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.serve(texts=self.tf.constant(texts))["probabilities"].numpy()


class KerasRuntime(Runtime):
    """The trained Keras model of the run folder the export came from."""

    def __init__(self, folder, metadata, artifact=None):
        super().__init__(folder, metadata)
        from keras_lstm.runs import load_model

        self.model = load_model(self.folder.parent)

    def predict_proba(self, texts, batch_size=64):
        rows = self.encode(texts)
        out = [np.asarray(self.model(pad(rows[i:i + batch_size]), training=False))
               for i in range(0, len(rows), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


_CLASSES = {"onnx": OnnxRuntime, "tflite": TFLiteRuntime, "saved_model": SavedModelRuntime,
            "keras": KerasRuntime}


def load(path, backend=None, artifact=None):
    """Loads an exported model for serving.

    Args:
        path: The export folder (with metadata.json), or one artifact in it
            (`model.onnx`, `model_*.tflite`, `saved_model`).
        backend: "onnx", "tflite", "saved_model" or "keras"; guessed from
            `path` when it names an artifact, else "onnx".
        artifact: The artifact's name in the folder (e.g. "model_int8.tflite").

    Raises:
        ArtifactError: not an export folder, or a damaged artifact.
    """
    path = Path(path)
    folder = path
    if not (path / METADATA_FILE).is_file() and path.parent.joinpath(METADATA_FILE).is_file():
        folder, artifact = path.parent, path.name
        if backend is None:
            backend = ("onnx" if path.suffix == ".onnx" else
                       "tflite" if path.suffix == ".tflite" else "saved_model")
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or folder")
    metadata = read_metadata(folder)
    backend = backend or "onnx"
    if backend not in _CLASSES:
        raise ArtifactError(f"backend must be one of {BACKENDS}, got {backend!r}")
    kwargs = {"artifact": artifact} if artifact else {}
    return _CLASSES[backend](folder, metadata, **kwargs)
