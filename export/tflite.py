"""TFLite export: builtins only, LSTMs fused into UNIDIRECTIONAL_SEQUENCE_LSTM, four variants."""

import tempfile

import numpy as np
import tensorflow as tf

from export.graph import exportable
from keras_lstm.layers import graph_target

VARIANTS = ("float32", "dynamic_range", "float16", "int8")
BATCH_SIZE = 1


def export_tflite(model, variant="float32", representative_ids=None):
    """Converts a token-ids → probabilities model to a TFLite flatbuffer.

    The model takes one unpadded sequence, `(1, length)` int32 ids (resize the
    input per sequence); the fused op keeps state between invocations, so
    call `reset_all_variables()` before each sequence.

    Args:
        model: The Keras model (either LSTM kind).
        variant: "float32", "dynamic_range" (int8 weights), "float16"
            (float16 weights) or "int8" (int8 weights and activations,
            calibrated on `representative_ids`; float input/output).
        representative_ids: For "int8": a list of 1-D int arrays (real texts).

    Returns:
        The flatbuffer bytes.
    """
    if variant not in VARIANTS:
        raise ValueError(f"TFLite variant must be one of {VARIANTS}, got {variant!r}")
    model = exportable(model, mask=False)
    with tempfile.TemporaryDirectory() as folder, tf.device("/CPU:0"), graph_target("tflite"):
        import keras

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve", lambda ids: model(ids, training=False),
            input_signature=[tf.TensorSpec([BATCH_SIZE, None], tf.int32, name="token_ids")])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if variant == "int8":
            if not representative_ids:
                raise ValueError("the int8 variant needs representative_ids")

            def representative():
                for ids in representative_ids:
                    yield [np.asarray(ids, np.int32)[None, :]]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
        # The int8 kernel quantizes C_t to int16 over the clip range: keep it there.
        return flatbuffer if variant == "int8" else unclip_lstm_cells(flatbuffer)


def unclip_lstm_cells(flatbuffer):
    """Turns off the cell clipping the converter gives every fused LSTM op.

    The TFLite converter fuses a Keras-style LSTM with `cell_clip=10`, so
    `UNIDIRECTIONAL_SEQUENCE_LSTM` clamps C_t to [-10, 10], which the notes'
    equations (and Keras) do not: a saturated cell drifts from Keras, and a
    decoder handed a large state diverges. 0 means no clipping. Only for float
    kernels: the int8 kernel scales its int16 cell state by the clip range.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    changed = False
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if op.builtinOptionsType == schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions:
                changed |= op.builtinOptions.cellClip != 0.0
                op.builtinOptions.cellClip = 0.0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else flatbuffer


def lstm_cell_clips(flatbuffer):
    """The `cell_clip` option of every fused LSTM op in a TFLite model (0: none)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    return [op.builtinOptions.cellClip for subgraph in model.subgraphs
            for op in subgraph.operators
            if op.builtinOptionsType == schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions]


def op_names(flatbuffer):
    """The op names in a TFLite model (e.g. to check fusion and builtins only)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})
