"""TFLite export: builtins only, LSTMs fused into UNIDIRECTIONAL_SEQUENCE_LSTM, four variants.

Every model has one signature, `serving_default` (the key
`Interpreter.get_signature_runner()` and LiteRT's `runSignature(inputs,
outputs)` pick when a model has one), with names instead of the converter's
`output_0`: the sentiment model takes `token_ids` and returns `probabilities`.
"""

import tempfile

import numpy as np
import tensorflow as tf

from export.graph import exportable
from keras_lstm.layers import graph_target

__all__ = [
    "BATCH_SIZE",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "SIGNATURE_KEY",
    "STATE_INPUTS",
    "VARIANTS",
    "export_tflite",
    "lstm_cell_clips",
    "name_lstm_state",
    "op_names",
    "repair_lstm_ops",
]

VARIANTS = ("float32", "dynamic_range", "float16", "int8")
BATCH_SIZE = 1
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "token_ids"
OUTPUT_NAME = "probabilities"


def export_tflite(model, variant="float32", representative_ids=None):
    """Converts a token-ids → probabilities model to a TFLite flatbuffer.

    The model's `serving_default` signature takes `token_ids`, one unpadded
    sequence of `(1, length)` int32 ids (resize the input per sequence), and
    returns `probabilities` `(1, classes)`. The fused op keeps its state
    between invocations, so call `reset_all_variables()` before each sequence.

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
        # A dict names the signature's output (a tensor would be `output_0`).
        archive.add_endpoint(
            SIGNATURE_KEY, lambda ids: {OUTPUT_NAME: model(ids, training=False)},
            input_signature=[tf.TensorSpec([BATCH_SIZE, None], tf.int32, name=INPUT_NAME)])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, [SIGNATURE_KEY])
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
        # The int8 kernel quantizes C_t to int16 over the clip range: keep it there.
        return repair_lstm_ops(converter.convert(), unclip=variant != "int8")


# The inputs of UNIDIRECTIONAL_SEQUENCE_LSTM that hold its state (h, C), as
# variable tensors (tensorflow/lite/kernels/lstm_shared.h).
STATE_INPUTS = (18, 19)


def repair_lstm_ops(flatbuffer, unclip=True):
    """Fixes two things the converter does to every fused LSTM op.

    * **A weight merged into the state.** The converter merges equal constants.
      The op's initial state is a zero constant of shape (batch, units), and a
      weight block of the same shape that is all zeros becomes the same tensor,
      which is the op's state variable. The op then overwrites that "weight"
      with h_t or C_t at every step. It takes 1 unit, whose weight blocks are
      (1, 1), and a block of exact zeros (hand-set, or pruned weights). Each
      such weight input gets its own zero constant again.
    * **The cell clip** (with `unclip=True`). The converter fuses a Keras-style
      LSTM with `cell_clip=10`, so the op clamps C_t to [-10, 10], which the
      notes' equations (and Keras) do not: a saturated cell drifts from Keras,
      and a decoder handed a large state diverges. 0 means no clipping. Only
      for float kernels: the int8 kernel scales its int16 cell state by the
      clip range.

    Returns:
        The flatbuffer, changed only where needed.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    changed = False
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if op.builtinOptionsType != schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions:
                continue
            states = {op.inputs[i] for i in STATE_INPUTS if i < len(op.inputs)}
            for position, tensor in enumerate(op.inputs):
                if position not in STATE_INPUTS and tensor in states:
                    op.inputs[position] = _zero_constant(model, subgraph, tensor)
                    changed = True
            if unclip and op.builtinOptions.cellClip != 0.0:
                op.builtinOptions.cellClip = 0.0
                changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else flatbuffer


def name_lstm_state(flatbuffer, hidden, cell):
    """Renames the `(h, C)` state tensors of the one fused LSTM op in a TFLite model.

    The fused op keeps its state in two variable tensors that the converter
    names after the initial-state constant it replaced (`..._sequence_1/zeros`
    and `.../zeros1`). They cannot be signature inputs or outputs: a function
    that returns h or C is not fused, and LiteRT's Java `runSignature` maps
    signature names to positions in the graph's inputs and outputs, which the
    state tensors are not. A runtime that hands a state from one model to
    another (an encoder to a decoder) finds them by these names instead
    (metadata.json records them).

    Args:
        flatbuffer: A model with exactly one UNIDIRECTIONAL_SEQUENCE_LSTM op.
        hidden: The new name of its hidden state `h` (input 18).
        cell: The new name of its cell state `C` (input 19).

    Returns:
        The flatbuffer with the two tensors renamed.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    ops = [(subgraph, op) for subgraph in model.subgraphs for op in subgraph.operators
           if op.builtinOptionsType == schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions]
    if len(ops) != 1:
        raise ValueError(f"expected one fused UNIDIRECTIONAL_SEQUENCE_LSTM op, found {len(ops)}")
    subgraph, op = ops[0]
    taken = {tensor.name for tensor in subgraph.tensors}
    for position, name in zip(STATE_INPUTS, (hidden, cell)):
        tensor = subgraph.tensors[op.inputs[position]]
        if name.encode() in taken and tensor.name != name.encode():
            raise ValueError(f"the model already has a tensor named {name!r}")
        tensor.name = name.encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _zero_constant(model, subgraph, variable):
    """A new constant tensor like `variable` (its shape and type), all zeros; returns its index."""
    import copy

    from tensorflow.lite.python import schema_py_generated as schema

    tensor = copy.copy(subgraph.tensors[variable])
    zero_point = getattr(tensor.quantization, "zeroPoint", None)
    if zero_point is not None and np.any(np.asarray(zero_point) != 0):
        raise ValueError(f"cannot unshare the quantized state tensor {tensor.name!r}")
    itemsize = {schema.TensorType.FLOAT32: 4, schema.TensorType.FLOAT16: 2,
                schema.TensorType.INT16: 2, schema.TensorType.INT8: 1}[tensor.type]
    buffer = schema.BufferT()
    buffer.data = np.zeros(int(np.prod(tensor.shape)) * itemsize, np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
    tensor.isVariable = False
    tensor.name = tensor.name + b"/unshared_weight"
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


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
