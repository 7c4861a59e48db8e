"""The SavedModel backend of both tasks: the exported signatures, tokenized in the graph (needs TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_lstm.core.errors import ArtifactError, ConfigError
from keras_lstm.runtimes.base import SentimentRuntime, TranslationRuntime, id_batch, register
from lstm_text.preprocessor import check_texts

__all__ = ["SavedModelSentiment", "SavedModelTranslation"]


@register
class SavedModelSentiment(SentimentRuntime):
    """The SavedModel's `serving_default` signature: raw strings in, tokenized in the graph."""

    backend = "saved_model"

    def __init__(self, folder: str | Path, metadata: dict, artifact: str = "saved_model",
                 **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.tf, model = _saved_model(self, self.file(artifact))
        self.serve = model.signatures["serving_default"]
        self.serve_ids = model.signatures.get("token_ids")  # ids → probabilities

    def run_ids(self, ids: np.ndarray) -> np.ndarray:
        if self.serve_ids is None:
            raise ArtifactError(f"{self.folder}: this SavedModel has no token_ids signature "
                                "(export it again)")
        ids = self.tf.constant(id_batch(ids))
        return self.serve_ids(token_ids=ids)["probabilities"].numpy()

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities `(len(texts), labels)`: the whole batch through the graph."""
        texts = check_texts(texts)  # tokenized in the graph: only the type checks here
        if not texts:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.serve(texts=self.tf.constant(texts))["probabilities"].numpy()


@register
class SavedModelTranslation(TranslationRuntime):
    """The SavedModel's `translate` signature (the greedy loop in the graph); needs TensorFlow."""

    backend = "saved_model"
    gives_attention = False  # the signature gives translations only
    greedy_only = True  # the default decoding too: the graph holds the greedy loop only

    def __init__(self, folder: str | Path, metadata: dict, artifact: str | None = None,
                 **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        if not self.spec:
            raise ArtifactError(f"{self.folder}: no saved_model export")
        path = self.file(self.spec.get("file") or self.spec.get("folder", "saved_model"))
        self.tf, model = _saved_model(self, path)
        self.signature = model.signatures[self.spec.get("signature", "translate")]

    def attention_map(self, text: str) -> dict:
        raise ConfigError("attention: the saved_model runtime decodes in its graph and gives no "
                          "attention weights; use the onnx, tflite or keras runtime")

    def translate(self, texts: Sequence[str], beam: int | None = None,
                  length_penalty: float | None = None) -> list[str]:
        """Greedy translations of `texts` (the signature has no beam search).

        Unlike the other runtimes, the default here is greedy: it is all the
        graph can do. An explicit `beam` over 1 is refused.
        """
        if beam not in (None, 1):
            raise ConfigError("--beam: the SavedModel's translate signature decodes greedily "
                              "(beam 1); use the onnx or tflite runtime for beam search")
        texts = list(texts)
        if not texts:
            return []
        result = self.signature(texts=self.tf.constant(texts, self.tf.string))
        return [t.decode("utf-8") for t in result["translations"].numpy()]


def _saved_model(runtime, path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the signatures use)

    return tf, runtime.load_model(tf.saved_model.load, path, "SavedModel")
