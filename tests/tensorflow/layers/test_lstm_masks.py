"""Masks of every shape (holes, left padding, all-masked rows) as keras.layers.LSTM takes them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.layers import LSTM, graph_target
from tests.tensorflow.layers import twins
from tests.tensorflow.layers.numpy_lstm import numpy_lstm_masked
from tests.tensorflow.layers.twins import outputs_and_gradients, random_weights

ATOL = 1e-5
BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 5

MASKS = {
    "holes": [[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1]],
    "left_padded": [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1],
                    [0, 1, 1, 1, 1, 1]],
    "all_masked_rows": [[0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0],
                        [0, 1, 0, 1, 1, 0]],
    "right_padded": [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0],
                     [1, 1, 1, 1, 1, 0]],
}
MODES = [
    dict(),
    dict(return_sequences=True, return_state=True),
    dict(go_backwards=True),
    dict(go_backwards=True, return_sequences=True, return_state=True),
]


def mask(name):
    return np.array(MASKS[name], bool)


def inputs(seed=0, batch=BATCH):
    return np.random.default_rng(seed).normal(size=(batch, STEPS, FEATURES)).astype("float32")


def twin_layers(**kwargs):
    return twins.twin_layers(UNITS, FEATURES, **kwargs)


def assert_all_close(a, b, atol=ATOL):
    twins.assert_all_close(a, b, atol)



def test_issue_17_left_padded_go_backwards_example():
    """The report of issue 17, with Keras' numbers (ours gave 0.085127 / 0.269699)."""
    layer = LSTM(2, kernel_initializer=keras.initializers.Constant(0.01),
                 recurrent_initializer=keras.initializers.Constant(0.02),
                 bias_initializer=keras.initializers.Constant(0.03), go_backwards=True)
    x = np.arange(24).reshape((2, 4, 3))  # integers: cast to float32, as in Keras
    out = layer(x, mask=np.array([[False, True, True, True], [False, False, True, True]]))
    expected = np.array([[0.15341201, 0.15341201], [0.3844719, 0.3844719]])
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(m) or "last")
@pytest.mark.parametrize("zero_output", [False, True], ids=["repeat", "zero_output"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_any_mask_matches_keras_outputs_states_and_gradients(mask_name, training, zero_output,
                                                             mode):
    ours, theirs = twin_layers(zero_output_for_mask=zero_output, **mode)
    kwargs = {"mask": mask(mask_name)}
    out_a, grad_a = outputs_and_gradients(ours, inputs(), training, **kwargs)
    out_b, grad_b = outputs_and_gradients(theirs, inputs(), training, **kwargs)
    assert_all_close(out_a, out_b)
    assert_all_close(grad_a, grad_b)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_any_mask_with_initial_state_matches_numpy_reference(mask_name, zero_output,
                                                              go_backwards):
    # An initial state shows the rules Keras follows at masked steps: the
    # state is kept, but the output before the first valid step is zeros.
    layer = LSTM(UNITS, return_sequences=True, return_state=True, go_backwards=go_backwards,
                 zero_output_for_mask=zero_output)
    layer.build((None, None, FEATURES))
    random_weights(layer)
    h0, c0 = np.random.default_rng(5).normal(size=(2, BATCH, UNITS)).astype("float32")
    ref = numpy_lstm_masked(inputs(), *layer.get_weights(), mask(mask_name), h0=h0, c0=c0,
                            go_backwards=go_backwards, zero_output_for_mask=zero_output)
    for training in (False, True):
        out, h, c = layer(inputs(), initial_state=[h0, c0], mask=mask(mask_name),
                          training=training)
        np.testing.assert_allclose(out, ref["outputs"], atol=ATOL)
        np.testing.assert_allclose(h, ref["h"], atol=ATOL)
        np.testing.assert_allclose(c, ref["c"], atol=ATOL)
    last = LSTM(UNITS, go_backwards=go_backwards, zero_output_for_mask=zero_output)
    last.build((None, None, FEATURES))
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(last(inputs(), initial_state=[h0, c0], mask=mask(mask_name)),
                               ref["last"], atol=ATOL)
    if mask_name == "all_masked_rows":
        np.testing.assert_array_equal(np.asarray(h)[0], h0[0])  # state kept ...
        assert not np.asarray(out)[0].any()  # ... output zeros


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_any_mask_unrolled_and_custom_activations_match_keras(mask_name, go_backwards):
    for kwargs in (dict(unroll=True), dict(activation="relu", recurrent_activation="hard_sigmoid"),
                   dict(use_bias=False)):
        ours, theirs = twin_layers(return_sequences=True, return_state=True,
                                   go_backwards=go_backwards, **kwargs)
        out_a, grad_a = outputs_and_gradients(ours, inputs(), True, mask=mask(mask_name))
        out_b, grad_b = outputs_and_gradients(theirs, inputs(), True, mask=mask(mask_name))
        assert_all_close(out_a, out_b)
        assert_all_close(grad_a, grad_b)


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_any_mask_in_graph_mode_with_dynamic_shapes_matches_eager(mask_name):
    ours, _ = twin_layers(return_sequences=True, go_backwards=True)
    spec = [tf.TensorSpec([None, None, FEATURES]), tf.TensorSpec([None, None], tf.bool)]
    graph = tf.function(lambda x, m: ours(x, mask=m), input_signature=spec)
    np.testing.assert_allclose(graph(inputs(), mask(mask_name)),
                               ours(inputs(), mask=mask(mask_name)), atol=ATOL)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_bidirectional_any_mask_parity(mask_name, return_sequences):
    def bidirectional(cls):
        layer = keras.layers.Bidirectional(cls(UNITS, return_sequences=return_sequences))
        layer.build((None, None, FEATURES))
        return layer

    ours, theirs = bidirectional(LSTM), bidirectional(keras.layers.LSTM)
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    for training in (False, True):
        out_a, grad_a = outputs_and_gradients(ours, inputs(), training, mask=mask(mask_name))
        out_b, grad_b = outputs_and_gradients(theirs, inputs(), training, mask=mask(mask_name))
        assert_all_close(out_a, out_b)
        assert_all_close(grad_a, grad_b)


def build_stack(layer_class, backwards_middle):
    keras.utils.set_random_seed(7)
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(layer_class(UNITS, return_sequences=True))(x)
    if backwards_middle:
        # Keras hands on the input's mask with the reversed sequence; so do we.
        x = layer_class(UNITS, return_sequences=True, go_backwards=True)(x)
    x = layer_class(UNITS)(x)
    return keras.Model(ids, keras.layers.Dense(3)(x))


@pytest.mark.parametrize("backwards_middle", [False, True])
def test_stacked_model_with_left_padding_and_holes_matches_keras(backwards_middle):
    ours, theirs = build_stack(LSTM, backwards_middle), build_stack(keras.layers.LSTM,
                                                                   backwards_middle)
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    ids = np.array([[0, 0, 3, 4, 5, 6], [7, 0, 9, 0, 11, 12], [0, 0, 0, 0, 0, 0],
                    [13, 0, 0, 0, 0, 0]], "int32")
    assert_all_close(*twins.model_outputs_and_gradients((ours, theirs), ids))
    if not backwards_middle:  # left padding changes nothing: the first row without it
        np.testing.assert_allclose(ours(ids[:1, 2:]), ours(ids)[:1], atol=ATOL)


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_stateful_keeps_the_state_at_masked_steps_like_keras(mask_name):
    ours, theirs = LSTM(UNITS, stateful=True), keras.layers.LSTM(UNITS, stateful=True)
    ours.build((BATCH, None, FEATURES))
    theirs.build((BATCH, None, FEATURES))
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    for seed in (0, 1):
        np.testing.assert_allclose(ours(inputs(seed), mask=mask(mask_name)),
                                   theirs(inputs(seed), mask=mask(mask_name)), atol=ATOL)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_gates_of_a_mask_with_holes_list_the_valid_steps_first(go_backwards):
    layer = LSTM(UNITS, go_backwards=go_backwards)
    layer.build((None, None, FEATURES))
    random_weights(layer)
    holes = mask("holes")
    gates = layer.gates(inputs(), mask=holes)
    ref = numpy_lstm_masked(inputs(), *layer.get_weights(), holes, go_backwards=go_backwards,
                            zero_output_for_mask=True)
    processing = holes[:, ::-1] if go_backwards else holes
    for row in range(BATCH):
        valid = ref["outputs"][row][processing[row]]
        np.testing.assert_allclose(gates["hidden_state"][row, :len(valid)], valid, atol=ATOL)
        assert not gates["forget_gate"][row, len(valid):].any()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tf2onnx_fuses_a_mask_with_holes_and_left_padding(bidirectional):
    import onnxruntime
    import tf2onnx

    keras.utils.set_random_seed(2)
    ids_in = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(ids_in)
    layer = LSTM(UNITS, return_sequences=True)
    x = (keras.layers.Bidirectional(layer) if bidirectional else layer)(x)
    model = keras.Model(ids_in, x)
    random_weights(model)
    with graph_target("onnx"):
        proto, _ = tf2onnx.convert.from_function(
            tf.function(lambda ids: model(ids)),
            input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")], opset=17)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("LSTM") == (2 if bidirectional else 1) and "Loop" not in ops
    ids = np.array([[0, 0, 3, 4, 5, 6], [7, 0, 9, 0, 11, 12], [0, 0, 0, 0, 0, 0]], "int32")
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    np.testing.assert_allclose(session.run(None, {"ids": ids})[0], model(ids), atol=ATOL)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_unrolled_zero_output_for_mask_follows_keras_loop(go_backwards):
    """Keras' unrolled path zeroes go_backwards outputs with the unreversed mask
    (keras/src/backend/tensorflow/rnn.py), unlike its own loop; we follow the
    loop, which is the NumPy reference, for unroll too."""
    kwargs = dict(return_sequences=True, go_backwards=go_backwards, zero_output_for_mask=True)
    ours, keras_loop = twin_layers(**kwargs)
    unrolled, keras_unrolled = twin_layers(unroll=True, **kwargs)
    ref = numpy_lstm_masked(inputs(), *ours.get_weights(), mask("holes"),
                            go_backwards=go_backwards, zero_output_for_mask=True)["outputs"]
    for layer in (ours, keras_loop, unrolled):
        np.testing.assert_allclose(layer(inputs(), mask=mask("holes")), ref, atol=ATOL)
    keras_unrolled_out = np.asarray(keras_unrolled(inputs(), mask=mask("holes")))
    assert np.allclose(keras_unrolled_out, ref, atol=ATOL) == (not go_backwards)
