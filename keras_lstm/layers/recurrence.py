"""The LSTM recurrence as TensorFlow graphs: one for training, two for export.

All three compute the same six equations of the notes on time-major
projections; they differ only in the shape of the graph they leave behind:

* `lstm_sequence` (training and inference): the backward pass is written by
  hand so that the weight gradients are two large matmuls over all steps
  instead of two small accumulations per step, and only the recurrent matmul
  lies on the step-to-step critical path (the input matmuls of other steps run
  beside it on the second core).
* `onnx_sequence`: the per-step graph of `keras.layers.LSTM`
  (`BiasAdd(MatMul(x_t, W) + MatMul(h, R), b)`, split in four) that tf2onnx's
  LSTM rewriter fuses into one ONNX `LSTM` op; with lengths, the
  `Select(t >= sequence_length, ...)` form of `tf.nn.dynamic_rnn` that the
  rewriter turns into the op's `sequence_lens` input.
* `tflite_sequence`: a function carrying the `api_implements` attribute that
  the TFLite converter replaces by `UNIDIRECTIONAL_SEQUENCE_LSTM`.

Gate blocks are in Keras order [i, f, c, o] everywhere.
"""

import uuid

import tensorflow as tf

__all__ = ["forward_loop", "lstm_sequence", "make_tflite_sequence", "onnx_sequence"]


def _gates(z, c_prev, activation, recurrent_activation):
    """One step of the notes' equations from the pre-activations `z`."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    input_gate = recurrent_activation(i)
    forget_gate = recurrent_activation(f)
    candidate = activation(g)
    output_gate = recurrent_activation(o)
    cell_state = forget_gate * c_prev + input_gate * candidate
    hidden_state = output_gate * activation(cell_state)
    return input_gate, forget_gate, candidate, output_gate, cell_state, hidden_state


def forward_loop(
    inputs,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias=None,
    activation=tf.tanh,
    recurrent_activation=tf.sigmoid,
    recurrent_mask=None,
    keep_gates=True,
):
    """Runs the recurrence over time-major inputs.

    The input matmul `x_t · W` of each step does not depend on `h`, so
    TensorFlow runs it ahead of the recurrence on the other core; only
    `h_{t-1} · U` lies on the step-to-step critical path.

    Args:
        inputs: `(time, batch, features)`.
        h0, c0: `(batch, units)` initial hidden and cell states.
        kernel: `(features, 4 * units)`.
        recurrent_kernel: `(units, 4 * units)`.
        bias: `(4 * units,)` or `None`.
        activation, recurrent_activation: the candidate/cell and gate
            activations (TensorFlow callables).
        recurrent_mask: optional `(batch, units)` recurrent-dropout mask
            multiplied into `h_{t-1}` before the recurrent matmul.
        keep_gates: Whether to keep the gates of every step (the backward
            pass needs them; inference does not).

    Returns:
        `(hidden, cell, gates)`: hidden and cell states of every step,
        `(time, batch, units)`, and the activated gates `[i, f, c~, o]`
        concatenated, `(time, batch, 4 * units)` (`None` without
        `keep_gates`).
    """
    steps = tf.shape(inputs)[0]
    dtype = inputs.dtype
    inputs_ta = tf.TensorArray(dtype, size=steps).unstack(inputs)
    hidden_ta = tf.TensorArray(dtype, size=steps)
    cell_ta = tf.TensorArray(dtype, size=steps)
    gates_ta = [tf.TensorArray(dtype, size=steps)] if keep_gates else []

    def body(t, h, c, hidden_ta, cell_ta, gates_ta):
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = tf.matmul(inputs_ta.read(t), kernel) + tf.matmul(h_in, recurrent_kernel)
        if bias is not None:
            z = tf.nn.bias_add(z, bias)
        i, f, g, o, c, h = _gates(z, c, activation, recurrent_activation)
        if keep_gates:
            gates_ta = [gates_ta[0].write(t, tf.concat([i, f, g, o], axis=-1))]
        return t + 1, h, c, hidden_ta.write(t, h), cell_ta.write(t, c), gates_ta

    _, _, _, hidden_ta, cell_ta, gates_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (0, h0, c0, hidden_ta, cell_ta, gates_ta),
        maximum_iterations=steps,
    )
    gates = gates_ta[0].stack() if keep_gates else None
    return hidden_ta.stack(), cell_ta.stack(), gates


def _backward_loop(h0, c0, kernel, recurrent_kernel, recurrent_mask, hidden, cell, gates,
                   d_hidden, d_cell):
    """Backpropagation through time for tanh/sigmoid gates.

    Returns the gradients of the pre-activations and of the inputs of every
    step and of the initial states. `dz_t · Uᵀ` is on the critical path;
    `dz_t · Wᵀ` (the input gradient) runs beside it on the other core; the
    weight gradients are formed after the loop by the caller as two large
    matmuls.
    """
    steps = tf.shape(hidden)[0]
    cell_prev = tf.concat([c0[None], cell[:-1]], axis=0)
    recurrent_kernel_t = tf.transpose(recurrent_kernel)
    kernel_t = tf.transpose(kernel)
    dz_ta = tf.TensorArray(hidden.dtype, size=steps)
    dx_ta = tf.TensorArray(hidden.dtype, size=steps)

    def body(t, dh_next, dc_next, dz_ta, dx_ta):
        i, f, g, o = tf.split(gates[t], 4, axis=-1)
        tanh_c = tf.tanh(cell[t])
        dh = d_hidden[t] + dh_next
        dc = d_cell[t] + dc_next + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat(
            [
                dc * g * i * (1.0 - i),
                dc * cell_prev[t] * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                dh * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        dh_prev = tf.matmul(dz, recurrent_kernel_t)
        if recurrent_mask is not None:
            dh_prev = dh_prev * recurrent_mask
        dx = tf.matmul(dz, kernel_t)
        return t - 1, dh_prev, dc * f, dz_ta.write(t, dz), dx_ta.write(t, dx)

    _, dh0, dc0, dz_ta, dx_ta = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (steps - 1, tf.zeros_like(h0), tf.zeros_like(c0), dz_ta, dx_ta),
        maximum_iterations=steps,
    )
    return dz_ta.stack(), dx_ta.stack(), dh0, dc0


def lstm_sequence(inputs, h0, c0, kernel, recurrent_kernel, bias, recurrent_mask=None):
    """tanh/sigmoid LSTM over time-major inputs, with a hand-written gradient.

    Args:
        inputs: `(time, batch, features)`.
        h0, c0: `(batch, units)` initial states.
        kernel, recurrent_kernel, bias: the weights as tensors (`bias` may
            not be `None`: pass zeros for a layer without one).
        recurrent_mask: optional `(batch, units)` recurrent-dropout mask.

    Returns:
        `(hidden, cell)`, each `(time, batch, units)`; both are differentiable
        with respect to every tensor argument but the mask.
    """
    if recurrent_mask is None:
        return _lstm_sequence(inputs, h0, c0, kernel, recurrent_kernel, bias)
    return _lstm_sequence_dropout(inputs, h0, c0, kernel, recurrent_kernel, bias, recurrent_mask)


def _make_sequence_fn(with_mask):
    def sequence(inputs, h0, c0, kernel, recurrent_kernel, bias, recurrent_mask=None):
        hidden, cell, gates = forward_loop(
            inputs, h0, c0, kernel, recurrent_kernel, bias, recurrent_mask=recurrent_mask
        )

        def grad(d_hidden, d_cell):
            dz, dx, dh0, dc0 = _backward_loop(
                h0, c0, kernel, recurrent_kernel, recurrent_mask, hidden, cell, gates,
                d_hidden, d_cell,
            )
            h_prev = tf.concat([h0[None], hidden[:-1]], axis=0)
            if recurrent_mask is not None:
                h_prev = h_prev * recurrent_mask
            units, features = tf.shape(h0)[-1], tf.shape(inputs)[-1]
            dz_flat = tf.reshape(dz, [-1, 4 * units])
            # Two (· x steps*batch) @ (steps*batch x 4units) matmuls instead of
            # one small accumulation per step for each weight.
            d_kernel = tf.matmul(tf.reshape(inputs, [-1, features]), dz_flat, transpose_a=True)
            d_recurrent = tf.matmul(tf.reshape(h_prev, [-1, units]), dz_flat, transpose_a=True)
            d_bias = tf.reduce_sum(dz_flat, axis=0)
            grads = [dx, dh0, dc0, d_kernel, d_recurrent, d_bias]
            if with_mask:
                grads.append(tf.zeros_like(recurrent_mask))
            return grads

        return (hidden, cell), grad

    if with_mask:
        return tf.custom_gradient(sequence)
    return tf.custom_gradient(lambda x, h0, c0, k, r, b: sequence(x, h0, c0, k, r, b))


_lstm_sequence = _make_sequence_fn(with_mask=False)
_lstm_sequence_dropout = _make_sequence_fn(with_mask=True)


def onnx_sequence(inputs, h0, c0, kernel, recurrent_kernel, bias, lengths=None):
    """The recurrence in the graph shape tf2onnx fuses into one ONNX `LSTM` op.

    Args:
        inputs: `(time, batch, features)` time-major inputs.
        h0, c0: `(batch, units)` initial states.
        kernel, recurrent_kernel, bias: the layer's weights as tensors.
        lengths: optional `(batch,)` int32 valid lengths of right-padded
            sequences; steps past a length output zeros and keep the state.

    Returns:
        `(outputs, h, c)`: `(time, batch, units)` outputs and final states.
    """
    steps = tf.shape(inputs)[0]
    inputs_ta = tf.TensorArray(inputs.dtype, size=steps).unstack(inputs)
    outputs_ta = tf.TensorArray(inputs.dtype, size=steps)
    if bias is None:
        bias = tf.zeros([tf.shape(kernel)[1]], inputs.dtype)

    def body(t, h, c, outputs_ta):
        x_t = inputs_ta.read(t)
        z = tf.nn.bias_add(tf.matmul(x_t, kernel) + tf.matmul(h, recurrent_kernel), bias)
        i, f, g, o = tf.split(z, 4, axis=1)
        i = tf.sigmoid(i)
        f = tf.sigmoid(f)
        g = tf.tanh(g)
        o = tf.sigmoid(o)
        new_c = f * c + i * g
        new_h = o * tf.tanh(new_c)
        if lengths is None:
            return t + 1, new_h, new_c, outputs_ta.write(t, new_h)
        finished = tf.greater_equal(t, lengths)
        output = tf.raw_ops.Select(condition=finished, x=tf.zeros_like(new_h), y=new_h)
        new_h = tf.raw_ops.Select(condition=finished, x=h, y=new_h)
        new_c = tf.raw_ops.Select(condition=finished, x=c, y=new_c)
        return t + 1, new_h, new_c, outputs_ta.write(t, output)

    _, h, c, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps, body, (0, h0, c0, outputs_ta), maximum_iterations=steps
    )
    return outputs_ta.stack(), h, c


def make_tflite_sequence(go_backwards):
    """Builds the function the TFLite converter fuses to `UNIDIRECTIONAL_SEQUENCE_LSTM`.

    The converter (prepare_composite_functions_tf.cc) recognises a function
    whose `api_implements` attribute starts with "lstm_" and that takes
    exactly (inputs, init_h, init_c, kernel, recurrent_kernel, bias) and
    returns (last_output, outputs, new_h, new_c, runtime); it replaces the
    body, so the body only has to be correct. Inputs are batch-major.
    """

    def fused(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        x = tf.transpose(inputs, [1, 0, 2])
        if go_backwards:
            x = tf.reverse(x, [0])
        hidden, cell, _ = forward_loop(x, init_h, init_c, kernel, recurrent_kernel, bias,
                                       keep_gates=False)
        outputs = tf.transpose(hidden, [1, 0, 2])
        return hidden[-1], outputs, hidden[-1], cell[-1], tf.constant(0.0)

    return tf.function(
        fused,
        autograph=False,
        experimental_attributes={
            "api_implements": "lstm_" + uuid.uuid4().hex,
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": go_backwards,
        },
    )
