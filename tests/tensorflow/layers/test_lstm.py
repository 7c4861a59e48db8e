"""keras_lstm.layers.LSTM: the notes' equations, Keras parity, gates, saving, export graphs."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm.layers import LSTM, graph_target, recurrence
from tests.tensorflow.layers import twins
from tests.tensorflow.layers.numpy_lstm import numpy_lstm
from tests.tensorflow.layers.twins import outputs_and_gradients, random_weights

ATOL = 1e-5
BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 1])


def inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


def mask_of(lengths, steps=STEPS):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def twin_layers(**kwargs):
    return twins.twin_layers(UNITS, FEATURES, **kwargs)


def assert_all_close(a, b, atol=ATOL):
    twins.assert_all_close(a, b, atol)



MODES = [
    dict(),
    dict(return_sequences=True),
    dict(return_state=True),
    dict(return_sequences=True, return_state=True),
    dict(go_backwards=True, return_sequences=True, return_state=True),
    dict(go_backwards=True),
]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(m) or "last")
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_parity_with_keras_outputs_states_and_gradients(mode, masked, training):
    # training=True takes the hand-written BPTT, training=False autodiff of the loop.
    ours, theirs = twin_layers(**mode)
    kwargs = {"mask": mask_of(LENGTHS)} if masked else {}
    out_a, grad_a = outputs_and_gradients(ours, inputs(), training, **kwargs)
    out_b, grad_b = outputs_and_gradients(theirs, inputs(), training, **kwargs)
    assert_all_close(out_a, out_b)
    assert_all_close(grad_a, grad_b)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_zero_output_for_mask_matches_keras(return_sequences):
    ours, theirs = twin_layers(return_sequences=return_sequences, zero_output_for_mask=True)
    kwargs = {"mask": mask_of(LENGTHS)}
    assert_all_close(outputs_and_gradients(ours, inputs(), True, **kwargs)[0],
                     outputs_and_gradients(theirs, inputs(), True, **kwargs)[0])


def test_initial_state_parity_and_gradient():
    ours, theirs = twin_layers(return_sequences=True, return_state=True)
    rng = np.random.default_rng(3)
    h0, c0 = (tf.constant(rng.normal(size=(BATCH, UNITS)).astype("float32")) for _ in range(2))
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch([h0, c0])
            out = layer(inputs(), initial_state=[h0, c0], training=True)
            loss = sum(tf.reduce_sum(tf.sin(v)) for v in out)
        results.append([*map(np.asarray, out), *map(np.asarray, tape.gradient(loss, [h0, c0]))])
    assert_all_close(*results)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_bidirectional_parity(masked, return_sequences, return_state):
    ours = keras.layers.Bidirectional(LSTM(UNITS, return_sequences=return_sequences,
                                           return_state=return_state))
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=return_sequences,
                                                          return_state=return_state))
    ours.build((None, None, FEATURES))
    theirs.build((None, None, FEATURES))
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    kwargs = {"mask": mask_of(LENGTHS)} if masked else {}
    out_a, grad_a = outputs_and_gradients(ours, inputs(), True, **kwargs)
    out_b, grad_b = outputs_and_gradients(theirs, inputs(), True, **kwargs)
    assert_all_close(out_a, out_b)
    assert_all_close(grad_a, grad_b)


def build_stack(layer_class, bidirectional=False):
    keras.utils.set_random_seed(7)
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(ids)
    first = layer_class(UNITS, return_sequences=True)
    x = (keras.layers.Bidirectional(first) if bidirectional else first)(x)
    x = layer_class(UNITS)(x)
    return keras.Model(ids, keras.layers.Dense(3)(x))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_embedding_mask_model_parity(bidirectional):
    ours, theirs = build_stack(LSTM, bidirectional), build_stack(keras.layers.LSTM, bidirectional)
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    ids = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12], [13, 0, 0, 0, 0, 0]], "int32")
    assert_all_close(*twins.model_outputs_and_gradients((ours, theirs), ids))
    # Padding changes nothing: the first row alone, unpadded.
    np.testing.assert_allclose(ours(ids[:1, :4]), ours(ids)[:1], atol=ATOL)


@pytest.mark.parametrize("kwargs", [
    dict(activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
    dict(use_bias=False, return_sequences=True),
    dict(unroll=True, return_sequences=True, return_state=True),
    dict(unit_forget_bias=False),
])
def test_other_configurations_match_keras(kwargs):
    ours, theirs = twin_layers(**kwargs)
    out_a, grad_a = outputs_and_gradients(ours, inputs(), True)
    out_b, grad_b = outputs_and_gradients(theirs, inputs(), True)
    assert_all_close(out_a, out_b)
    assert_all_close(grad_a, grad_b)


def test_graph_mode_matches_eager():
    ours, _ = twin_layers(return_sequences=True)
    eager = ours(inputs(), mask=mask_of(LENGTHS))
    graph = tf.function(lambda x, m: ours(x, mask=m))(inputs(), mask_of(LENGTHS))
    np.testing.assert_allclose(eager, graph, atol=ATOL)


def test_stateful_carries_state_between_calls_like_keras():
    x = np.random.default_rng(4).normal(size=(2, STEPS, FEATURES)).astype("float32")
    ours, theirs = LSTM(UNITS, stateful=True), keras.layers.LSTM(UNITS, stateful=True)
    ours.build((2, None, FEATURES))
    theirs.build((2, None, FEATURES))
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    first, second = ours(x[:, :3]), ours(x[:, 3:])
    np.testing.assert_allclose(first, theirs(x[:, :3]), atol=ATOL)
    np.testing.assert_allclose(second, theirs(x[:, 3:]), atol=ATOL)
    fresh = LSTM(UNITS)
    fresh.build((2, None, FEATURES))
    fresh.set_weights(ours.get_weights()[:3])
    np.testing.assert_allclose(second, fresh(x), atol=ATOL)  # two halves = one whole
    ours.reset_state()
    np.testing.assert_allclose(ours(x[:, :3]), first, atol=ATOL)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_pass_matches_numpy_equations(go_backwards, masked):
    layer = LSTM(UNITS, return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer.build((None, None, FEATURES))
    random_weights(layer)
    rng = np.random.default_rng(5)
    h0, c0 = rng.normal(size=(2, BATCH, UNITS)).astype("float32")
    lengths = LENGTHS if masked else None
    out, h, c = layer(inputs(), initial_state=[h0, c0],
                      mask=mask_of(LENGTHS) if masked else None)
    ref = numpy_lstm(inputs(), *layer.get_weights(), h0=h0, c0=c0, lengths=lengths,
                     go_backwards=go_backwards)
    np.testing.assert_allclose(h, ref["h"], atol=ATOL)
    np.testing.assert_allclose(c, ref["c"], atol=ATOL)
    np.testing.assert_allclose(out, ref["outputs"], atol=ATOL)


def test_correctness_with_constant_weights_pins_numbers():
    layer = LSTM(2, kernel_initializer=keras.initializers.Constant(0.1),
                 recurrent_initializer=keras.initializers.Constant(-0.2),
                 bias_initializer=keras.initializers.Constant(0.05), unit_forget_bias=False,
                 return_sequences=True)
    x = np.arange(12, dtype="float32").reshape(2, 3, 2) / 10.0
    out = np.asarray(layer(x))
    # Computed once with tests/tensorflow/layers/numpy_lstm.py from the six equations.
    expected = np.array([
        [[0.015889, 0.015889], [0.033985, 0.033985], [0.053716, 0.053716]],
        [[0.052706, 0.052706], [0.087844, 0.087844], [0.116448, 0.116448]],
    ])
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_gates_match_numpy_reference(go_backwards):
    layer = LSTM(UNITS, go_backwards=go_backwards)
    layer.build((None, None, FEATURES))
    random_weights(layer)
    gates = layer.gates(inputs(), mask=mask_of(LENGTHS))
    ref = numpy_lstm(inputs(), *layer.get_weights(), lengths=LENGTHS, go_backwards=go_backwards)
    names = ("forget_gate", "input_gate", "candidate", "cell_state", "output_gate", "hidden_state")
    assert set(gates) == set(names)
    for name in names:
        assert gates[name].shape == (BATCH, STEPS, UNITS)
        np.testing.assert_allclose(gates[name], ref[name], atol=ATOL, err_msg=name)
    assert np.all(gates["forget_gate"][2, 1:] == 0)  # past the length of row 2
    assert np.all((gates["forget_gate"][0] > 0) & (gates["forget_gate"][0] < 1))


def test_config_round_trip_lists_every_argument():
    layer = LSTM(UNITS, activation="relu", dropout=0.1, recurrent_dropout=0.2, seed=3,
                 return_sequences=True, go_backwards=True, unroll=True, use_bias=False,
                 kernel_regularizer="l2")
    config = layer.get_config()
    import inspect

    arguments = set(inspect.signature(LSTM.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config)
    assert LSTM.from_config(config).get_config() == config


@pytest.mark.parametrize("bidirectional", [False, True])
def test_model_saves_and_loads_in_safe_mode(tmp_path, bidirectional):
    model = build_stack(LSTM, bidirectional)
    random_weights(model)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode, no custom_objects
    ids = np.array([[3, 4, 5, 0], [6, 7, 8, 9]], "int32")
    np.testing.assert_array_equal(model(ids), loaded(ids))
    assert any(isinstance(layer, LSTM) or isinstance(getattr(layer, "forward_layer", None), LSTM)
               for layer in loaded.layers)


def test_dropout_only_in_training():
    plain, _ = twin_layers()
    dropped = LSTM(UNITS, dropout=0.5, recurrent_dropout=0.5, seed=1)
    dropped.build((None, None, FEATURES))
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(dropped(inputs(), training=False), plain(inputs()), atol=ATOL)
    assert np.abs(np.asarray(dropped(inputs(), training=True)) - np.asarray(plain(inputs()))).max() > 1e-3
    _, grads = outputs_and_gradients(dropped, inputs(), True)
    assert all(np.isfinite(g).all() for g in grads)


def test_hand_written_gradient_with_recurrent_mask_matches_autodiff():
    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(STEPS, BATCH, FEATURES)).astype("float32"))
    h0, c0 = (tf.constant(rng.normal(size=(BATCH, UNITS)).astype("float32")) for _ in range(2))
    kernel = tf.constant(rng.normal(scale=0.5, size=(FEATURES, 4 * UNITS)).astype("float32"))
    recurrent = tf.constant(rng.normal(scale=0.5, size=(UNITS, 4 * UNITS)).astype("float32"))
    bias = tf.constant(rng.normal(scale=0.5, size=(4 * UNITS,)).astype("float32"))
    mask = tf.constant((rng.random((BATCH, UNITS)) > 0.3).astype("float32") / 0.7)
    grads = []
    for fn in (lambda *a: recurrence.lstm_sequence(*a, recurrent_mask=mask),
               lambda *a: recurrence.forward_loop(*a, recurrent_mask=mask)[:2]):
        with tf.GradientTape() as tape:
            args = [x, h0, c0, kernel, recurrent, bias]
            tape.watch(args)
            hidden, cell = fn(*args)
            loss = tf.reduce_sum(tf.sin(hidden)) + tf.reduce_sum(tf.cos(cell))
        grads.append([np.asarray(g) for g in tape.gradient(loss, args)])
    assert_all_close(*grads)


@pytest.mark.parametrize("kwargs, message", [
    (dict(units=0), "units must be a positive integer"),
    (dict(units=3, dropout=1.5), "dropout must be in"),
    (dict(units=3, recurrent_dropout=-0.1), "recurrent_dropout must be in"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(**kwargs)


def test_stateful_without_fixed_batch_raises():
    with pytest.raises(ValueError, match="fixed batch size"):
        LSTM(3, stateful=True).build((None, 4, 2))


def test_graph_target_rejects_unknown_target():
    with pytest.raises(ValueError, match="graph target"):
        with graph_target("coreml"):
            pass


def test_importing_package_registers_layer():
    assert keras.saving.get_registered_object("keras_lstm>LSTM") is keras_lstm.layers.LSTM


@pytest.mark.parametrize("bidirectional, stacked", list(itertools.product([False, True],
                                                                          [False, True])))
def test_tf2onnx_fuses_one_lstm_op_per_layer_and_matches_masked_keras(bidirectional, stacked):
    import onnxruntime
    import tf2onnx

    keras.utils.set_random_seed(2)
    ids_in = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(ids_in)
    layers = [LSTM(UNITS, return_sequences=True), LSTM(UNITS)] if stacked else [LSTM(UNITS)]
    for layer in layers:
        x = (keras.layers.Bidirectional(layer) if bidirectional else layer)(x)
    model = keras.Model(ids_in, x)
    random_weights(model)
    with graph_target("onnx"):
        proto, _ = tf2onnx.convert.from_function(
            tf.function(lambda ids: model(ids)),
            input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")], opset=17)
    ops = [node.op_type for node in proto.graph.node]
    # One fused op per direction of each layer (a masked Bidirectional is not
    # merged into one bidirectional op: its backward half reverses per length).
    assert ops.count("LSTM") == len(layers) * (2 if bidirectional else 1)
    assert "Loop" not in ops
    ids = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12], [13, 0, 0, 0, 0, 0]], "int32")
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    np.testing.assert_allclose(session.run(None, {"ids": ids})[0], model(ids), atol=ATOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tflite_fuses_builtins_only_and_matches_keras(tmp_path, bidirectional):
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(2)
    ids_in = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, FEATURES)(ids_in)
    layer = LSTM(UNITS)
    x = (keras.layers.Bidirectional(layer) if bidirectional else layer)(x)
    model = keras.Model(ids_in, x)
    random_weights(model)
    with graph_target("tflite"):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda ids: model(ids),
                             input_signature=[tf.TensorSpec([1, None], tf.int32)])
        archive.write_out(str(tmp_path), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops
    assert "WHILE" not in ops and not any(op.startswith("Flex") for op in ops)
    index = interpreter.get_input_details()[0]["index"]
    for row in ([3, 4, 5], [7, 8, 9, 10, 11, 12]):
        interpreter.resize_tensor_input(index, [1, len(row)])
        interpreter.allocate_tensors()
        interpreter.reset_all_variables()
        interpreter.set_tensor(index, np.array([row], "int32"))
        interpreter.invoke()
        result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(result, model(np.array([row])), atol=ATOL)


@pytest.mark.parametrize("units", [1, 2])
def test_tflite_export_does_not_clip_the_cell_state(units):
    """The converter fuses with cell_clip=10; export_tflite turns it off (C_t is unbounded).

    With 1 unit the all-zero weight blocks have the state's shape (1, 1), and
    the converter merges them into the state variable; export_tflite unshares
    them (without that, this case fails from the second step on).
    """
    from ai_edge_litert.interpreter import Interpreter

    from export.tflite import export_tflite

    ids_in = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(3, 1)
    layer = LSTM(units, return_sequences=True)
    model = keras.Model(ids_in, layer(embedding(ids_in)))
    # Gates open (i, f, o ≈ 0.99); token 1 adds ≈ +1 to C_t, token 2 adds ≈ -1.
    embedding.set_weights([np.array([[0.0], [5.0], [-5.0]], "float32")])
    kernel = np.zeros((1, 4 * units), "float32")
    kernel[0, 2 * units:3 * units] = 1.0  # only the candidate sees the input
    bias = np.full(4 * units, 5.0, "float32")
    bias[2 * units:3 * units] = 0.0
    layer.set_weights([kernel, np.zeros((units, 4 * units), "float32"), bias])
    ids = np.array([[1] * 20 + [2] * 15], "int32")  # C_t climbs to ≈18, then falls to ≈2
    expected = np.asarray(model(ids))
    assert expected[0, -1, 0] > 0.9  # a cell clipped at 10 would end near -5 (h < 0)

    interpreter = Interpreter(model_content=export_tflite(model))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, ids.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, ids)
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(result, expected, atol=ATOL)


@pytest.mark.parametrize("variant", ["float32", "dynamic_range", "float16", "int8"])
def test_only_float_kernels_lose_the_converter_cell_clip(variant):
    from export.tflite import export_tflite, lstm_cell_clips

    keras.utils.set_random_seed(3)
    ids_in = keras.Input((None,), dtype="int32")
    model = keras.Model(ids_in, LSTM(UNITS)(keras.layers.Embedding(20, FEATURES)(ids_in)))
    representative = [np.arange(1, 1 + n) % 20 for n in range(3, 9)]
    clips = lstm_cell_clips(export_tflite(model, variant, representative_ids=representative))
    # The int8 kernel keeps its int16 cell state within the clip range.
    assert clips == ([10.0] if variant == "int8" else [0.0])
