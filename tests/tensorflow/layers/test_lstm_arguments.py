"""keras.layers.LSTM's constructor arguments, input dtypes and dtype policies, on our layer."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.layers import LSTM
from tests.tensorflow.layers import twins

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
HOLES = np.array([[1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 1, 1], [1, 1, 0, 0, 0, 0]], bool)


def inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


def twin_layers(**kwargs):
    return twins.twin_layers(UNITS, FEATURES, **kwargs)



def keras_parameters():
    return {name: p for name, p in inspect.signature(keras.layers.LSTM.__init__).parameters.items()
            if name not in ("self", "kwargs")}


def test_every_keras_argument_is_accepted_with_keras_default():
    ours = inspect.signature(LSTM.__init__).parameters
    for name, parameter in keras_parameters().items():
        assert name in ours, name
        assert ours[name].default == parameter.default, name
    # Taken by keras.layers.LSTM through **kwargs (RNN, LSTMCell, Layer).
    assert ours["zero_output_for_mask"].default is False
    assert LSTM(UNITS).implementation == keras.layers.LSTM(UNITS).cell.implementation == 2


def test_keras_call_with_every_argument_builds_our_layer():
    arguments = dict(
        units=UNITS, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
        kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
        bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer="l2",
        recurrent_regularizer="l1", bias_regularizer="l2", activity_regularizer="l1",
        kernel_constraint="max_norm", recurrent_constraint="non_neg",
        bias_constraint="unit_norm", dropout=0.1, recurrent_dropout=0.0, seed=3,
        return_sequences=True, return_state=False, go_backwards=False, stateful=False,
        unroll=False, use_cudnn=False, implementation=1, zero_output_for_mask=True,
        name="lstm_x", trainable=True, dtype="float32",
    )
    assert set(keras_parameters()) <= set(arguments)
    keras.layers.LSTM(**arguments)  # Keras takes the same call
    layer = LSTM(**arguments)
    config = layer.get_config()
    assert config["use_cudnn"] is False and config["implementation"] == 1
    assert config["zero_output_for_mask"] is True and config["name"] == "lstm_x"
    assert LSTM.from_config(config).get_config() == config


@pytest.mark.parametrize("use_cudnn", ["auto", True, False])
@pytest.mark.parametrize("implementation", [1, 2])
def test_config_round_trip_keeps_use_cudnn_and_implementation(use_cudnn, implementation):
    layer = LSTM(UNITS, use_cudnn=use_cudnn, implementation=implementation)
    config = layer.get_config()
    assert (config["use_cudnn"], config["implementation"]) == (use_cudnn, implementation)
    assert LSTM.from_config(config).get_config() == config


def test_recurrent_dropout_forces_implementation_1_like_keras_cell():
    assert LSTM(UNITS, recurrent_dropout=0.2, implementation=2).implementation == 1
    assert keras.layers.LSTM(UNITS, recurrent_dropout=0.2, implementation=2).cell.implementation == 1


@pytest.mark.parametrize("implementation", [1, 2])
@pytest.mark.parametrize("use_cudnn", ["auto", False])
def test_implementation_and_use_cudnn_give_keras_numbers(implementation, use_cudnn):
    ours, theirs = twin_layers(implementation=implementation, use_cudnn=use_cudnn,
                               return_sequences=True)
    np.testing.assert_allclose(ours(inputs(), mask=HOLES), theirs(inputs(), mask=HOLES),
                               atol=1e-5)


def test_use_cudnn_true_raises_keras_error_on_a_cpu_only_machine():
    assert not tf.config.list_logical_devices("GPU")  # what these machines are
    ours, theirs = twin_layers(use_cudnn=True)
    with pytest.raises(ValueError) as keras_error:
        theirs(inputs())
    with pytest.raises(ValueError) as our_error:
        ours(inputs())
    assert str(our_error.value) == str(keras_error.value)
    assert "Pass use_cudnn='auto' to fallback" in str(our_error.value)


def test_invalid_use_cudnn_raises_keras_error():
    with pytest.raises(ValueError) as keras_error:
        keras.layers.LSTM(UNITS, use_cudnn="yes")
    with pytest.raises(ValueError) as our_error:
        LSTM(UNITS, use_cudnn="yes")
    assert str(our_error.value) == str(keras_error.value)
    assert "Received: use_cudnn=yes" in str(our_error.value)


def test_unknown_argument_is_still_refused():
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to LSTM"):
        LSTM(UNITS, time_major=True)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to LSTM"):
        keras.layers.LSTM(UNITS, time_major=True)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float64"])
def test_integer_and_float64_inputs_are_cast_to_the_compute_dtype(dtype):
    ours, theirs = twin_layers(return_sequences=True)
    x = np.random.default_rng(2).integers(-3, 4, size=(BATCH, STEPS, FEATURES)).astype(dtype)
    out = ours(x, mask=HOLES)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, theirs(x, mask=HOLES), atol=1e-5)
    out = tf.function(lambda v: ours(v, training=True))(tf.constant(x))
    np.testing.assert_allclose(out, theirs(x), atol=1e-5)


@pytest.mark.parametrize("policy, atol", [("mixed_float16", 2e-3), ("mixed_bfloat16", 2e-2)])
@pytest.mark.parametrize("training", [False, True])
def test_mixed_precision_computes_in_policy_dtype_like_keras(policy, atol, training):
    ours, theirs = twin_layers(return_sequences=True, return_state=True, dtype=policy)
    reference, _ = twin_layers(return_sequences=True, return_state=True)  # float32
    reference.set_weights(ours.get_weights())
    assert [w.dtype for w in ours.weights] == ["float32"] * 3
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            out = layer(inputs(), mask=HOLES, training=training)
            loss = sum(tf.reduce_sum(tf.sin(tf.cast(v, "float32"))) for v in out)
        grads = tape.gradient(loss, layer.trainable_weights)
        assert [v.dtype for v in out] == [ours.compute_dtype] * 3
        assert [g.dtype for g in grads] == [tf.float32] * 3
        results.append([np.asarray(tf.cast(v, "float32")) for v in (*out, *grads)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=atol * max(1.0, np.abs(b).max()))
    # And near the float32 numbers, within the dtype's precision.
    for a, b in zip(results[0][:3], reference(inputs(), mask=HOLES, training=training)):
        np.testing.assert_allclose(a, b, atol=5 * atol)
