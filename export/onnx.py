"""ONNX export through tf2onnx: one fused `LSTM` op per LSTM layer, dynamic batch and length."""

import tensorflow as tf

from export.graph import exportable
from keras_lstm.layers import graph_target

__all__ = ["INPUT_NAME", "OPSET", "export_onnx", "op_types"]

OPSET = 17
INPUT_NAME = "token_ids"


def export_onnx(model, path, opset=OPSET):
    """Converts a token-ids → probabilities model to ONNX at `path`.

    The padding mask becomes each LSTM op's `sequence_lens`, so a right-padded
    batch gives exactly the masked Keras result. Runs on the CPU.

    Returns:
        The ONNX `ModelProto`.
    """
    import tf2onnx

    model = exportable(model, mask=True)
    with tf.device("/CPU:0"), graph_target("onnx"):
        function = tf.function(lambda ids: model(ids, training=False))
        proto, _ = tf2onnx.convert.from_function(
            function,
            input_signature=[tf.TensorSpec([None, None], tf.int32, name=INPUT_NAME)],
            opset=opset,
            output_path=str(path),
        )
    return proto


def op_types(proto):
    """Op types of the main graph (the Loop bodies' ops are not counted)."""
    return [node.op_type for node in proto.graph.node]
