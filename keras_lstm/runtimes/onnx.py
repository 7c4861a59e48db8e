"""The onnxruntime backend of both tasks: padded batches, TensorFlow-free."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_lstm.runtimes.base import (
    Runtime,
    SentimentRuntime,
    TranslationRuntime,
    id_batch,
    register,
)

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["OnnxSentiment", "OnnxTranslation", "onnx_session"]


@register
class OnnxSentiment(SentimentRuntime):
    """onnxruntime on padded batches: the LSTM op's sequence_lens keeps them exact."""

    backend = "onnx"

    def __init__(self, folder: str | Path, metadata: dict, artifact: str = "model.onnx",
                 **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.session = onnx_session(self, self.file(artifact))
        self.input_name = self.session.get_inputs()[0].name

    def run_ids(self, ids: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: id_batch(ids)})[0]


@register
class OnnxTranslation(TranslationRuntime):
    """onnxruntime: the encoder and the one-step decoder on padded batches."""

    backend = "onnx"

    def __init__(self, folder: str | Path, metadata: dict, artifact: str | None = None,
                 **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.encoder, self.decoder = (onnx_session(self, path) for path in self._files())

    def _encoder(self, source):
        return tuple(self.encoder.run(None, {"source_ids": source}))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, h, c, *weights = self.decoder.run(None, {
            "token": tokens, "h": h, "c": c, "encoder_outputs": outputs, "source_mask": mask})
        return logits, h, c, (weights[0] if weights else None)


def onnx_session(runtime: Runtime, path: str | Path) -> onnxruntime.InferenceSession:
    """An onnxruntime session of `path` on the CPU; a damaged file is one `ArtifactError` line."""
    import onnxruntime

    # onnxruntime's intra-op threads spin after each run by default, taking the cores the
    # caller needs next (tokenizing, a server's event loop): on 2 cores that made a batch
    # of 32 texts cost more per text than one text (`python bench/serve_http.py`).
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return runtime.load_model(lambda p: onnxruntime.InferenceSession(
        p, options, providers=["CPUExecutionProvider"]), path, "ONNX")
