"""Which graph `keras_lstm.layers.LSTM` traces: `graph_target`, or the Keras exporter tracing it.

The layer's math is the same for every converter; the graph is not
(`keras_lstm.layers.recurrence` tells why there are three). A context
variable set by `graph_target` names the graph; without it the layer reads
the stack frames of the trace to find which Keras exporter is calling
(`keras_exporter`), because Keras 3 has no hook that tells a layer which
converter will read its graph. The warnings say, under
`model.export(format="litert")`, why a layer will not fuse.
"""

import contextlib
import contextvars
import os
import sys
import warnings

import keras.src.export as keras_export_package
import tensorflow as tf

__all__ = ["GRAPH_TARGETS", "LITERT_CALL", "current_target", "graph_target", "keras_exporter",
           "warn_dynamic_batch", "warn_not_fused"]

GRAPH_TARGETS = ("train", "onnx", "tflite")
_graph_target = contextvars.ContextVar("keras_lstm_graph_target", default=None)


@contextlib.contextmanager
def graph_target(target):
    """Traces `keras_lstm.layers.LSTM` for a converter inside this block.

    The layer's math is the same for every target; the graph differs:
    `"train"` (default) is the fastest to train, `"onnx"` is the graph
    tf2onnx fuses into one ONNX `LSTM` op (with `sequence_lens` for masks),
    `"tflite"` is the function the TFLite converter fuses into
    `UNIDIRECTIONAL_SEQUENCE_LSTM` (masks and returned states fall back to a
    builtins-only loop). Outside any block the layer picks the target itself:
    `"onnx"` under `model.export(format="onnx")`, `"tflite"` under Keras'
    other exporters (`ExportArchive`, `format="litert"` or
    `"tf_saved_model"`), `"train"` otherwise. Use the block for converters
    called outside Keras (e.g. `tf2onnx.convert.from_function`).

    Example:

    >>> with graph_target("onnx"):
    ...     onnx_model, _ = tf2onnx.convert.from_function(fn, input_signature)
    """
    if target not in GRAPH_TARGETS:
        raise ValueError(f"graph target must be one of {GRAPH_TARGETS}, got {target!r}")
    token = _graph_target.set(target)
    try:
        yield
    finally:
        _graph_target.reset(token)


_KERAS_EXPORT_DIR = os.path.dirname(keras_export_package.__file__) + os.sep
_KERAS_SRC_DIR = os.path.dirname(os.path.dirname(_KERAS_EXPORT_DIR.rstrip(os.sep))) + os.sep


def keras_exporter():
    """Which Keras exporter is tracing this call: "onnx", "litert", "archive" or None.

    Keras 3 has no hook that tells a layer which converter will read its
    graph, so the frames of the trace are read: a frame in
    `keras/src/export/onnx.py` is `model.export(format="onnx")`, one in
    `litert.py` is `format="litert"`, any other in `keras/src/export/` is an
    `ExportArchive` (or `format="tf_saved_model"`). A trace that SavedModel
    writing makes of a layer's own call (`_trackable_children`, batch of
    None) is not what the converter reads: it counts as "archive".
    """
    frame = sys._getframe(1)
    found, saving_children = None, False
    while frame is not None:
        filename = frame.f_code.co_filename
        if frame.f_code.co_name == "_trackable_children" and filename.startswith(_KERAS_SRC_DIR):
            saving_children = True
        if filename.startswith(_KERAS_EXPORT_DIR):
            module = os.path.basename(filename)
            if module == "onnx.py":
                return "onnx"
            if module == "litert.py":
                found = "litert"
            elif found is None:
                found = "archive"
        frame = frame.f_back
    return "archive" if found == "litert" and saving_children else found


def current_target():
    """The graph to trace: `graph_target`'s, else the one the tracing exporter fuses."""
    target = _graph_target.get()
    if target is not None:
        return target
    if tf.executing_eagerly():
        return "train"
    exporter = keras_exporter()
    if exporter == "onnx":
        return "onnx"
    if exporter is not None:
        return "tflite"
    return "train"


LITERT_CALL = ('model.export(path, format="litert", '
               'input_signature=[keras.InputSpec(shape=(1, None), dtype="int32")])')


def warn_dynamic_batch(layer):
    """Warns, under `model.export(format="litert")`, that a batch of None cannot fuse."""
    if _graph_target.get() is None and keras_exporter() == "litert":
        warnings.warn(
            f"keras_lstm LSTM {layer.name!r}: the TFLite converter fuses the LSTM into "
            "UNIDIRECTIONAL_SEQUENCE_LSTM only for a fixed batch size; with a batch of None "
            "it stays a loop with Flex ops. Export with a fixed batch, e.g. for token ids: "
            f"{LITERT_CALL}",
            stacklevel=2,
        )


def warn_not_fused(layer, masked, fusable):
    """Warns, under `model.export(format="litert")`, why this layer will not fuse."""
    if _graph_target.get() is not None or keras_exporter() != "litert":
        return
    if not fusable:
        reason = ("only tanh/sigmoid activations without recurrent_dropout become "
                  "UNIDIRECTIONAL_SEQUENCE_LSTM; it stays a loop")
    elif masked:
        reason = ("a mask (e.g. Embedding(mask_zero=True)) keeps it a loop; export a model "
                  "without the mask at batch 1 for the fused op")
    elif layer.return_state or layer.stateful:
        reason = "returned or stateful states keep it a loop"
    else:
        return
    warnings.warn(f"keras_lstm LSTM {layer.name!r}: {reason}.", stacklevel=2)
