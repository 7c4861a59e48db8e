"""Exporters (SavedModel, TFLite, ONNX), the runtimes that load them, and verification.

Importing `export` or `keras_lstm.runtimes` does not import TensorFlow: a server
or a phone's host code can serve the ONNX and TFLite artifacts without it.
The exporters (`export.artifacts`, `export.onnx`, `export.tflite`,
`export.saved_model`) need TensorFlow and keras_lstm.
"""

import logging

__all__ = []


class _KnownNoise(logging.Filter):
    """Drops two converter warnings that are expected and harmless here.

    * TensorFlow warns that it cannot serialise the in-graph vocabulary
      table's initializer into a SavedModel's collections; the table is
      restored from the SavedModel's assets all the same (the runtimes'
      round-trip tests load it).
    * tf2onnx warns that a reversed LSTM is not part of a bidirectional pair
      when the mask made Keras reverse each sequence by its length; the
      backward LSTM is then its own ONNX op, exact (tested).
    """

    MESSAGES = ("serializing table_initializer", "isn't the part of bi-rnn")

    def filter(self, record):
        message = record.getMessage()
        return not any(text in message for text in self.MESSAGES)


for _name in ("tensorflow", "tf2onnx.rewriter.rnn_utils"):
    logging.getLogger(_name).addFilter(_KnownNoise())
