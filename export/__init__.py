"""Exporters (SavedModel, TFLite, ONNX), the runtimes that load them, and verification.

Importing `export` or `export.runtimes` does not import TensorFlow: a server
or a phone's host code can serve the ONNX and TFLite artifacts without it.
The exporters (`export.artifacts`, `export.onnx`, `export.tflite`,
`export.saved_model`) need TensorFlow and keras_lstm.
"""
