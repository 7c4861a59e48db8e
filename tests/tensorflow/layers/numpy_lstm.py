"""A NumPy LSTM written straight from the notes' six equations (the test reference)."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def split_weights(kernel, recurrent_kernel, bias):
    """Keras-layout weights → the notes' W_f, W_i, W_c, W_o acting on [h_{t-1}, x_t]."""
    units = recurrent_kernel.shape[0]
    blocks = {}
    for k, name in enumerate("ifco"):
        cols = slice(k * units, (k + 1) * units)
        blocks[name] = (np.concatenate([recurrent_kernel[:, cols], kernel[:, cols]], axis=0).T,
                        bias[cols])
    return blocks


def numpy_lstm(x, kernel, recurrent_kernel, bias, h0=None, c0=None, lengths=None,
               go_backwards=False):
    """Runs the notes' equations step by step.

    Args:
        x: (batch, time, features).
        lengths: optional valid lengths of right-padded sequences; a masked
            step keeps the state and repeats the previous output (Keras).

    Returns:
        dict of (batch, time, units) arrays in processing order: forget_gate,
        input_gate, candidate, cell_state, output_gate, hidden_state (zeros
        past each length), plus `outputs` in Keras output order and final h, c.
    """
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    W = split_weights(kernel, recurrent_kernel, bias)
    h = np.zeros((batch, units)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((batch, units)) if c0 is None else np.array(c0, dtype=np.float64)
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    names = ("forget_gate", "input_gate", "candidate", "cell_state", "output_gate", "hidden_state")
    record = {n: np.zeros((batch, steps, units)) for n in names}
    outputs = np.zeros((batch, steps, units))
    h_final, c_final = h.copy(), c.copy()
    for b in range(batch):
        hb, cb = h[b], c[b]
        seq = x[b, : lengths[b]]
        if go_backwards:
            seq = seq[::-1]
        for t, x_t in enumerate(seq):
            hx = np.concatenate([hb, x_t])
            f = sigmoid(W["f"][0] @ hx + W["f"][1])
            i = sigmoid(W["i"][0] @ hx + W["i"][1])
            c_tilde = np.tanh(W["c"][0] @ hx + W["c"][1])
            cb = f * cb + i * c_tilde
            o = sigmoid(W["o"][0] @ hx + W["o"][1])
            hb = o * np.tanh(cb)
            for name, value in zip(names, (f, i, c_tilde, cb, o, hb)):
                record[name][b, t] = value
        h_final[b], c_final[b] = hb, cb
        n = lengths[b]
        if go_backwards:  # Keras: the padding comes first, as zeros
            outputs[b, steps - n:] = record["hidden_state"][b, :n]
        else:
            outputs[b, :n] = record["hidden_state"][b, :n]
            outputs[b, n:] = hb  # a masked step repeats the previous output
    return {**record, "outputs": outputs, "h": h_final, "c": c_final}


def numpy_lstm_masked(x, kernel, recurrent_kernel, bias, mask, h0=None, c0=None,
                      go_backwards=False, zero_output_for_mask=False):
    """Keras' masking rules on the notes' equations, step by step, for any mask.

    `go_backwards` reverses the whole sequence and its mask; a masked step
    keeps h and C and outputs the previous output (zeros before the first
    valid step) or, with `zero_output_for_mask`, zeros.

    Returns:
        dict with `outputs` (batch, time, units) in processing order, `last`
        (the output of the last step) and final `h`, `c`.
    """
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    W = split_weights(kernel, recurrent_kernel, bias)
    h = np.zeros((batch, units)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((batch, units)) if c0 is None else np.array(c0, dtype=np.float64)
    x, mask = np.asarray(x, np.float64), np.asarray(mask, bool)
    if go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    outputs = np.zeros((batch, steps, units))
    previous = np.zeros((batch, units))
    for t in range(steps):
        hx = np.concatenate([h, x[:, t]], axis=1)
        f = sigmoid(hx @ W["f"][0].T + W["f"][1])
        i = sigmoid(hx @ W["i"][0].T + W["i"][1])
        c_new = f * c + i * np.tanh(hx @ W["c"][0].T + W["c"][1])
        h_new = sigmoid(hx @ W["o"][0].T + W["o"][1]) * np.tanh(c_new)
        valid = mask[:, t, None]
        h, c = np.where(valid, h_new, h), np.where(valid, c_new, c)
        outputs[:, t] = np.where(valid, h_new, 0.0 if zero_output_for_mask else previous)
        previous = outputs[:, t]
    return {"outputs": outputs, "last": outputs[:, -1], "h": h, "c": c}
