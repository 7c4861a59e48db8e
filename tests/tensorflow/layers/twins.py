"""Shared helpers of the layer tests: our LSTM and Keras' with the same weights, and parity checks."""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.layers import LSTM


def random_weights(layer, seed=1):
    """Weights far from the defaults, so that unit_forget_bias or zero bias hide nothing."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in layer.get_weights()])


def twin_layers(units, features, **kwargs):
    """`(keras_lstm.layers.LSTM, keras.layers.LSTM)` with the same random weights."""
    ours, theirs = LSTM(units, **kwargs), keras.layers.LSTM(units, **kwargs)
    ours.build((None, None, features))
    theirs.build((None, None, features))
    random_weights(ours)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def outputs_and_gradients(layer, x, training, **call_kwargs):
    """The layer's outputs, and the gradients of a non-linear loss on them (inputs, weights)."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=training, **call_kwargs)
        loss = sum(tf.reduce_sum(tf.sin(3.0 * v)) for v in tf.nest.flatten(out))
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return [np.asarray(v) for v in tf.nest.flatten(out)], [np.asarray(g) for g in grads]


def assert_all_close(a, b, atol):
    assert len(a) == len(b)
    for left, right in zip(a, b):
        np.testing.assert_allclose(left, right, atol=atol, rtol=0)


def model_outputs_and_gradients(models, ids):
    """Each model's inference output and training-mode weight gradients on `ids`."""
    results = []
    for model in models:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(model(ids, training=True)))
        results.append([np.asarray(model(ids)),
                        *[np.asarray(tf.convert_to_tensor(g))
                          for g in tape.gradient(loss, model.trainable_weights)]])
    return results
