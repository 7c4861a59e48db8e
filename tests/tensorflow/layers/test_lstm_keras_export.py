"""Keras' own exporters on models holding keras_lstm.layers.LSTM, without graph_target."""

import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.layers import LSTM
from keras_lstm.layers.graph_targets import LITERT_CALL

ATOL = 1e-5
FEATURES, UNITS = 4, 5
ROWS = ([3, 4, 5], [7, 8, 9, 10, 11, 12])
FIXED_BATCH = [keras.InputSpec(shape=(1, None), dtype="int32")]


def build(kind, bidirectional, mask_zero=False):
    keras.utils.set_random_seed(2)
    layer = keras.layers.Bidirectional(LSTM(UNITS)) if bidirectional else LSTM(UNITS)
    embedding = keras.layers.Embedding(20, FEATURES, mask_zero=mask_zero)
    if kind == "sequential":
        model = keras.Sequential([keras.Input((None,), dtype="int32"), embedding, layer,
                                  keras.layers.Dense(3)])
    else:
        ids = keras.Input((None,), dtype="int32")
        model = keras.Model(ids, keras.layers.Dense(3)(layer(embedding(ids))))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    model(np.array([ROWS[0]]))  # Keras' ONNX export wants a called model
    return model


def tflite_ops_and_outputs(content, rows):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)  # builtins only: no Flex delegate
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    index = interpreter.get_input_details()[0]["index"]
    outputs = []
    for row in rows:
        interpreter.resize_tensor_input(index, [1, len(row)])
        interpreter.allocate_tensors()
        interpreter.reset_all_variables()
        interpreter.set_tensor(index, np.array([row], "int32"))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return ops, outputs


def assert_fused_and_right(ops, outputs, model):
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops
    assert "WHILE" not in ops and not any(op.startswith("Flex") for op in ops)
    for row, result in zip(ROWS, outputs):
        np.testing.assert_allclose(result, model(np.array([row])), atol=ATOL)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_model_export_litert_gives_fused_lstm(tmp_path, kind, bidirectional):
    model = build(kind, bidirectional)
    path = str(tmp_path / "model.tflite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.export(path, format="litert", input_signature=FIXED_BATCH, verbose=False)
    assert not [w for w in caught if "keras_lstm" in str(w.message)]
    assert_fused_and_right(*tflite_ops_and_outputs(open(path, "rb").read(), ROWS), model)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_export_archive_then_builtins_converter_gives_fused_lstm(tmp_path, kind, bidirectional):
    model = build(kind, bidirectional)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.__call__,
                         input_signature=[tf.TensorSpec([1, None], tf.int32)])
    archive.write_out(str(tmp_path), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    assert_fused_and_right(*tflite_ops_and_outputs(converter.convert(), ROWS), model)


def test_model_export_litert_with_a_batch_of_none_warns_with_the_call_that_works(tmp_path):
    model = build("functional", False)
    with pytest.warns(UserWarning, match=re.escape(LITERT_CALL)):
        model.export(str(tmp_path / "model.tflite"), format="litert", verbose=False)


def test_model_export_litert_with_a_mask_warns_and_stays_correct(tmp_path):
    model = build("functional", False, mask_zero=True)
    path = str(tmp_path / "model.tflite")
    with pytest.warns(UserWarning, match="a mask .* keeps it a loop"):
        model.export(path, format="litert", input_signature=FIXED_BATCH, verbose=False)
    ops, outputs = tflite_ops_and_outputs(open(path, "rb").read(), ROWS)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops
    for row, result in zip(ROWS, outputs):
        np.testing.assert_allclose(result, model(np.array([row])), atol=ATOL)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind, mask_zero", [("sequential", False), ("functional", True)])
def test_model_export_onnx_gives_fused_lstm(tmp_path, kind, mask_zero, bidirectional):
    import onnx
    import onnxruntime

    model = build(kind, bidirectional, mask_zero)
    path = str(tmp_path / "model.onnx")
    model.export(path, format="onnx", verbose=False)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    # A masked Bidirectional is one op per direction, an unmasked one a single op.
    assert ops.count("LSTM") == (2 if bidirectional and mask_zero else 1)
    assert "Loop" not in ops
    session = onnxruntime.InferenceSession(path)
    ids = np.array([[3, 4, 5, 6, 0, 0], [0, 0, 9, 10, 11, 12], [13, 0, 14, 0, 0, 15]], "int32")
    name = session.get_inputs()[0].name
    np.testing.assert_allclose(session.run(None, {name: ids})[0], model(ids), atol=ATOL)


def test_graph_target_still_overrides_the_exporter(tmp_path):
    from keras_lstm.layers import graph_target

    model = build("functional", False)
    path = str(tmp_path / "model.tflite")
    with graph_target("train"):
        model.export(path, format="litert", input_signature=FIXED_BATCH, verbose=False)
    ops, _ = tflite_ops_and_outputs(open(path, "rb").read(), [])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops and "WHILE" in ops


@pytest.mark.parametrize("mask_zero", [False, True])
def test_model_export_tf_saved_model_serves_keras_numbers_at_any_batch(tmp_path, mask_zero):
    # Traced under Keras' exporter the layer is the TFLite-fusable function; TensorFlow runs it
    # as it is, with a dynamic batch and length.
    model = build("functional", True, mask_zero)
    model.export(str(tmp_path), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path))
    ids = np.array([[3, 4, 5, 6, 0, 0], [0, 0, 9, 10, 11, 12], [13, 0, 14, 0, 0, 15]], "int32")
    for batch in (ids, ids[:1, :4]):
        np.testing.assert_allclose(loaded.serve(tf.constant(batch)), model(batch), atol=ATOL)
